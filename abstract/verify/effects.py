"""Judge expectations on effect sizes: `expect logit_diff(v) >= 2.0`, `prob(v) >= 0.5`, `kl(v) <= 0.1`.

The figures are means over test pairs with t intervals (``engine/effects.py``; in the results
document under ``variables[v].effects``). The rules are those of accuracies
(``expectations.py``): `>=`/`>` pass only when the lower bound clears the threshold, `<=`/`<`
only when the upper bound stays under it; a `>=`/`>` must also clear doing nothing (its lower
bound above the do-nothing figure's upper bound). Relative forms compare two intervals:
`logit_diff(v) >= do_nothing + 1.0`, `prob(v) >= control(noise) + 0.2`,
`logit_diff(v) >= logit_diff(other.v)` (left lower bound minus right upper bound for `>=`).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from ..language import ast
from .stats import fmt_ci

LABELS: dict[str, str] = {}  # metric -> how a reason names it (the metric name by default)


def effect_entry(result: Mapping[str, Any], metric: str, var: str) -> Optional[Mapping[str, Any]]:
    """``variables[var].effects[metric]`` of a result, or None when not measured."""
    v = (result.get("variables") or {}).get(var) or {}
    entry = (v.get("effects") or {}).get(metric)
    return entry if isinstance(entry, Mapping) else None


def _interval(entry: Any) -> Optional[tuple[float, float, float, int]]:
    if not isinstance(entry, Mapping):
        return None
    value, low, high = entry.get("value"), entry.get("ci_low"), entry.get("ci_high")
    nums = [x for x in (value, low, high) if isinstance(x, (int, float)) and not isinstance(x, bool)]
    if len(nums) != 3:
        return None
    return float(nums[0]), float(nums[1]), float(nums[2]), int(entry.get("n") or 0)


def _cmp(op: str, a: float, b: float) -> bool:
    return {">=": a >= b, ">": a > b, "<=": a <= b, "<": a < b}[op]


def _show(fig: tuple[float, float, float, int]) -> str:
    value, low, high, n = fig
    return f"{value:.3f} {fmt_ci(low, high)}, n={n}"


def _figure_json(fig: tuple[float, float, float, int]) -> dict[str, Any]:
    value, low, high, n = fig
    return {"value": value, "ci_low": low, "ci_high": high, "n": n}


def _against(e: ast.Expectation, result: Mapping[str, Any], entry: Mapping[str, Any],
             others: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """The ``against`` record and the right-hand figure's entry (None: not measured)."""
    a = e.against
    assert a is not None
    record: dict[str, Any] = {"text": a.text(), "kind": a.kind, "margin": a.margin}
    var = e.args[0]
    if a.kind == "do_nothing":
        return record, entry.get("do_nothing")
    if a.kind == "control":
        record["control"] = a.name
        v = (result.get("variables") or {}).get(var) or {}
        control = (v.get("controls") or {}).get(a.name) or {}
        return record, (control.get("effects") or {}).get(e.metric)
    name = a.hypothesis or str(result.get("name"))
    record.update({"metric": a.name, "args": list(a.args), "hypothesis": name})
    other = result if name == result.get("name") else others.get(name)
    if not isinstance(other, Mapping) or not a.args:
        return record, None
    return record, effect_entry(other, a.name, a.args[0])


def judge_effect(e: ast.Expectation, result: Mapping[str, Any], others: Optional[Mapping[str, Any]] = None,
                 confidence: float = 0.95) -> dict[str, Any]:
    """The verdict of one effect-size expectation, in the results-document shape."""
    others = others or {}
    label = f"{LABELS.get(e.metric, e.metric)}({', '.join(e.args)})"
    base = {"text": e.text, "metric": e.metric, "args": list(e.args), "op": e.op, "threshold": e.threshold,
            "confidence": confidence, "location": str(e.pos)}
    entry = effect_entry(result, e.metric, e.args[0]) if e.args else None
    fig = _interval(entry)
    if entry is None or fig is None:
        n = int((entry or {}).get("n") or 0)
        why = ("was not measured" if entry is None else
               f"has no interval (n={n}: it needs at least two test pairs"
               + (" whose counterfactual label is the source's own output)" if e.metric == "kl" else
                  " whose interchange changes the label)"))
        return {**base, "value": (entry or {}).get("value"), "n": n, "ci_low": None, "ci_high": None,
                "passed": False, "reason": f"{label} {why}"}
    value, low, high, n = fig
    verdict: dict[str, Any] = {**base, "value": value, "n": n, "ci_low": low, "ci_high": high}
    bound_name, bound = ("lower", low) if e.op in (">=", ">") else ("upper", high)
    if e.against is None:
        passed = _cmp(e.op, bound, e.threshold)
        reason = f"{label} {_show(fig)}: {bound_name} bound {bound:.3f} " + \
                 (f"{e.op} {e.threshold:g}" if passed else f"is not {e.op} {e.threshold:g}")
    else:
        record, right_entry = _against(e, result, entry, others)
        right = _interval(right_entry)
        if right is None:
            return {**verdict, "passed": False, "against": record,
                    "reason": f"{label} against {record['text']}: it was not measured (or has no interval)"}
        record.update(_figure_json(right))
        difference = low - right[2] if e.op in (">=", ">") else high - right[1]
        record["difference"] = round(difference, 6)
        verdict["against"] = record
        passed = _cmp(e.op, difference, e.against.margin)
        how = "lower bound minus its upper bound" if e.op in (">=", ">") else "upper bound minus its lower bound"
        reason = (f"{label} {_show(fig)} against {record['text']} {_show(right)}: {how} {difference:+.3f} "
                  + (f"{e.op} {e.against.margin:+g}" if passed else f"is not {e.op} {e.against.margin:+g}"))
    nothing = _interval(entry.get("do_nothing"))
    if nothing is not None:
        verdict["do_nothing"] = _figure_json(nothing)
        judged = e.against is None or e.against.kind != "do_nothing"
        if judged and e.op in (">=", ">"):
            if low > nothing[2]:
                reason += f"; beats doing nothing ({nothing[0]:.3f}, upper bound {nothing[2]:.3f})"
            elif passed:
                passed = False
                reason += (f"; but doing nothing gives {_show(nothing)} on the same pairs, and the lower bound does "
                           "not clear its upper bound: the intervention is not shown to do anything")
    verdict.update({"passed": passed, "reason": reason})
    return verdict



def _num(fig: Any) -> str:
    value = fig.get("value") if isinstance(fig, Mapping) else None
    return "—" if not isinstance(value, (int, float)) or isinstance(value, bool) else f"{value:.3f}"


def effect_rows(variables: Mapping[str, Any], names: Optional[Mapping[str, str]] = None) -> list[list[str]]:
    """The console's compact table of effect sizes: one row per variable and figure (value,
    95% t interval, n), then doing nothing and each control; [] when none was measured."""
    controls = list(dict.fromkeys(k for v in variables.values() if isinstance(v, Mapping)
                                  for k, c in (v.get("controls") or {}).items()
                                  if isinstance(c, Mapping) and isinstance(c.get("effects"), Mapping)))
    rows: list[list[str]] = []
    summed = False
    for name, v in variables.items():
        eff = v.get("effects") if isinstance(v, Mapping) else None
        if not isinstance(eff, Mapping):
            continue
        summed = summed or eff.get("scored") == "logprob_sum"
        for metric in ("logit_diff", "prob", "kl"):
            fig = eff.get(metric)
            if not isinstance(fig, Mapping):
                continue
            low, high = fig.get("ci_low"), fig.get("ci_high")
            ci = fmt_ci(low, high) if isinstance(low, (int, float)) and isinstance(high, (int, float)) else "—"
            beside = [((v.get("controls") or {}).get(c) or {}) for c in controls]
            rows.append([f"{metric}({name})", _num(fig), ci, str(fig.get("n", "")), _num(fig.get("do_nothing"))]
                        + [_num(((c.get("effects") if isinstance(c, Mapping) else None) or {}).get(metric))
                           for c in beside])
    if not rows:
        return []
    head = ["effect" + (" (summed log-probs)" if summed else ""), "value", "95% CI", "n", "do-nothing"] + \
        [(names or {}).get(c, c) for c in controls]
    return [head] + rows
