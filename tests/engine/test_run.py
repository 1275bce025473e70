"""The run object: named phases, typed results, located user errors, bugs left as bugs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from abstract.engine.align import align_hypothesis
from abstract.engine.errors import AlignmentError
from abstract.engine.results import HypothesisResult, VariableResult
from abstract.engine.run import HypothesisRun
from abstract.language import SpecError, compile_text

HERE = Path(__file__).parent
ROOT = HERE.parent.parent

TWO = """
model Two {
    input a, b : 0..2
    x = a
    z = b
    output y = 3 * x + z
}
network rnd = torch "fixtures/hand_nets.py:random_mlp" { width 12, depth 2, inputs 6, classes 9 }
"""
# rnd is untrained on purpose (these tests are about the run's plumbing): its hypotheses waive the preflight's
# task-accuracy floor with `data min_accuracy 0`

SMALL = """
hypothesis h : Two ~ rnd {
    align x via das(dim=2)
    align z to layer 1 via neurons(0, 1)
    search layer 0..1
    train samples 64, epochs 1, batch 32, seeds 2
    data test 30, dev 20, min_accuracy 0
    control random_network, random_rotation
}"""


def spec_of(body: str):
    return compile_text(TWO + body, str(HERE / "inline.causal"))


def _line_col(body: str, needle: str) -> tuple[int, int]:
    """1-based line and column of ``needle`` in the spec text TWO + body."""
    text = TWO + body
    before = text[:text.index(needle)]
    return before.count("\n") + 1, len(before) - before.rfind("\n")


def test_phases_run_in_order_and_are_timed():
    run = HypothesisRun(spec_of(SMALL), "h", progress=False, device="cpu")
    result = run.run()
    assert isinstance(result, HypothesisResult) and isinstance(result.variables["x"], VariableResult)
    assert list(result.timing) == ["load", "sites", "preflight", "data", "train", "measure", "controls", "total"]
    assert all(t >= 0 for t in result.timing.values())
    doc = result.to_json()
    json.dumps(doc)
    assert doc["seconds"] == round(result.timing["total"], 2)
    assert set(doc["variables"]) == {"x", "z"} and set(doc["multi"]["isolate"]) == {"x,z", "z,x"}
    # the typed result is what align_hypothesis returns
    again = align_hypothesis(spec_of(SMALL), "h", progress=False, device="cpu")
    strip = lambda d: {k: v for k, v in d.items() if k not in ("timing", "seconds")}  # noqa: E731
    assert strip(again) == strip(doc)


def test_every_pair_is_drawn_in_the_data_phase():
    """Train/dev/test and the isolate pairs exist before anything trains."""
    run = HypothesisRun(spec_of(SMALL), "h", progress=False, device="cpu")
    run.load()
    run.resolve_sites()
    run.draw_data()
    assert set(run.isolate) == {("x", "z"), ("z", "x")}
    assert all(p is not None and len(p) > 0 for p in run.isolate.values())
    for name in ("x", "z"):
        assert set(run.contexts[name].splits) == {"train", "dev", "test"}
        assert not run.contexts[name].cells
    def pairs(examples):
        return {(tuple(e.base.items()), tuple(e.sources["x"].items())) for e in examples}

    trained = pairs(run.contexts["x"].splits["train"].examples)
    isolated = pairs(run.isolate[("x", "z")].examples)
    assert not trained & isolated  # isolate(x, z) is measured off pairs x was not trained on


def test_results_module_does_not_import_torch():
    code = "import sys, abstract.engine.results, abstract.engine.errors; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("body, needle, fragment", [
    ("align x to layer 0\n    search layer 0..5", "layer 0..5", "search layer 2 is out of range: the network has 2"),
    ("align x to layer 7", "layer 7", "layer 7 is out of range: the network has 2 layers"),
])
def test_site_problems_are_located_at_the_option(body, needle, fragment):
    text = f"\nhypothesis h : Two ~ rnd {{\n    {body}\n    train samples 20, seeds 1\n}}"
    with pytest.raises(AlignmentError) as err:
        align_hypothesis(spec_of(text), "h", progress=False, device="cpu")
    assert fragment in err.value.message
    assert (err.value.pos.line, err.value.pos.column) == _line_col(text, needle)


@pytest.mark.parametrize("via, fragment", [
    ("das(dim=13)", "das(dim=13) does not fit a site of width 12"),
    ("lowrank(dim=40)", "lowrank(dim=40) does not fit a site of width 12"),
    ("neurons(3, 12, 20)", "neurons 12, 20 are outside a site of width 12"),
])
def test_interventions_that_do_not_fit_the_site_are_located_at_the_align_line(via, fragment):
    text = (f"\nhypothesis h : Two ~ rnd {{\n    align x to layer 1 via {via}\n    train samples 20, seeds 1\n"
            "    data min_accuracy 0\n}")
    with pytest.raises(AlignmentError) as err:
        align_hypothesis(spec_of(text), "h", progress=False, device="cpu")
    assert fragment in err.value.message and isinstance(err.value, SpecError)
    assert (err.value.pos.line, err.value.pos.column) == _line_col(text, "align x")


def test_joint_blocks_wider_than_the_site_are_located():
    text = """
hypothesis h : Two ~ rnd {
    align x to layer 1 via das(dim=8)
    align z to layer 1 via das(dim=8)
    train samples 20, seeds 1, joint true
    data min_accuracy 0
}"""
    with pytest.raises(AlignmentError, match="need 16 dims but the site has 12") as err:
        align_hypothesis(spec_of(text), "h", progress=False, device="cpu")
    assert err.value.pos.line == _line_col(text, "align x")[0]


def test_an_internal_error_is_not_dressed_up_as_a_spec_error(monkeypatch):
    """A bug inside the engine must surface as itself, not as "cannot align" at a spec line."""
    import abstract.engine.search as search

    def broken(*args, **kwargs):
        raise IndexError("an engine bug")

    monkeypatch.setattr(search, "train_intervention", broken)
    with pytest.raises(IndexError, match="an engine bug") as err:
        align_hypothesis(spec_of(SMALL), "h", progress=False, device="cpu")
    assert not isinstance(err.value, SpecError)


def test_no_pairs_for_a_variable_is_a_located_error():
    """`informative true` on a variable whose interchange never changes the output."""
    text = """
model Dead {
    input a, b : 0..2
    x = a
    output y = 3 * b + b
}
hypothesis h : Dead ~ rnd {
    align x to layer 1 via das(dim=2)
    train samples 20, seeds 1
    data informative true, test 10, dev 10, min_accuracy 0
}"""
    with pytest.raises(AlignmentError, match="no (train|dev|test) pairs could be drawn for x") as err:
        align_hypothesis(spec_of(text), "h", progress=False, device="cpu")
    assert err.value.pos.line == _line_col(text, "align x")[0]
