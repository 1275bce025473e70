"""Counterfactual splits drawn on arrays: labels are the plain model's interchange, splits are
held out from each other, balance / informative / exclusion are honoured, shortfalls are
recorded, and draws come from named seed streams."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from abstract.causal.counterfactuals import draw_pair_arrays, keys_from_examples, keys_of, make_example
from abstract.causal.vectorized import array_model
from abstract.engine.data import PairList, draw_pairs, isolate_pairs, make_splits, pair_key, shortfalls
from abstract.engine.joint_data import make_joint_splits
from abstract.language import compile_text, load_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def heq():
    return load_spec(ROOT / "specs" / "hierarchical_equality.causal").models["HierarchicalEquality"]


@pytest.fixture(scope="module")
def add():
    return load_spec(ROOT / "specs" / "addition.causal").models["Addition"]


def assert_labels_are_the_models(model, examples):
    for ex in examples:
        assert ex == make_example(model, ex.base, ex.sources)
        assert pair_key(ex) == (tuple(ex.base.items()),
                                tuple((v, tuple(s.items())) for v, s in sorted(ex.sources.items())))


@pytest.mark.parametrize("informative, balance", [(False, None), (True, None), (True, "left"), (False, "left")])
def test_splits_are_labelled_held_out_and_balanced(heq, informative, balance):
    s = make_splits(heq, "left", 1200, 200, 300, 5, balance, informative)
    assert s["disjoint"] is True
    assert (len(s["train"]), len(s["dev"]), len(s["test"])) == (1200, 200, 300)
    keys = {k: {pair_key(ex) for ex in s[k]} for k in ("train", "dev", "test")}
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["dev"] and not keys["dev"] & keys["test"]
    for split in ("train", "dev", "test"):
        assert_labels_are_the_models(heq, s[split])
        labels = Counter(ex.counterfactual_output["label"] for ex in s[split])
        assert labels[True] == labels[False]  # equal quotas: a constant guess scores chance
        if informative:
            assert all(ex.changed for ex in s[split])
    if balance:
        lefts = Counter(heq.evaluate(ex.base)["left"] for ex in s["train"])
        assert abs(lefts[True] / 1200 - 0.5) < 0.1  # plain draws: a quarter


def test_labels_of_a_several_output_model(add):
    s = make_splits(add, "carry", 400, 50, 100, 0, informative=True)
    for split in ("train", "test"):
        assert_labels_are_the_models(add, s[split])
        assert all(ex.changed for ex in s[split])


def test_tiny_input_space_is_flagged_not_disjoint():
    model = compile_text("model M {\n input a : bool\n output y : bool = a\n}").models["M"]
    s = make_splits(model, "a", 100, 20, 20, 0)
    assert s["disjoint"] is False and len(s["train"]) == 100 and len(s["test"]) == 20
    assert_labels_are_the_models(model, s["train"])


def test_informative_shortfall_is_recorded():
    """Interchanging m in `m = a and b` changes the label on 6 of the 16 (base, source) pairs;
    once the test split holds them, an informative held-out draw finds none and records it."""
    model = compile_text("model M {\n input a, b : bool\n m = a and b\n output y : bool = m\n}").models["M"]
    s = make_splits(model, "m", 50, 10, 40, 0, informative=True)
    assert all(isinstance(s[k], PairList) for k in ("train", "dev", "test"))
    assert s["test"].wanted == 40 and len(s["test"]) == 40  # drawn with replacement: fills
    held = {pair_key(ex) for ex in s["test"]}
    assert len(held) <= 6  # m flips only between a base with m=T and a source with m=F or back: 2 * 3 pairs
    short = draw_pairs(model, "m", 30, seed=1, balance=None, informative=True, exclude=held)
    assert len(short) == 0 and short.wanted == 30 and short.shortfall == 30
    assert shortfalls({"m": {"test": s["test"], "train": short}}) == {"m/train": (0, 30)}


def test_exclusion_is_exact(heq):
    """Held-out keys from examples equal the keys computed on arrays, and drawn pairs avoid them."""
    am = array_model(heq)
    pairs = draw_pair_arrays(heq, ["left"], 500, np.random.default_rng(0))
    examples = pairs.examples(am)
    assert keys_from_examples(am, {pair_key(ex) for ex in examples}) == {("left",): set(keys_of(am, pairs))}
    again = draw_pairs(heq, "left", 2000, seed=0, balance=None, informative=False,
                       exclude={pair_key(ex) for ex in examples})
    assert len(again) == 2000 and not {pair_key(ex) for ex in again} & {pair_key(ex) for ex in examples}


def test_joint_splits_hold_out_test_dev_and_single_variable_pairs(heq):
    single = make_splits(heq, "left", 0, 100, 200, 0, informative=True)
    held = {pair_key(ex) for k in ("dev", "test") for ex in single[k]}
    s = make_joint_splits(heq, ["left", "right"], 900, 100, 200, 0, held, informative=True)
    assert s["disjoint"] is True and len(s["train"]) == 900
    train = {pair_key(ex) for ex in s["train"]}
    assert not train & held
    assert not train & {pair_key(ex) for k in ("dev", "test") for ex in s[k]}
    assert Counter(tuple(sorted(ex.sources)) for ex in s["train"]) == \
        {("left",): 300, ("right",): 300, ("left", "right"): 300}
    for k in ("train", "test"):
        assert_labels_are_the_models(heq, s[k])
        assert all(ex.changed for ex in s[k])


def test_isolate_pairs_are_the_models_and_reproducible(heq):
    pairs = isolate_pairs(heq, "left", "right", 200, seed=3)
    assert len(pairs) == 200 and pairs == isolate_pairs(heq, "left", "right", 200, seed=3)
    assert_labels_are_the_models(heq, pairs)
    for ex in pairs:
        assert heq.interchange(ex.base, {"right": ex.sources["left"]})["label"] != ex.counterfactual_output["label"]


def test_named_streams_separate_variables_and_seeds(heq):
    a, b = make_splits(heq, "left", 10, 10, 50, 0), make_splits(heq, "right", 10, 10, 50, 0)
    assert [ex.base for ex in a["test"]] != [ex.base for ex in b["test"]]
    assert make_splits(heq, "left", 10, 10, 50, 0) == a != make_splits(heq, "left", 10, 10, 50, 1)


def test_unreachable_label_values_do_not_stop_the_draw():
    """y never takes 2 or 3: their quotas go to the reachable values, n still comes back."""
    model = compile_text("model M {\n input a : 0..9\n m : 0..9 = a\n"
                         " output y : 0..3 = if m == 0 then 1 else 0\n}").models["M"]
    s = make_splits(model, "m", 400, 40, 40, 0)
    assert len(s["train"]) == 400
    ys = Counter(ex.counterfactual_output["y"] for ex in s["train"])
    assert set(ys) == {0, 1} and ys[1] >= 100  # the rare value fills its quota of n / |domain|


def test_isolate_pairs_skip_what_was_trained_alone_or_jointly(heq):
    """trained_on mixes single-variable and multi-source keys: only the a-only ones can match."""
    single = make_splits(heq, "left", 3000, 10, 10, 0)["train"]
    joint = make_joint_splits(heq, ["left", "right"], 3000, 10, 10, 0, held=set())["train"]
    trained = {pair_key(ex) for ex in single} | {pair_key(ex) for ex in joint}
    alone = {k for k in trained if len(k[1]) == 1 and k[1][0][0] == "left"}
    assert len(alone) > len({pair_key(ex) for ex in single})  # the joint left-only pairs count too
    pairs = isolate_pairs(heq, "left", "right", 300, seed=1, exclude=trained)
    assert len(pairs) == 300 and not {pair_key(ex) for ex in pairs} & alone
