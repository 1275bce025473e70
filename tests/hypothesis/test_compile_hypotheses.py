"""`abstract check` compiles every hypothesis: each mistake below exits 2 with file:line:col, the
line with a caret under the mistake, and (where a known name is close) a did-you-mean.
Today's behaviour before this existed: exit 0 on all of them."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from abstract.cli import main
from abstract.hypothesis.plan import InterventionPlan, build_plan
from abstract.language import SpecError, compile_text, parse_text
from abstract.language.errors import SpecErrors

ROOT = Path(__file__).resolve().parents[2]

HEAD = """model M {
    input a, b : 0..3
    s = a + b
    output o = s > 2
}
network net = torch "m.py:build" { width 8 }
network lm = hf "gpt2" { prompt "{a} plus {b} is", answer " {o}" }
"""
HEAD_LINES = HEAD.count("\n")


def _check(tmp_path, text: str, capsys) -> tuple[int, str]:
    p = tmp_path / "h.causal"
    p.write_text(text)
    code = main(["check", str(p)])
    return code, capsys.readouterr().err


# (hypothesis body line, network, the text the caret must sit under, fragments of the message)
CASES = [
    ("align s to layer 1 via das(dimm=8)", "net", "dimm", ["unknown option `dimm` of das()", "did you mean `dim`?"]),
    ("align s\n    train sampels 100", "net", "sampels", ["unknown train option `sampels`", "did you mean `samples`?"]),
    ("align s\n    data tset 10", "net", "tset", ["unknown data option `tset`", "did you mean `test`?"]),
    ("align s to layer 1 via full(dim=8)", "net", "dim", ["`dim` is not an option of full()", "das, lowrank"]),
    ("align s to layer 1 via neurons(0, 1, dim=2)", "net", "dim", ["`dim` is not an option of neurons()"]),
    ("align s to layer 1 component resid_pre_in", "lm", "component resid_pre_in",
     ["unknown site component 'resid_pre_in'", "did you mean `resid_pre`?"]),
    ("align s to layer 1 component resid_pre", "net", "component resid_pre",
     ["component `resid_pre` cannot be used on a plain torch network", "resid_post"]),
    ("align s to layer 1\n    search layer 0..2, component attn_out", "net", "component attn_out",
     ["component `attn_out` cannot be used on a plain torch network"]),
    ("align s to layer 1 component mlp_out", "net", "component mlp_out", ["cannot be used on a plain torch network"]),
    ("align s to layer 1 position last", "net", "position", ["`position` cannot be used on a plain torch network",
                                                             "no token positions"]),
    ("align s to layer 1\n    search layer 0..2, position last", "net", "position", ["`position` cannot be used"]),
    ("align s to layer -1", "net", "layer -1", ["layer -1 is negative", "layers count from 0"]),
    ("align s\n    search layer -2..1", "net", "layer -2..1", ["layer -2 is negative"]),
    ("align s\n    train seeds [3, 3]", "net", "seeds [3, 3]", ["`seeds` lists seed 3 twice"]),
    ("align s via rotate(dim=2)", "net", "rotate(dim=2)",
     ["unknown intervention `rotate`", "did you mean `rotation`?"]),
    ("align s via dass(dim=2)", "net", "dass(dim=2)", ["unknown intervention `dass`", "did you mean `das`?"]),
    ("align s\n    data balance ss", "net", "balance ss", ["`balance ss`: model M has no such variable",
                                                         "did you mean `s`?"]),
    ("align s to layer 1 position c", "lm", "position c", ["position `c` is not `last`, `first` or a slot",
                                                           "expected one of: last, first, a, b"]),
    ("align s\n    train lr 0", "net", "lr 0", ["`lr` needs a number > 0, got 0"]),
    ("align s\n    train samples 0", "net", "samples 0", ["`samples` needs an integer >= 1, got 0"]),
    ("align s\n    train joint 3", "net", "joint 3", ["`joint` needs true or false"]),
    ("align s\n    train epochs 2, epochs 3", "net", "epochs 3", ["train option `epochs` is given twice"]),
    ("align s via das(dim=0)", "net", "dim=0", ["`dim` needs an integer >= 1, got 0"]),
    ("align s via boundless(3)", "net", "3", ["boundless() takes no arguments"]),
]


@pytest.mark.parametrize("body, net, under, fragments", CASES, ids=[c[0].split("\n")[-1] for c in CASES])
def test_check_refuses_with_location_caret_and_hint(tmp_path, capsys, body, net, under, fragments):
    text = HEAD + f"hypothesis h : M ~ {net} {{\n    {body}\n}}\n"
    code, err = _check(tmp_path, text, capsys)
    assert code == 2, err
    bad_line = HEAD_LINES + 1 + body.count("\n") + 1
    src = text.split("\n")[bad_line - 1]
    col = src.index(under) + 1
    head = err.splitlines()[0]
    assert head.startswith(f"{tmp_path / 'h.causal'}:{bad_line}:{col}: error: "), err
    lines = err.splitlines()
    caret = lines[lines.index(f"{bad_line:>5} | {src}") + 1]
    assert caret.index("^") == len(f"{bad_line:>5} | ") + col - 1, err
    for fragment in fragments:
        assert fragment in err, err


def test_network_declarations_are_compiled(tmp_path, capsys):
    text = HEAD.replace('{ prompt "{a} plus {b} is", answer " {o}" }', '{ prompt "{a} plus {b} is", answr " {o}" }')
    text += 'network half = torch "m.py:build" { prompt "{a}" }\n'
    text += 'network t = hf "gpt2" { prompt "{zz}", answer " {o}", dtype float33 }\n'
    text += "hypothesis h : M ~ t {\n    align s\n}\n"
    code, err = _check(tmp_path, text, capsys)
    assert code == 2
    assert "unknown network option `answr`" in err and "did you mean `answer`?" in err
    assert "language-model network 'lm' needs `answer`" in err
    assert "language-model network 'half' needs `answer`" in err
    assert "`dtype` must be one of float32" in err and "did you mean `float32`?" in err


def test_prompt_and_answer_slots_must_name_model_variables(tmp_path, capsys):
    text = HEAD + 'network t = hf "gpt2" { prompt "{a} and {c} =", answer " {s}" }\n'
    text += "hypothesis h : M ~ t {\n    align s\n}\n"
    code, err = _check(tmp_path, text, capsys)
    assert code == 2
    assert "prompt slot {c} of network 't' is not a variable of model M" in err
    assert "answer slot {s} of network 't' is not an output of model M" in err
    assert "note: the network is declared here" in err


def test_every_mistake_in_a_spec_is_reported_in_one_run(tmp_path, capsys):
    text = HEAD + ("hypothesis h : M ~ net {\n    align s to layer 1 via das(dimm=8)\n    train sampels 100\n"
                   "    data tset 10\n}\n" "model N {\n    input x : 0..1\n    output y = xx\n}\n")
    code, err = _check(tmp_path, text, capsys)
    assert code == 2
    for fragment in ("`dimm`", "`sampels`", "`tset`", "unknown name 'xx'"):
        assert fragment in err


def test_a_torch_builder_with_prompt_and_answer_is_a_language_model():
    spec = compile_text(HEAD + 'network tl = torch "m.py:build" { layers 2, prompt "{a} {b} =", answer " {o}" }\n'
                        "hypothesis h : M ~ tl {\n    align s to layer 0 component resid_pre position b\n"
                        "    search layer *, component attn_out, position [a, b, last]\n}\n", "x.causal")
    plan = spec.plans["h"]
    assert plan.network_kind == "lm" and spec.network_plans["tl"].builder_options == {"layers": 2}
    assert plan.variables[0].component == "resid_pre" and plan.variables[0].position == "b"
    assert plan.search.positions == ("a", "b", "last") and plan.search.component == "attn_out"


@pytest.mark.parametrize("spec", sorted((ROOT / "specs").glob("*.causal")), ids=lambda p: p.name)
def test_shipped_specs_compile_every_hypothesis(spec, capsys, tmp_path):
    out = tmp_path / "checks.json"
    assert main(["check", str(spec), "--json", str(out)]) in (0, 1)
    printed = capsys.readouterr().out
    doc = json.loads(out.read_text())
    names = [h["hypothesis"] for h in doc["hypotheses"]]
    assert names and all(f"ok   compile    hypothesis {n}" in printed for n in names)
    assert all(h["status"] == "ok" and h["plan"]["variables"] for h in doc["hypotheses"])


def test_check_does_not_import_torch(tmp_path):
    """`check` compiles hypotheses from the torch-free options table; torch is never loaded."""
    code = ("import sys; from abstract.cli import main; "
            f"rc = main(['check', {str(ROOT / 'specs' / 'hierarchical_equality.causal')!r}, "
            f"{str(ROOT / 'specs' / 'tiny_lm.causal')!r}]); "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "assert 'transformers' not in sys.modules; sys.exit(rc)")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "ok   compile    hypothesis both_equalities" in run.stdout


# ------------------------------------------------------------------ the plan itself (moved from tests/engine)
COPY = """
model Copy {
    input a, b : 0..1
    output y = a
}
network hand = torch "fixtures/hand_nets.py:copy_first"
"""


def _plan_error(body: str) -> SpecError:
    spec = parse_text(COPY + body, "inline.causal")
    with pytest.raises(SpecError) as err:
        build_plan(spec.hypotheses[0])
    return err.value


@pytest.mark.parametrize("line, at, fragment", [
    ("train samples 100, epoks 2", "epoks", "unknown train option `epoks`"),
    ("train samples 0", "samples", "integer >= 1"),
    ("search layer 0, where last", "where", "unknown search option"),
    ("data balance 3", "balance", "variable name"),
])
def test_plan_errors_point_at_the_option(line, at, fragment):
    err = _plan_error(f"hypothesis h : Copy ~ hand {{\n    align a\n    {line}\n}}")
    assert fragment in err.message
    assert (err.pos.line, err.pos.column) == (COPY.count("\n") + 3, 5 + line.index(at))


def test_build_plan_raises_every_problem_at_once():
    err = _plan_error("hypothesis h : Copy ~ hand {\n    align a via rotate(dim=2)\n    train epoks 2, lr -1\n}")
    assert isinstance(err, SpecErrors) and len(err.errors) == 3
    assert [e.pos.line for e in err.errors] == sorted(e.pos.line for e in err.errors)


def test_plan_reads_positional_and_aliased_interventions():
    spec = parse_text(COPY + "hypothesis h : Copy ~ hand {\n    align a via rotation(4)\n"
                      "    align b via neurons(3, [1, 2], 1)\n    align y via interchange()\n}", "x.causal")
    plan = build_plan(spec.hypotheses[0])
    assert [v.intervention for v in plan.variables] == [
        InterventionPlan("das", 4), InterventionPlan("neurons", 3, (1, 2, 3)), InterventionPlan("full", None)]


def test_plan_defaults_and_overrides():
    spec = parse_text(COPY + "hypothesis h : Copy ~ hand {\n    align a\n    train samples 5000, seeds [4, 2]\n}",
                      "x.causal")
    plan = build_plan(spec.hypotheses[0])
    assert plan.train.seeds == (4, 2) and plan.train.epochs == 3 and plan.train.lr == 1e-3
    assert plan.data.dev == plan.data.test == 500
    plan = build_plan(spec.hypotheses[0], {"seeds": 2, "samples": 100}, seed=7)
    assert plan.train.seeds == (7, 8) and plan.data.dev == 200
    with pytest.raises(ValueError, match="unknown override"):
        build_plan(spec.hypotheses[0], {"sampels": 1})


def test_random_rotation_beside_full_is_refused_with_its_matched_control_named(tmp_path):
    from abstract.language import compile_text
    from abstract.language.errors import SpecError, SpecErrors
    text = """
model Copy {
    input a, b : 0..1
    output y = a
}
network net = torch "net.py:build"
hypothesis h : Copy ~ net {
    align a to layer 0 via full()
    control random_network, random_rotation
}
"""
    with pytest.raises((SpecError, SpecErrors)) as err:
        compile_text(text, str(tmp_path / "s.causal"))
    e = err.value.errors[0] if isinstance(err.value, SpecErrors) else err.value
    assert "no matched form" in e.message and "random_network" in (e.hint or "")
    assert (e.pos.line, e.pos.column) == (9, 29)
