"""Head sites in the language: `head`, `heads [L.H, ...]`, `search ... head`, and the check-time
errors for them (file:line:col, a caret under the option, exit 2 from `abstract check`)."""
from __future__ import annotations

import pytest

from abstract.cli import main
from abstract.hypothesis.plan import build_plan
from abstract.language import parse_text
from abstract.neural.sites import Site

HEAD = """model M {
    input a, b : 0..3
    s = a + b
    output o = s > 2
}
network net = torch "m.py:build" { width 8 }
network lm = hf "gpt2" { prompt "{a} plus {b} is", answer " {o}" }
"""
HEAD_LINES = HEAD.count("\n")


def _plan(body: str):
    return build_plan(parse_text(f"hypothesis h : M ~ lm {{\n{body}\n}}\n").hypotheses[0])


def test_head_site_options_fill_the_plan():
    v = _plan("align s to layer 9 component head_out head 6 position last via das(dim=4)").variables[0]
    assert (v.layer, v.component, v.head, v.position) == (9, "head_out", 6, "last")
    v = _plan("align s to layer 2 head 1").variables[0]
    assert v.component == "head_out", "head without a component means head_out"
    v = _plan("align s to layer 2 component value head 1").variables[0]
    assert (v.component, v.head) == ("v", 1)


def test_head_groups_are_read_from_the_spelling():
    v = _plan("align s to heads [9.6, 9.10, 10.0] position last via das(dim=8)").variables[0]
    assert v.heads == ((9, 6), (9, 10), (10, 0)) and v.component == "head_out" and v.layer is None
    assert Site(component=v.component, heads=v.heads).label == "H[9.6,9.10,10.0].head_out@last"


def test_search_head_axis():
    assert _plan("align s\nsearch layer *, component head_out, head *").search.heads == "*"
    assert _plan("align s\nsearch layer *, component q, head [0, 5, 7]").search.heads == (0, 5, 7)
    assert _plan("align s\nsearch layer 0..1, component k, head 0..2").search.heads == (0, 1, 2)
    assert _plan("align s\nsearch layer *, component head_out").search.heads is None  # the engine: every head


def test_site_labels_name_component_and_head():
    assert Site(9, "head_out", "last", head=6).label == "L9.H6.head_out@last"
    assert Site(9, "resid_mid", "last").label == "L9.resid_mid@last"
    assert Site(0, "attn_out", "last").label != Site(0, "resid_pre", "last").label
    assert hash(Site(1, "q", 2, head=0)) == hash(Site(1, "query", 2, head=0))
    with pytest.raises(ValueError, match="has no heads"):
        Site(1, "resid_post", "last", head=0)
    with pytest.raises(ValueError, match="needs a head"):
        Site(1, "head_out", "last")
    with pytest.raises(ValueError, match="twice"):
        Site(component="head_out", heads=((1, 2), (1, 2)))


# (hypothesis body line, network, the text the caret must sit under, fragments of the message)
CASES = [
    ("align s to heads [9, 9.6]", "lm", "heads [9, 9.6]", ["`heads` entry 9 is not layer.head", "9.10 is layer 9"]),
    ("align s to heads [9.6, 9.6]", "lm", "heads [9.6, 9.6]", ["lists head 9.6 twice"]),
    ('align s to heads [9.6, "x"]', "lm", 'heads [9.6, "x"]', ["is not layer.head"]),
    ("align s to layer 1 component resid_post head 3", "lm", "head 3",
     ["`head` needs a head component, but component `resid_post` has no heads"]),
    ("align s to layer 1 heads [1.2]", "lm", "layer 1", ["`heads` names its own layers"]),
    ("align s to layer 1 component head_out position last", "lm", "component head_out",
     ["component `head_out` is per attention head: name the head"]),
    ("align s to layer 1 head -1", "lm", "head -1", ["`head` of an align must be one head index"]),
    ("align s to layer 1 head 2", "net", "head", ["`head` cannot be used on a plain torch network"]),
    ("align s to heads [1.2]", "net", "heads", ["`heads` cannot be used on a plain torch network"]),
    ("align s to layer 1 component resid_mid", "net", "component resid_mid",
     ["component `resid_mid` cannot be used on a plain torch network"]),
    ("align s\n    search layer *, head *", "lm", "head *", ["`search head` needs a head component"]),
    ("align s\n    search layer *, component head_out, head [1, 1]", "lm", "head [1, 1]", ["lists a head twice"]),
]


@pytest.mark.parametrize("body, net, under, fragments", CASES, ids=[c[0].split("\n")[-1] for c in CASES])
def test_check_refuses_head_mistakes_with_location(tmp_path, capsys, body, net, under, fragments):
    text = HEAD + f"hypothesis h : M ~ {net} {{\n    {body}\n}}\n"
    p = tmp_path / "h.causal"
    p.write_text(text)
    code = main(["check", str(p)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    bad_line = HEAD_LINES + 1 + body.count("\n") + 1
    src = text.split("\n")[bad_line - 1]
    col = src.index(under) + 1
    assert err.splitlines()[0].startswith(f"{p}:{bad_line}:{col}: error: "), err
    for fragment in fragments:
        assert fragment in err, err


def test_check_accepts_head_sites(tmp_path, capsys):
    text = HEAD + """hypothesis h : M ~ lm {
    align s to heads [9.6, 9.9] position last via das(dim=8)
    align a to layer 9 component k head 1 position b via full()
    align b to layer 3 component resid_mid position last
    search layer *, component head_out, head [0, 5, 7]
}
"""
    p = tmp_path / "h.causal"
    p.write_text(text)
    assert main(["check", str(p)]) == 0, capsys.readouterr().err
