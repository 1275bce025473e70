"""Counterfactual datasets: labels, balance, informativeness, and telling hypotheses apart."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from abstract.causal import counterfactual_dataset, distinguishing_rate, informativeness
from abstract.causal.counterfactuals import make_example
from abstract.language import load_spec

SPECS = Path(__file__).resolve().parents[2] / "specs"


@pytest.fixture(scope="module")
def models():
    return load_spec(SPECS / "hierarchical_equality.causal").models


def shapes(a, b, c, d):
    return {"a": a, "b": b, "c": c, "d": d}


def test_labels_are_the_models_interchange(models):
    m = models["HierarchicalEquality"]
    data = counterfactual_dataset(m, ["left", "right"], n=200, seed=0)
    assert len(data) == 200
    for ex in data:
        assert set(ex.sources) == {"left", "right"}
        redo = m.interchange(ex.base, ex.sources)
        assert ex.counterfactual_output == {"label": redo["label"]}
        assert ex.base_output == m.run(ex.base)


def test_shared_source(models):
    m = models["HierarchicalEquality"]
    for ex in counterfactual_dataset(m, ["left", "right"], n=50, seed=1, shared_source=True):
        assert ex.sources["left"] == ex.sources["right"]
        # both swapped: the source's label
        assert ex.counterfactual_output["label"] == m.run(ex.sources["left"])["label"]


def test_counterfactual_labels_are_balanced(models):
    m = models["HierarchicalEquality"]
    data = counterfactual_dataset(m, ["left"], n=1000, seed=2)
    share = sum(ex.counterfactual_output["label"] for ex in data) / 1000
    assert abs(share - 0.5) < 0.02
    # input_balance: base and source inputs drawn with `left` true half of the time
    data = counterfactual_dataset(m, ["left"], n=1000, seed=2, balance=False, input_balance="left")
    for inputs in ([ex.sources["left"] for ex in data], [ex.base for ex in data]):
        lefts = Counter(m.evaluate(x)["left"] for x in inputs)
        assert abs(lefts[True] / 1000 - 0.5) < 0.06


def test_reproducible(models):
    m = models["HierarchicalEquality"]
    a = counterfactual_dataset(m, ["left"], n=30, seed=5)
    b = counterfactual_dataset(m, ["left"], n=30, seed=5)
    assert a == b and a != counterfactual_dataset(m, ["left"], n=30, seed=6)


def test_unknown_variable(models):
    with pytest.raises(KeyError):
        counterfactual_dataset(models["HierarchicalEquality"], ["middle"], n=5)


def test_informativeness_by_hand(models):
    m = models["HierarchicalEquality"]
    examples = [
        make_example(m, shapes(1, 1, 2, 2), {"left": shapes(0, 1, 0, 0)}),  # left T->F: label T->F, changed
        make_example(m, shapes(1, 1, 2, 2), {"left": shapes(3, 3, 0, 0)}),  # left stays T: unchanged
        make_example(m, shapes(0, 1, 2, 3), {"left": shapes(2, 2, 1, 0)}),  # left F->T: label T->F, changed
        make_example(m, shapes(0, 1, 2, 3), {"left": shapes(1, 2, 3, 3)}),  # left stays F: unchanged
    ]
    assert [ex.changed for ex in examples] == [True, False, True, False]
    assert informativeness(examples) == 0.5
    assert informativeness(examples[:1]) == 1.0
    assert informativeness([]) == 0.0


def test_distinguishing_rate_by_hand(models):
    """left from the source gives (s.a == s.b); w from the source gives (s.a == base.b)."""
    heq, ident = models["HierarchicalEquality"], models["IdentityOfFirst"]
    examples = [
        make_example(heq, shapes(1, 1, 2, 3), {"left": shapes(3, 3, 0, 0)}),  # left T, w=3: 3==1 F -> differ
        make_example(heq, shapes(1, 1, 2, 3), {"left": shapes(1, 2, 0, 0)}),  # left F, w=1: 1==1 T -> differ
        make_example(heq, shapes(1, 1, 2, 3), {"left": shapes(1, 1, 0, 0)}),  # left T, w=1: T -> agree
        make_example(heq, shapes(0, 2, 2, 3), {"left": shapes(3, 1, 0, 0)}),  # left F, w=3: 3==2 F -> agree
    ]
    assert distinguishing_rate(examples, ident, {"left": "w"}) == 0.5
    assert distinguishing_rate(examples, heq, {"left": "left"}) == 0.0
    assert distinguishing_rate([], ident, {"left": "w"}) == 0.0


def test_distinguishing_rate_on_random_pairs(models):
    """With uniform inputs, P[(s.a == s.b) != (s.a == b)] = 2 * 1/4 * 3/4 = 3/8."""
    heq, ident = models["HierarchicalEquality"], models["IdentityOfFirst"]
    data = counterfactual_dataset(heq, ["left"], n=3000, seed=0, balance=False)
    rate = distinguishing_rate(data, ident, {"left": "w"})
    assert abs(rate - 0.375) < 0.03
    # and the two models agree on every input without interventions
    assert all(heq.run(x) == ident.run(x) for x in heq.enumerate_inputs())


def test_interchanging_left_is_informative_about_half_the_time(models):
    """Without balancing, interchanging `left` changes the label iff the source's left differs
    from the base's: P = 2 * 1/4 * 3/4 = 3/8."""
    data = counterfactual_dataset(models["HierarchicalEquality"], ["left"], n=3000, seed=3, balance=False)
    assert abs(informativeness(data) - 0.375) < 0.03
