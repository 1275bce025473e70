"""Judge a hypothesis's `expect` clauses against measured counts, with confidence intervals.

An expectation passes only when the whole confidence interval is on the right side of the
threshold (lower bound for >=, upper bound for <=): a lucky small sample cannot pass.
"""
from __future__ import annotations

from typing import Any

from ..language import ast
from .stats import judge

CONFIDENCE = 0.95
NOT_HELD_OUT = ("the input space is too small to hold test pairs out of training, so they overlap: "
                "this measures fit, not generalisation")


def measured_counts(expectation: ast.Expectation, result: dict[str, Any]) -> tuple[int, int] | None:
    """(correct, n) behind the metric an expectation names, or None when it was not measured."""
    if expectation.metric == "iia":
        var = result.get("variables", {}).get(expectation.args[0])
        if not var or "iia" not in var:
            return None
        return int(var["iia"]["correct"]), int(var["iia"]["n"])
    multi = result.get("multi") or {}
    table = multi.get(expectation.metric) or {}
    key = ",".join(expectation.args)
    if expectation.metric == "joint":  # a group is one set of variables, in whatever order
        key = next((k for k in table if set(k.split(",")) == set(expectation.args)), key)
    entry = table.get(key)
    if entry is None:
        return None
    return int(entry["correct"]), int(entry["n"])


def judge_expectations(hypothesis: ast.HypothesisDecl, result: dict[str, Any],
                       confidence: float = CONFIDENCE) -> list[dict[str, Any]]:
    """One verdict per expectation, in spec order, in the results-document shape."""
    verdicts = []
    overlap = (result.get("dataset") or {}).get("held_out") is False
    for e in hypothesis.expects:
        base = {"text": e.text, "metric": e.metric, "args": list(e.args), "op": e.op, "threshold": e.threshold,
                "confidence": confidence, "location": str(e.pos)}
        counts = measured_counts(e, result)
        if counts is None:
            reason = f"{e.metric}({', '.join(e.args)}) was not measured"
            if e.metric == "joint":
                reason += (": it needs `train ... joint true` and exactly these variables aligned via das/lowrank "
                           "at one explicit site")
            verdicts.append({**base, "value": None, "correct": 0, "n": 0, "ci_low": None, "ci_high": None,
                             "passed": False, "reason": reason})
            continue
        correct, n = counts
        label = "IIA" if e.metric == "iia" else f"{e.metric}({', '.join(e.args)})"
        verdict = {**base, **judge(e.op, e.threshold, correct, n, confidence=confidence, metric=label),
                   "correct": correct, "n": n}
        if overlap:  # still judged, but nobody should read it as a held-out result
            verdict["held_out"] = False
            verdict["reason"] += f" (warning: {NOT_HELD_OUT})"
        verdicts.append(verdict)
    return verdicts
