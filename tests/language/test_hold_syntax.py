"""`hold` (path patching): parsed into the plan, and every misuse a located error (exit 2)."""
from __future__ import annotations

import pytest

from abstract.cli import main
from abstract.hypothesis.holds import after
from abstract.language import SpecError, compile_text
from abstract.language.errors import SpecErrors

FILE = "t.causal"
HEAD = """model M {
    domain D = 0..3
    input x, y : D
    c = x > y
    output out : D = if c then x else y
}
network lm = hf "gpt2" { prompt "{x} {y} =", answer " {out}" }
network mlp = torch "m.py:build"
"""


def errors_of(body: str) -> list[SpecError]:
    with pytest.raises(SpecError) as info:
        compile_text(HEAD + body, FILE)
    err = info.value
    return list(err.errors) if isinstance(err, SpecErrors) else [err]


def where(body: str, needle: str) -> tuple[int, int]:
    """1-based (line, column) of ``needle`` in the whole spec text (from the first `hold` line on)."""
    text = HEAD + body
    before = text[:text.index(needle, text.find("    hold") if "    hold" in text else 0)]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def one_error(body: str, needle: str, *words: str) -> SpecError:
    errs = errors_of(body)
    assert len(errs) == 1, [e.render() for e in errs]
    e = errs[0]
    assert (e.pos.line, e.pos.column) == where(body, needle), e.render()
    for w in words:
        assert w in e.render(), e.render()
    return e


def test_hold_lines_become_the_plans_holds():
    from abstract.hypothesis.plan import build_plan
    body = """hypothesis h : M ~ lm {
    align c to layer 2 position last via das(dim=2)
    search layer 0..2, position [x, last]
    hold component attn_out, layer 10..11
    hold component [attn_out, mlp_out], layer 4, position [last, y]
}
"""
    spec = compile_text(HEAD + body, FILE)
    h = spec.hypotheses[0] if isinstance(spec.hypotheses, (list, tuple)) else spec.hypotheses["h"]
    plan = build_plan(h, network=spec.network_plans["lm"], model=spec.models["M"])
    a, b = plan.holds
    assert (a.components, a.layers, a.positions) == (("attn_out",), (10, 11), None)
    assert (b.components, b.layers, b.positions) == (("attn_out", "mlp_out"), (4,), ("last", "y"))
    assert a.text() == "hold component attn_out, layer 10..11"
    assert b.text() == "hold component [attn_out, mlp_out], layer 4, position [last, y]"
    assert plan.to_json()["holds"][0]["layers"] == [10, 11]
    assert a.to_json()["location"] == f"{FILE}:{where(body, 'hold component attn_out')[0]}:5"


def test_torch_network_holds_layer_outputs():
    from abstract.hypothesis.plan import build_plan
    body = """hypothesis h : M ~ mlp {
    align c to layer 0 via das(dim=2)
    hold layer 1..2
}
"""
    spec = compile_text(HEAD + body, FILE)
    h = spec.hypotheses[0] if isinstance(spec.hypotheses, (list, tuple)) else spec.hypotheses["h"]
    plan = build_plan(h, network=spec.network_plans["mlp"])
    assert plan.holds[0].components == ("resid_post",) and plan.holds[0].layers == (1, 2)


@pytest.mark.parametrize("align,hold,needle,words", [
    # upstream of the aligned site, and the aligned site itself
    ("align c to layer 5 position last", "hold component attn_out, layer 3..6", "layer 3..6",
     ("held attn_out of layer 3 is upstream of the site resid_post of layer 5", "aligned or searched here")),
    ("align c to layer 5 component attn_out position last", "hold component attn_out, layer 5", "layer 5\n",
     ("held attn_out of layer 5 is the same site as",)),
    ("align c to layer 5 component mlp_out position last", "hold component attn_out, layer 5", "layer 5\n",
     ("upstream of the site mlp_out of layer 5",)),
    # the grid, not only the align line
    ("align c via das(dim=2)\n    search layer 0..8", "hold component mlp_out, layer 8", "layer 8\n",
     ("held mlp_out of layer 8 is upstream of the site resid_post of layer 8",)),
    ("align c via das(dim=2)", "hold component mlp_out, layer 8", "layer 8\n", ("covers every layer",)),
    ("align c via das(dim=2)\n    search layer *", "hold component mlp_out, layer 8", "layer 8\n",
     ("covers every layer",)),
    # what is held
    ("align c to layer 1", "hold component attn_ot, layer 3", "component attn_ot",
     ("unknown site component 'attn_ot'", "did you mean `attn_out`?")),
    ("align c to layer 1", "hold component resid_post, layer 3", "component resid_post",
     ("cannot be held on a language model", "hold attn_out or mlp_out")),
    ("align c to layer 1", "hold component [attn_out, attn_out], layer 3", "component [",
     ("lists a component twice",)),
    ("align c to layer 1", "hold layer 3", "hold layer 3", ("`hold` needs a `component`",)),
    ("align c to layer 1", "hold component attn_out", "hold component", ("`hold` needs a `layer`",)),
    ("align c to layer 1", "hold component attn_out, layer -2", "layer -2", ("layer -2 is negative",)),
    ("align c to layer 1", "hold component attn_out, layer *", "layer *", ("would hold the aligned site",)),
    ("align c to layer 1", "hold component attn_out, layer 3, position zz", "position zz",
     ("position `zz` is not `last`, `first` or a slot",)),
    ("align c to layer 1", "hold component attn_out, layer 3, heads 2", "heads 2", ("unknown hold option `heads`",)),
])
def test_bad_holds_are_located(align, hold, needle, words):
    body = f"hypothesis h : M ~ lm {{\n    {align} via das(dim=2)\n    {hold}\n}}\n" if "via" not in align else \
        f"hypothesis h : M ~ lm {{\n    {align}\n    {hold}\n}}\n"
    one_error(body, needle.rstrip("\n"), *words)


def test_torch_network_cannot_hold_sub_modules_or_positions():
    body = """hypothesis h : M ~ mlp {
    align c to layer 0 via das(dim=2)
    hold component attn_out, layer 1
}
"""
    one_error(body, "component attn_out", "cannot be held on a plain torch network", "hold resid_post")
    body = """hypothesis h : M ~ mlp {
    align c to layer 0 via das(dim=2)
    hold layer 1, position last
}
"""
    one_error(body, "position last", "`position` cannot be used on a plain torch network")


def test_hold_is_a_reserved_word():
    with pytest.raises(SpecError):
        compile_text("model M { input hold : 0..1\n output o = hold }", FILE)


def test_check_exits_2_with_the_location(tmp_path, capsys):
    body = """hypothesis h : M ~ lm {
    align c to layer 5 position last via das(dim=2)
    hold component attn_out, layer 4..6
}
"""
    path = tmp_path / "bad.causal"
    path.write_text(HEAD + body)
    assert main(["check", str(path)]) == 2
    out = capsys.readouterr()
    line, col = where(body, "layer 4..6")
    assert f"{path}:{line}:{col}: error: held attn_out of layer 4 is upstream" in out.out + out.err
    assert "Traceback" not in out.out + out.err


def test_order_of_components():
    assert after((3, "attn_out"), (2, "resid_post"))
    assert after((2, "mlp_out"), (2, "attn_out"))
    assert after((2, "attn_out"), (2, "resid_pre"))
    assert not after((2, "attn_out"), (2, "resid_post"))
    assert not after((2, "attn_out"), (2, "attn_out"))
    assert not after((3, "resid_pre"), (2, "resid_post"))  # one tensor, two names
    assert not after((3, "unknown"), (2, "resid_post"))


def test_the_docs_ioi_path_patching_example_compiles_with_the_ioi_spec():
    from pathlib import Path
    import re
    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "language.md").read_text()
    section = doc[doc.index("### Path patching"):]
    example = re.search(r"```\n(hypothesis through_name_movers.*?)```", section, re.S).group(1)
    ioi = (root / "specs" / "ioi.causal").read_text()
    spec = compile_text(ioi + "\n" + example, str(root / "specs" / "ioi.causal"))
    h = next(x for x in spec.hypotheses if x.name == "through_name_movers")
    assert [hd.options[0].value for hd in h.holds] == ["attn_out", "mlp_out"]
    cut = example.replace("hypothesis through_name_movers", "hypothesis cut").replace(
        "    hold component mlp_out, layer 9..11\n", "    hold component mlp_out, layer 9..11\n"
        "    hold component attn_out, layer 9\n").replace(
        "expect iia(duplicate) >= 0.7", "expect iia(duplicate) <= 0.6")
    compile_text(ioi + "\n" + example + "\n" + cut, "ioi.causal")
