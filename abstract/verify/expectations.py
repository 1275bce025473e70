"""Judge a hypothesis's `expect` clauses against measured counts, with confidence intervals.

An expectation passes only when the whole confidence interval is on the right side of the
threshold (lower bound for >=, upper bound for <=): a lucky small sample cannot pass.

A relative expectation (`iia(x) >= control(random_rotation) + 0.2`, `iia(x) >= do_nothing + 0.5`,
`iia(x) >= iia(other.x) + 0.1`) compares two intervals: for >= the left figure's lower bound
minus the right figure's upper bound must clear the margin, for <= the left's upper bound minus
the right's lower bound must stay under it (`stats.judge_relative`). The right-hand figure is
recorded in the verdict under ``against`` with its counts and interval.

The do-nothing rule (docs/validity.md): a `>=`/`>` expectation on a figure that has a
do-nothing baseline (what leaving the site unchanged scores on the same pairs) passes only
when, besides clearing the threshold, its lower bound also clears the baseline's *upper*
bound. On pairs whose label the interchange does not change, doing nothing is "right", so
without this rule an intervention that does nothing could pass `iia(x) >= 0.9`. The rule holds
for relative `>=`/`>` expectations too (a figure that beats a control, or another hypothesis,
must still beat doing nothing), except those stated against `do_nothing` itself, which say
explicitly how far above it the figure must be.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..language import ast
from .effects import judge_effect
from .stats import judge, judge_relative, wilson_interval

CONFIDENCE = 0.95
EFFECT_METRICS = ("logit_diff", "prob", "kl")
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


def figure(correct: int, n: int, confidence: float) -> dict[str, Any]:
    """``{value, correct, n, ci_low, ci_high}`` of a count (value and interval null when n is 0)."""
    if n <= 0:
        return {"value": None, "correct": correct, "n": n, "ci_low": None, "ci_high": None}
    low, high = wilson_interval(correct, n, confidence)
    return {"value": round(correct / n, 6), "correct": correct, "n": n, "ci_low": round(low, 6),
            "ci_high": round(high, 6)}


def apply_do_nothing_rule(verdict: dict[str, Any], baseline: dict[str, Any] | None, confidence: float,
                          judged: bool = True) -> None:
    """Record the do-nothing baseline in ``verdict`` and fail a `>=`/`>` whose lower bound does
    not clear the baseline's upper bound (see the module docstring); ``judged`` False only records."""
    if not isinstance(baseline, dict) or not baseline.get("n"):
        return
    correct, n = int(baseline["correct"]), int(baseline["n"])
    low, high = wilson_interval(correct, n, confidence)
    verdict["do_nothing"] = {"value": round(correct / n, 6), "correct": correct, "n": n,
                             "ci_low": round(low, 6), "ci_high": round(high, 6)}
    if not judged or verdict["op"] not in (">=", ">") or verdict.get("ci_low") is None:
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


Results = Mapping[str, Any]  # hypothesis name -> its result, or a str saying why there is none


def _counts(entry: Any) -> tuple[int, int] | None:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("n"), int) or not isinstance(entry.get("correct"),
                                                                                              int):
        return None
    return int(entry["correct"]), int(entry["n"])


def against_figure(e: ast.Expectation, entry: Mapping[str, Any], result: dict[str, Any], others: Results,
                   plans: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], tuple[int, int] | str]:
    """What the right-hand side of a relative expectation names: the ``against`` record (without
    its figure) and the counts behind it, or the reason it was not measured."""
    a = e.against
    assert a is not None
    record: dict[str, Any] = {"text": a.text(), "kind": a.kind, "margin": a.margin}
    if a.kind == "do_nothing":
        counts = _counts(entry.get("do_nothing"))
        return record, counts or f"the do-nothing baseline of {e.metric}({', '.join(e.args)}) was not measured"
    if a.kind == "control":
        record["control"] = a.name
        var = (result.get("variables") or {}).get(e.args[0]) or {}
        control = (var.get("controls") or {}).get(a.name)
        counts = _counts(control if e.metric == "iia" else (control or {}).get(e.metric))
        return record, counts or f"control {a.name} was not measured for {e.metric}({e.args[0]})"
    own = a.hypothesis is None or a.hypothesis == result.get("name")
    name = str(result.get("name")) if own else str(a.hypothesis)
    record.update({"metric": a.name, "args": list(a.args), "hypothesis": name})
    other = result if own else others.get(name)
    if other is None or isinstance(other, str):
        return record, f"hypothesis {name} has no result ({other or 'it was not run'})"
    ref = ast.Expectation(a.name, a.args, e.op, 0.0)
    counts = _counts(measured_entry(ref, other))
    if counts is None:
        return record, f"{a.text()} was not measured"
    if not own:
        record["same_pairs"] = same_pairs(e, result, other, plans)
    return record, counts


def same_pairs(e: ast.Expectation, result: Mapping[str, Any], other: Mapping[str, Any],
               plans: Mapping[str, Any] | None) -> bool:
    """Whether two hypotheses' figures are measured on the very same test pairs: the same metric
    (iia or cause) of the same variable of the same model, with the same `data test`,
    `balance` and `informative` (test pairs are drawn from the run's seed, the model and the
    variable only: ``engine.data.make_splits``)."""
    a = e.against
    if a is None or a.name != e.metric or e.metric not in ("iia", "cause") or tuple(a.args) != tuple(e.args):
        return False
    if result.get("model") != other.get("model"):
        return False
    mine, theirs = (plans or {}).get(str(result.get("name"))), (plans or {}).get(str(other.get("name")))
    if mine is None or theirs is None:
        return False
    return all(getattr(mine.data, k) == getattr(theirs.data, k) for k in ("test", "balance", "informative"))


def judge_expectations(hypothesis: ast.HypothesisDecl, result: dict[str, Any],
                       confidence: float = CONFIDENCE, others: Results | None = None,
                       plans: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One verdict per expectation, in spec order, in the results-document shape.

    ``others``: the results of the spec's other hypotheses by name (a str where one has none,
    e.g. it errored), for expectations that compare with them; ``plans``: the compiled plans,
    to tell whether two hypotheses' figures share their test pairs."""
    verdicts = []
    others = others or {}
    overlap = (result.get("dataset") or {}).get("held_out") is False
    for e in hypothesis.expects:
        if e.metric in EFFECT_METRICS:  # means with t intervals: abstract.verify.effects
            verdicts.append(judge_effect(e, result, others, confidence))
            if overlap:
                verdicts[-1]["held_out"] = False
                verdicts[-1]["reason"] += f" (warning: {NOT_HELD_OUT})"
            continue
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
        if e.against is None:
            verdict = {**base, **judge(e.op, e.threshold, correct, n, confidence=confidence, metric=label),
                       "correct": correct, "n": n}
            apply_do_nothing_rule(verdict, entry.get("do_nothing"), confidence)
        else:
            record, right = against_figure(e, entry, result, others, plans)
            if isinstance(right, str):
                verdict = {**base, **figure(correct, n, confidence), "passed": False,
                           "reason": f"{label} against {record['text']}: {right}", "against": record}
            else:
                judged = judge_relative(e.op, e.against.margin, (correct, n), right, confidence, label,
                                        record["text"])
                record.update(figure(*right, confidence))
                record["difference"] = judged.pop("difference")
                verdict = {**base, **judged, "correct": correct, "n": n, "against": record}
                if record.get("same_pairs") is False:
                    verdict["reason"] += " (the two figures are measured on different test pairs)"
            apply_do_nothing_rule(verdict, entry.get("do_nothing"), confidence,
                                  judged=e.against.kind != "do_nothing")
        if overlap:  # still judged, but nobody should read it as a held-out result
            verdict["held_out"] = False
            verdict["reason"] += f" (warning: {NOT_HELD_OUT})"
        verdicts.append(verdict)
    return verdicts


def referenced_hypotheses(hypothesis: ast.HypothesisDecl) -> list[str]:
    """The other hypotheses whose figures ``hypothesis``'s expectations compare with."""
    out: list[str] = []
    for e in hypothesis.expects:
        a = e.against
        if a is not None and a.kind == "metric" and a.hypothesis and a.hypothesis != hypothesis.name:
            if a.hypothesis not in out:
                out.append(a.hypothesis)
    return out
