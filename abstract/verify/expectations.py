"""Judge a hypothesis's `expect` clauses against measured counts, with confidence intervals.

An expectation passes only when the whole confidence interval is on the right side of the
threshold (lower bound for >=, upper bound for <=): a lucky small sample cannot pass.

The do-nothing rule (docs/validity.md): a `>=`/`>` expectation on a figure that has a
do-nothing baseline (what leaving the site unchanged scores on the same pairs) passes only
when, besides clearing the threshold, its lower bound also clears the baseline's *upper*
bound. On pairs whose label the interchange does not change, doing nothing is "right", so
without this rule an intervention that does nothing could pass `iia(x) >= 0.9`.
"""
from __future__ import annotations

from typing import Any

from ..language import ast
from .stats import judge, wilson_interval

CONFIDENCE = 0.95
NOT_HELD_OUT = ("the input space is too small to hold test pairs out of training, so they overlap: "
                "this measures fit, not generalisation")


def measured_entry(expectation: ast.Expectation, result: dict[str, Any]) -> dict[str, Any] | None:
    """The entry (with ``correct``/``n``, maybe ``do_nothing``) behind the metric an expectation
    names, or None when it was not measured."""
    if expectation.metric == "iia":
        var = result.get("variables", {}).get(expectation.args[0])
        if not var or "iia" not in var:
            return None
        entry: dict[str, Any] = var["iia"]
        return entry
    multi = result.get("multi") or {}
    table = multi.get(expectation.metric) or {}
    key = ",".join(expectation.args)
    if expectation.metric == "joint":  # a group is one set of variables, in whatever order
        key = next((k for k in table if set(k.split(",")) == set(expectation.args)), key)
    return table.get(key)


def measured_counts(expectation: ast.Expectation, result: dict[str, Any]) -> tuple[int, int] | None:
    """(correct, n) behind the metric an expectation names, or None when it was not measured."""
    entry = measured_entry(expectation, result)
    if entry is None:
        return None
    return int(entry["correct"]), int(entry["n"])


def apply_do_nothing_rule(verdict: dict[str, Any], baseline: dict[str, Any] | None, confidence: float) -> None:
    """Record the do-nothing baseline in ``verdict`` and fail a `>=`/`>` whose lower bound does
    not clear the baseline's upper bound (see the module docstring)."""
    if not isinstance(baseline, dict) or not baseline.get("n"):
        return
    correct, n = int(baseline["correct"]), int(baseline["n"])
    low, high = wilson_interval(correct, n, confidence)
    verdict["do_nothing"] = {"value": round(correct / n, 6), "correct": correct, "n": n,
                             "ci_low": round(low, 6), "ci_high": round(high, 6)}
    if verdict["op"] not in (">=", ">") or verdict.get("ci_low") is None:
        return
    if verdict["ci_low"] > high:
        verdict["reason"] += f"; beats doing nothing ({correct / n:.3f}, upper bound {high:.3f})"
        return
    if verdict["passed"]:
        verdict["passed"] = False
        verdict["reason"] += (f"; but doing nothing scores {correct / n:.3f} [{low:.3f}, {high:.3f}] on the same "
                              "pairs, and the lower bound does not clear its upper bound: the intervention is not "
                              "shown to do anything (use `data informative true`, or a variable that changes the "
                              "output)")
    else:
        verdict["reason"] += f"; doing nothing scores {correct / n:.3f} on the same pairs"


def judge_expectations(hypothesis: ast.HypothesisDecl, result: dict[str, Any],
                       confidence: float = CONFIDENCE) -> list[dict[str, Any]]:
    """One verdict per expectation, in spec order, in the results-document shape."""
    verdicts = []
    overlap = (result.get("dataset") or {}).get("held_out") is False
    for e in hypothesis.expects:
        base = {"text": e.text, "metric": e.metric, "args": list(e.args), "op": e.op, "threshold": e.threshold,
                "confidence": confidence, "location": str(e.pos)}
        entry = measured_entry(e, result)
        if entry is None:
            reason = f"{e.metric}({', '.join(e.args)}) was not measured"
            if e.metric == "joint":
                reason += (": it needs `train ... joint true` and exactly these variables aligned via das/lowrank "
                           "at one explicit site")
            verdicts.append({**base, "value": None, "correct": 0, "n": 0, "ci_low": None, "ci_high": None,
                             "passed": False, "reason": reason})
            continue
        correct, n = int(entry["correct"]), int(entry["n"])
        label = "IIA" if e.metric == "iia" else f"{e.metric}({', '.join(e.args)})"
        verdict = {**base, **judge(e.op, e.threshold, correct, n, confidence=confidence, metric=label),
                   "correct": correct, "n": n}
        apply_do_nothing_rule(verdict, entry.get("do_nothing"), confidence)
        if overlap:  # still judged, but nobody should read it as a held-out result
            verdict["held_out"] = False
            verdict["reason"] += f" (warning: {NOT_HELD_OUT})"
        verdicts.append(verdict)
    return verdicts
