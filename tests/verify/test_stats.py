"""Wilson intervals against known values, and the conservative pass rule built on them."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, strategies as st

from abstract.verify.stats import fmt_ci, judge, wilson_interval, z_for


def test_z_for_95_percent():
    assert z_for(0.95) == pytest.approx(1.959964, abs=1e-6)
    with pytest.raises(ValueError):
        z_for(1.0)


def test_wilson_known_value():
    low, high = wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=1e-4)
    assert high == pytest.approx(0.3662, abs=1e-4)


def test_wilson_99_percent_is_wider():
    low95, high95 = wilson_interval(81, 263, 0.95)
    low99, high99 = wilson_interval(81, 263, 0.99)
    assert low99 < low95 and high99 > high95


def test_wilson_edges():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(0.7225, abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_contains_estimate(cn):
    correct, n = cn
    low, high = wilson_interval(correct, n)
    assert 0.0 <= low <= correct / n <= high <= 1.0


def test_judge_passes_on_lower_bound():
    r = judge(">=", 0.9, 1948, 2000)
    assert r["passed"] and r["value"] == pytest.approx(0.974)
    assert r["reason"] == "IIA 0.974 [0.966, 0.980], n=2000: lower bound 0.966 >= 0.9"


def test_judge_small_sample_cannot_pass():
    r = judge(">=", 0.9, 19, 20)  # point estimate 0.95, but the interval reaches down to 0.76
    assert not r["passed"]
    assert "too few" in r["reason"]


def test_judge_upper_bound_for_at_most():
    assert judge("<=", 0.6, 1024, 2000)["passed"]
    assert not judge("<=", 0.6, 115, 200)["passed"]  # 0.575, but the upper bound is above 0.6
    assert judge("<", 0.6, 1024, 2000)["passed"]


def test_judge_strict_and_metric_label():
    assert not judge(">", 0.0, 0, 50)["passed"]
    r = judge(">=", 0.8, 1883, 2000, metric="isolate(left, right)")
    assert r["reason"].startswith("isolate(left, right) 0.942")


def test_judge_nothing_measured():
    r = judge(">=", 0.9, 0, 0)
    assert not r["passed"] and r["value"] is None and "n=0" in r["reason"]


def test_judge_rejects_unknown_op():
    with pytest.raises(ValueError):
        judge("==", 0.9, 1, 2)


def test_fmt_ci():
    assert fmt_ci(0.2553, 0.3662) == "[0.255, 0.366]"
    assert fmt_ci(None, None) == "—"
    assert not math.isnan(judge(">=", 0.5, 1, 1)["ci_low"])
