"""Evaluation, do-interventions and interchange interventions, checked against values
worked out by hand."""
from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from abstract.language import compile_text, load_spec

SPECS = Path(__file__).resolve().parents[2] / "specs"


@pytest.fixture(scope="module")
def heq():
    return load_spec(SPECS / "hierarchical_equality.causal").models


@pytest.fixture(scope="module")
def add():
    return load_spec(SPECS / "addition.causal").models["Addition"]


def shapes(a, b, c, d):
    return {"a": a, "b": b, "c": c, "d": d}


def digits(x, y):
    return {"a1": x // 10, "a0": x % 10, "b1": y // 10, "b0": y % 10}


# ----------------------------------------------------------------- hierarchical equality
def test_hierarchical_equality_evaluation(heq):
    m = heq["HierarchicalEquality"]
    assert m.evaluate(shapes(1, 1, 2, 3)) == {**shapes(1, 1, 2, 3), "left": True, "right": False, "label": False}
    assert m.run(shapes(0, 1, 2, 3)) == {"label": True}     # both pairs differ: alike
    assert m.run(shapes(2, 2, 3, 3)) == {"label": True}
    assert m.run(shapes(2, 2, 3, 1)) == {"label": False}


def test_interchange_left(heq):
    m = heq["HierarchicalEquality"]
    out = m.interchange(shapes(1, 1, 2, 3), {"left": shapes(1, 2, 0, 0)})
    assert out["left"] is False and out["right"] is False and out["label"] is True
    # the source's right pair (0, 0) is equal, but only `left` is taken from it
    assert out["a"] == 1 and out["b"] == 1


def test_multi_source_interchange(heq):
    m = heq["HierarchicalEquality"]
    base = shapes(1, 1, 2, 2)                                   # left T, right T: label T
    src_left, src_right = shapes(0, 1, 3, 3), shapes(3, 3, 0, 1)  # left F from one, right F from the other
    assert m.interchange(base, {"left": src_left})["label"] is False
    assert m.interchange(base, {"right": src_right})["label"] is False
    both = m.interchange(base, {"left": src_left, "right": src_right})
    assert (both["left"], both["right"], both["label"]) == (False, False, True)


def test_interchange_on_the_wrong_hypothesis(heq):
    m = heq["IdentityOfFirst"]
    # w takes a = 3 from the source: (3 == b=1) == (2 == 3) -> False == False -> True
    out = m.interchange(shapes(1, 1, 2, 3), {"w": shapes(3, 3, 0, 0)})
    assert out["w"] == 3 and out["label"] is True
    # the same source leaves HierarchicalEquality's left True: label stays False
    assert heq["HierarchicalEquality"].interchange(shapes(1, 1, 2, 3), {"left": shapes(3, 3, 0, 0)})["label"] is False


def test_do_on_several_variables(heq):
    m = heq["HierarchicalEquality"]
    for x in list(m.enumerate_inputs())[::17]:
        assert m.run(x, do={"left": True, "right": True}) == {"label": True}
        assert m.run(x, do={"left": True, "right": False}) == {"label": False}
    v = m.evaluate(shapes(0, 1, 2, 3), do={"a": 1, "right": True})   # an input can be held fixed too
    assert (v["a"], v["left"], v["right"], v["label"]) == (1, True, True, True)
    assert m.intervene(shapes(0, 1, 2, 3), do={"label": False})["label"] is False


def test_do_checks_names_and_domains(heq):
    m = heq["HierarchicalEquality"]
    with pytest.raises(KeyError):
        m.evaluate(shapes(0, 0, 0, 0), do={"middle": True})
    with pytest.raises(ValueError):
        m.evaluate(shapes(0, 0, 0, 0), do={"left": 1})        # 1 is not a bool
    with pytest.raises(ValueError):
        m.evaluate(shapes(0, 0, 0, 4))                        # 4 is outside Shape = 0..3
    with pytest.raises(KeyError):
        m.evaluate({"a": 0, "b": 0, "c": 0})


# ----------------------------------------------------------------- addition
def test_addition_with_carry(add):
    v = add.evaluate(digits(27, 58))
    assert (v["ones"], v["carry"], v["tens"]) == (15, 1, 8)
    assert (v["s2"], v["s1"], v["s0"]) == (0, 8, 5)            # 27 + 58 = 085
    assert add.run(digits(99, 99)) == {"s2": 1, "s1": 9, "s0": 8}


def test_interchange_carry(add):
    no_carry = digits(12, 34)
    assert add.evaluate(no_carry)["carry"] == 0
    out = add.interchange(digits(27, 58), {"carry": no_carry})
    assert (out["carry"], out["s2"], out["s1"], out["s0"]) == (0, 0, 7, 5)   # 075: the tens lose the carry
    out = add.interchange(digits(99, 99), {"carry": no_carry})
    assert (out["s2"], out["s1"], out["s0"]) == (1, 8, 8)                    # 188
    out = add.interchange(digits(12, 34), {"carry": digits(27, 58)})
    assert (out["s2"], out["s1"], out["s0"]) == (0, 5, 6)                    # 12 + 34 with a carry: 056


def test_interchange_ones_changes_two_digits(add):
    # ones = 15 from 27 + 58 into 10 + 20: s0 = 5, carry 1, tens 1 + 2 + 1 = 4
    assert add.run(digits(10, 20), do=None) == {"s2": 0, "s1": 3, "s0": 0}
    out = add.interchange(digits(10, 20), {"ones": digits(27, 58)})
    assert (out["s2"], out["s1"], out["s0"]) == (0, 4, 5)
    assert add.run(digits(10, 20), do={"ones": 15, "carry": 0}) == {"s2": 0, "s1": 3, "s0": 5}


# ----------------------------------------------------------------- properties
@pytest.mark.parametrize("name", ["HierarchicalEquality", "IdentityOfFirst", "LeftOnly"])
def test_interchange_with_the_base_as_source_changes_nothing(heq, name):
    m = heq[name]
    internal = [v for v in m.variables if m.variables[v].kind != "input"]
    for x in m.enumerate_inputs():
        plain = m.evaluate(x)
        for v in internal:
            assert m.interchange(x, {v: x}) == plain
        assert m.interchange(x, {v: x for v in internal}) == plain


def test_interchanging_an_input_is_swapping_that_input(heq):
    m = heq["HierarchicalEquality"]
    rng = random.Random(0)
    for _ in range(100):
        base, src = m.sample_input(rng), m.sample_input(rng)
        assert m.interchange(base, {"a": src}) == m.evaluate({**base, "a": src["a"]})


def test_enumerate_inputs(heq, add):
    for m in (heq["HierarchicalEquality"], add):
        xs = list(m.enumerate_inputs())
        assert len(xs) == m.input_space_size()
        assert len({tuple(sorted(x.items())) for x in xs}) == len(xs)
        assert all(set(x) == set(m.inputs) for x in xs)
    assert heq["HierarchicalEquality"].input_space_size() == 4 ** 4
    assert add.input_space_size() == 10 ** 4


def test_sample_inputs_uniform_and_balanced(heq):
    m = heq["HierarchicalEquality"]
    n = 4000
    plain = Counter(m.evaluate(x)["left"] for x in m.sample_inputs(n, seed=1))
    assert abs(plain[True] / n - 0.25) < 0.03                 # a == b a quarter of the time
    balanced = m.sample_inputs(n, seed=1, balance="left")
    assert len(balanced) == n
    counts = Counter(m.evaluate(x)["left"] for x in balanced)
    assert abs(counts[True] / n - 0.5) < 0.02
    by_label = Counter(m.run(x)["label"] for x in m.sample_inputs(n, seed=2, balance="label"))
    assert abs(by_label[True] / n - 0.5) < 0.02


def test_sampling_is_reproducible(heq):
    m = heq["HierarchicalEquality"]
    assert m.sample_inputs(50, seed=3) == m.sample_inputs(50, seed=3)
    assert m.sample_inputs(50, seed=3, balance="left") == m.sample_inputs(50, seed=3, balance="left")
    assert m.sample_inputs(50, seed=3) != m.sample_inputs(50, seed=4)


def test_balancing_with_unreachable_values_still_returns_n():
    m = compile_text("model M {\n input a : 0..9\n output y : 0..3 = if a == 0 then 1 else 0\n}").models["M"]
    xs = m.sample_inputs(100, seed=0, balance="y")        # y = 2, 3 never happen; y = 1 is rare
    assert len(xs) == 100
    ys = Counter(m.run(x)["y"] for x in xs)
    assert set(ys) == {0, 1} and ys[1] >= 25               # the rare value fills its quota of n / |domain|
