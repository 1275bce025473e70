"""Expectations judged against a control, doing nothing or another hypothesis's figure (issue 8, item 8).

Each form is parsed, checked (bad ones are located errors), judged conservatively on both
intervals, recorded under ``against`` and shown by the console, JUnit and HTML. The pipeline
tests use a fake engine with fixed counts; one test runs the real engine on a tiny network."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from abstract.language import ast, compile_text
from abstract.language.errors import SpecError
from abstract.language.parser import parse_text
from abstract.report import render_html
from abstract.verify import pipeline, shape
from abstract.verify.expectations import judge_expectations
from abstract.verify.junit import junit_xml
from abstract.verify.stats import judge_relative, wilson_interval
from abstract.verify.summary import format_summary

HEAD = """
model M {
    input a, b : 0..3
    x = a == b
    z = a < b
    output y = x or z
}
network n = torch "net.py:build"
"""


def hypothesis(expects: str, controls: str = "control random_network", data: str = "") -> str:
    return (HEAD + "hypothesis h : M ~ n {\n    align x to layer 0 via das(dim=1)\n"
            "    align z to layer 0 via das(dim=1)\n"
            f"    {expects}\n    {controls}\n    {data}\n}}\n"
            "hypothesis g : M ~ n {\n    align x to layer 0 via das(dim=1)\n}\n")


def expects_of(text: str, name: str = "h") -> list[ast.Expectation]:
    spec = parse_text(text, "t.causal")
    return list(next(h for h in spec.hypotheses if h.name == name).expects)


# ------------------------------------------------------------------ syntax
def test_every_form_parses_into_its_figure():
    e = expects_of(hypothesis("expect iia(x) >= control(random_network) + 0.2, iia(x) >= do_nothing + 0.5, "
                              "cause(x) >= control(random_network) - 0.1, iia(x) >= iia(g.x) + 0.3, "
                              "iia(x) <= iia(z), isolate(x, z) >= do_nothing, iia(x) >= 0.9"))
    a = [x.against for x in e]
    assert (a[0].kind, a[0].name, a[0].margin) == ("control", "random_network", 0.2)
    assert e[0].threshold == 0.2  # the margin, where a plain expectation has its threshold
    assert (a[1].kind, a[1].margin) == ("do_nothing", 0.5)
    assert (a[2].kind, a[2].margin) == ("control", -0.1)
    assert (a[3].kind, a[3].name, a[3].args, a[3].hypothesis) == ("metric", "iia", ("x",), "g")
    assert a[3].text() == "iia(g.x)"
    assert (a[4].kind, a[4].hypothesis, a[4].margin, a[4].text()) == ("metric", None, 0.0, "iia(z)")
    assert a[5].kind == "do_nothing" and e[5].metric == "isolate"
    assert a[6] is None and e[6].threshold == 0.9
    assert e[0].text == "iia(x) >= control(random_network) + 0.2"
    assert a[0].pos.line == e[0].pos.line and a[0].pos.column > e[0].pos.column


def test_the_shipped_forms_compile():
    spec = compile_text(hypothesis(
        "expect iia(x) >= control(random_network) + 0.2, iia(x) >= do_nothing + 0.5\n"
        "    expect cause(x) >= control(random_rotation) + 0.3, iia(z) <= do_nothing + 0.05\n"
        "    expect iia(x) >= iia(g.x) + 0.1, iia(x) >= iia(z), isolate(x, z) >= do_nothing",
        "control random_network, random_rotation"), "t.causal")
    assert len(spec.hypotheses[0].expects) == 7


BAD = [
    ("expect iia(x) >= control(random_rotation) + 0.2", "control random_network",
     "compares with control random_rotation, which hypothesis 'h' does not run", "random_rotation",
     "add `control random_rotation`"),
    ("expect iia(x) >= control(random_netwrok)", "control random_network",
     "unknown control 'random_netwrok'", "random_netwrok", "did you mean 'random_network'?"),
    ("expect isolate(x, z) >= control(random_network)", "control random_network",
     "controls are measured for iia(v), cause(v), logit_diff(v), prob(v), kl(v) only", "control(random_network)", None),
    ("expect iia(x) >= do_nothing + 1.5", "", "margin 1.5 is not between -1 and 1", "+ 1.5", None),
    ("expect iia(x) >= control(random_network) - 2", "control random_network", "margin -2 is not between -1 and 1",
     "- 2", None),
    ("expect iia(x) >= do_nothin", "", "unknown figure 'do_nothin'", "do_nothin", "did you mean 'do_nothing'?"),
    ("expect iia(x) >= iia(gg.x)", "", "unknown hypothesis 'gg'", "gg.x", "did you mean 'g'?"),
    ("expect iia(x) >= iia(g.z)", "", "'z' in `iia(x) >= iia(g.z)` is not aligned in hypothesis 'g'", "g.z",
     "aligned there: x"),
    ("expect iia(x) >= iia(w)", "", "'w' in `iia(x) >= iia(w)` is not aligned in hypothesis 'h'", "w", None),
    ("expect iia(x) >= iaa(g.x)", "", "unknown metric 'iaa'", "iaa(g.x)", "did you mean 'iia'?"),
    ("expect iia(x) >= iia(x)", "", "compares a figure with itself", "iia(x)", None),
    ("expect isolate(x, z) >= isolate(g.x, z)", "", "mixes variables of several hypotheses", "isolate(g.x, z)",
     None),
    ("expect iia(x) == 0.5", "", "`==` cannot be judged with an interval", "iia(x) == 0.5", None),
]


@pytest.mark.parametrize("expect, controls, message, caret, hint", BAD, ids=[b[2][:40] for b in BAD])
def test_a_bad_comparison_is_a_located_error(expect, controls, message, caret, hint):
    text = hypothesis(expect, controls)
    with pytest.raises(SpecError) as info:
        compile_text(text, "t.causal")
    err = info.value
    assert message in err.message, err.render()
    line = text.splitlines()[err.pos.line - 1]
    assert line[err.pos.column - 1:].startswith(caret), (line, err.pos)
    if hint:
        assert hint in (err.hint or ""), err.render()


def test_another_hypothesis_must_draw_its_pairs_by_the_same_rule():
    text = hypothesis("expect iia(x) >= iia(g.x) + 0.1", "", "data informative true")
    with pytest.raises(SpecError) as info:
        compile_text(text, "t.causal")
    err = info.value
    assert "`data informative` is true in 'h' but false in 'g'" in err.message
    assert err.pos.line == 12 and err.notes and err.notes[0][1].line == 16  # the figure; a note at `g`


# ------------------------------------------------------------------ the judging rule
def test_relative_judging_uses_both_bounds():
    left, right = (900, 1000), (600, 1000)
    lo, _ = wilson_interval(*left)
    r_lo, r_hi = wilson_interval(*right)
    v = judge_relative(">=", 0.24, left, right)  # 0.880 - 0.630 = 0.2499
    assert v["passed"] is True and v["difference"] == round(lo - r_hi, 6)
    assert judge_relative(">=", 0.26, left, right)["passed"] is False  # 0.3 apart, but not beyond both intervals
    assert "too few to be sure" in judge_relative(">=", 0.26, left, right)["reason"]
    # <=: the left's upper bound minus the right's lower bound
    w = judge_relative("<=", 0.35, left, right)
    assert w["passed"] is True and w["difference"] == round(wilson_interval(*left)[1] - r_lo, 6)
    assert judge_relative("<=", 0.34, left, right)["passed"] is False  # 0.917 - 0.569 = 0.3478
    # a small sample on either side cannot pass what its point estimates suggest
    assert judge_relative(">=", 0.2, (10, 10), (5, 10))["passed"] is False
    assert judge_relative(">=", 0.2, (1000, 1000), (1, 2))["passed"] is False
    assert judge_relative(">=", 0.0, (5, 10), (0, 0))["passed"] is False


def fake(name: str, iia: tuple[int, int], *, base: tuple[int, int] = (100, 1000), model: str = "M",
         controls: dict | None = None, cause: tuple[int, int] = (400, 500)) -> dict:
    var = {"iia": {"mean": iia[0] / iia[1], "max": iia[0] / iia[1], "best_seed": 0, "correct": iia[0], "n": iia[1],
                   "do_nothing": {"value": base[0] / base[1], "correct": base[0], "n": base[1]}},
           "seeds": [{"seed": 0, "iia": iia[0] / iia[1], "correct": iia[0], "n": iia[1]}],
           "site": {"layer": 0, "component": "resid_post", "position": None},
           "intervention": {"kind": "das", "dim": 1}, "controls": controls or {}}
    return {"name": name, "model": model, "network": "n", "variables": {"x": var, "z": var},
            "multi": {"cause": {"x": {"value": cause[0] / cause[1], "correct": cause[0], "n": cause[1],
                                      "do_nothing": {"value": 0.0, "correct": 0, "n": cause[1]}}},
                      "isolate": {}}}


CONTROLS = {"random_network": {"iia": 0.3, "correct": 300, "n": 1000, "cause": {"value": 0.1, "correct": 50, "n": 500}},
            "random_rotation": {"iia": 0.75, "correct": 750, "n": 1000}}


def judged(expects: str, result: dict, others: dict | None = None, controls: str = "control random_network, "
           "random_rotation") -> list[dict]:
    spec = compile_text(hypothesis(expects, controls), "t.causal")
    return judge_expectations(spec.hypotheses[0], result, others=others, plans=spec.plans)


def test_against_a_control_records_the_control_with_its_interval():
    r = fake("h", (950, 1000), controls=CONTROLS)
    v, w, c, d = judged("expect iia(x) >= control(random_network) + 0.5, iia(x) >= control(random_rotation) + 0.2\n"
                        "    expect cause(x) >= control(random_network) + 0.5, cause(x) >= control(random_rotation)", r)
    assert v["passed"] is True and v["against"]["kind"] == "control" and v["against"]["control"] == "random_network"
    assert (v["against"]["correct"], v["against"]["n"], v["against"]["value"]) == (300, 1000, 0.3)
    low, high = wilson_interval(300, 1000)
    assert (v["against"]["ci_low"], v["against"]["ci_high"]) == (round(low, 6), round(high, 6))
    assert v["against"]["difference"] == round(v["ci_low"] - high, 6) and v["threshold"] == 0.5
    assert "against control(random_network) 0.300" in v["reason"]
    assert w["passed"] is False  # 0.95 vs 0.75: 0.2 apart in the point estimates only
    assert c["passed"] is True and c["against"]["n"] == 500 and c["n"] == 500  # cause vs the control's cause
    assert d["passed"] is False and "control random_rotation was not measured for cause(x)" in d["reason"]


def test_against_do_nothing_and_the_do_nothing_rule():
    r = fake("h", (950, 1000), base=(500, 1000), controls=CONTROLS)
    v, w, x = judged("expect iia(x) >= do_nothing + 0.4, iia(x) >= do_nothing + 0.45, iia(z) <= do_nothing + 0.5", r)
    assert v["passed"] is True and v["against"]["kind"] == "do_nothing" and v["against"]["value"] == 0.5
    assert w["passed"] is False and x["passed"] is True
    assert v["do_nothing"]["value"] == 0.5  # recorded as for every figure
    # a figure that beats a control but not doing nothing still fails (the do-nothing rule)
    lazy = fake("h", (950, 1000), base=(950, 1000), controls=CONTROLS)
    u, = judged("expect iia(x) >= control(random_network) + 0.5", lazy)
    assert u["against"]["difference"] > 0.5 and u["passed"] is False and "doing nothing scores" in u["reason"]


def test_against_another_hypothesis_on_shared_pairs():
    mine, theirs = fake("h", (950, 1000)), fake("g", (500, 1000))
    v, w, x = judged("expect iia(x) >= iia(g.x) + 0.3, iia(x) <= iia(g.x), iia(z) >= iia(g.x) + 0.3", mine,
                     others={"h": mine, "g": theirs})
    assert v["passed"] is True and v["against"]["hypothesis"] == "g" and v["against"]["same_pairs"] is True
    assert v["against"]["text"] == "iia(g.x)" and v["against"]["correct"] == 500
    assert w["passed"] is False
    assert x["against"]["same_pairs"] is False and "measured on different test pairs" in x["reason"]
    errored, = judged("expect iia(x) >= iia(g.x) + 0.3", mine, others={"g": "it errored"})
    assert errored["passed"] is False and "hypothesis g has no result (it errored)" in errored["reason"]
    assert errored["value"] == 0.95 and errored["against"]["hypothesis"] == "g"


def test_against_a_figure_of_the_same_hypothesis():
    r = fake("h", (950, 1000), cause=(100, 500))
    v, = judged("expect iia(x) >= cause(x) + 0.6", r)
    assert v["passed"] is True and v["against"]["hypothesis"] == "h" and "same_pairs" not in v["against"]


# ------------------------------------------------------------------ the pipeline and the readers
NET = """
import torch
def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Linear(4, 2))
"""


@pytest.fixture
def cross_spec(tmp_path):
    (tmp_path / "net.py").write_text(NET)
    path = tmp_path / "cross.causal"
    path.write_text(hypothesis("expect iia(x) >= iia(g.x) + 0.3, iia(x) >= control(random_network) + 0.5",
                               "control random_network"))
    return path


def test_the_pipeline_judges_comparisons_after_every_hypothesis_ran(cross_spec, monkeypatch):
    ran = []

    def fake_align(spec, name, **kw):
        ran.append(name)
        return fake("h", (950, 1000), controls=CONTROLS) if name == "h" else fake("g", (500, 1000))

    monkeypatch.setattr(pipeline, "_align", fake_align)
    doc = pipeline.verify_spec(cross_spec, progress=False, hypotheses=["h"])
    assert ran == ["h", "g"]  # `--hypothesis h` also runs g, which h compares with
    h = doc["hypotheses"][0]
    assert [e["passed"] for e in h["expectations"]] == [True, True] and doc["passed"] is True
    assert h["expectations"][0]["against"]["same_pairs"] is True
    assert shape.document_problems(doc) == []
    json.dumps(doc)

    text = format_summary(doc, width=200, unicode=False)
    assert "vs iia(g.x) 0.500 [0.469, 0.531] n=1000" in text
    assert "vs control(random_network) 0.300" in text
    xml = junit_xml(doc)
    assert 'name="against" value="iia(g.x)"' in xml and 'name="against.same_pairs" value="true"' in xml
    assert 'name="against.value" value="0.5000"' in xml and 'name="against.difference"' in xml
    html = render_html(doc)
    assert ">against</th>" in html and "iia(g.x)</span> 0.500" in html and "bounds differ by" in html


def test_a_comparison_with_a_hypothesis_that_errored_fails_with_the_reason(cross_spec, monkeypatch):
    def fake_align(spec, name, **kw):
        if name == "g":
            raise RuntimeError("g exploded")
        return fake("h", (950, 1000), controls=CONTROLS)

    monkeypatch.setattr(pipeline, "_align", fake_align)
    doc = pipeline.verify_spec(cross_spec, progress=False)
    e = doc["hypotheses"][0]["expectations"]
    assert e[0]["passed"] is False and "hypothesis g has no result (it errored)" in e[0]["reason"]
    assert e[1]["passed"] is True and pipeline.exit_code(doc) == 2
    assert "iia(x) >= iia(g.x) + 0.3" in format_summary(doc, unicode=False)
    assert "g exploded" in junit_xml(doc)


HERE = Path(__file__).parent.parent / "validity"


def with_builders(spec_text: str) -> str:
    sys.path.insert(0, str(HERE))
    from builders import with_builders as point
    return point(spec_text)
RARE = """
model Rare {
    input a, b : 0..2
    u = a == 0 and b == 0
    output y = if u then 0 else 3 * a + b
}
network net = torch "faulty_nets.py:unused_u"
hypothesis rare_u : Rare ~ net {
    align u to layer 0 via neurons(6)
    train samples 20, seeds 1
    data test 1500, dev 20
    expect iia(u) <= do_nothing + 0.05, iia(u) >= do_nothing + 0.5
    expect cause(u) >= control(random_rotation), iia(u) >= iia(full_swap.u) - 0.1
    control random_rotation, random_network
}
hypothesis full_swap : Rare ~ net {
    align u to layer 0 via full()
    train samples 20, seeds 1
    data test 1500, dev 20
}
"""


def test_the_real_engine_measures_what_the_comparisons_read(tmp_path):
    """A variable the network computes but never reads: doing nothing scores what the swap does."""
    (tmp_path / "rare.causal").write_text(with_builders(RARE))
    doc = pipeline.verify_spec(tmp_path / "rare.causal", progress=False, device="cpu", cache=None,
                               hypotheses=["rare_u"])
    assert not doc["errors"], doc["errors"]
    by = {h["name"]: h for h in doc["hypotheses"]}
    assert set(by) == {"rare_u", "full_swap"}
    controls = by["rare_u"]["variables"]["u"]["controls"]
    changed = by["rare_u"]["multi"]["cause"]["u"]["n"]
    for c in ("random_rotation", "random_network"):
        assert controls[c]["n"] == 1500 and controls[c]["cause"]["n"] == changed  # the same pairs
    nothing, beats, cause, other = by["rare_u"]["expectations"]
    assert nothing["passed"] is True  # the swap does no more than doing nothing ...
    assert beats["passed"] is False  # ... so it cannot beat it
    assert cause["against"]["n"] == changed and cause["passed"] is False  # 0 vs 0 on label-changing pairs
    # the full swap of layer 0 does something (it scores below doing nothing); u is not shown to beat it
    # by the do-nothing rule, though its bounds clear the margin
    assert other["against"]["same_pairs"] is True and other["against"]["n"] == 1500
    assert other["against"]["difference"] > -0.1 and other["passed"] is False
    assert "doing nothing scores" in other["reason"]
    assert shape.document_problems(doc) == []
