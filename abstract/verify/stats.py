"""Confidence intervals for accuracies, and the pass/fail rule built on them.

IIA is a proportion of held-out pairs, so a threshold is judged against a Wilson score
interval rather than the point estimate: 19/20 must not "prove" IIA >= 0.9. The Wilson interval
stays inside [0, 1] and behaves at 0/n and n/n, where the normal approximation collapses.
"""
from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

OPS = (">=", ">", "<=", "<")


def z_for(confidence: float) -> float:
    """Two-sided standard-normal quantile for a confidence level (0.95 -> 1.95996...)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for `correct` successes out of `n`; (0, 1) when n == 0 (nothing known)."""
    if n < 0 or correct < 0 or correct > n:
        raise ValueError(f"need 0 <= correct <= n, got correct={correct}, n={n}")
    if n == 0:
        return 0.0, 1.0
    z = z_for(confidence)
    p = correct / n
    z2n = z * z / n
    denom = 1.0 + z2n
    center = (p + z2n / 2.0) / denom
    half = (z / denom) * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n))
    low, high = max(0.0, center - half), min(1.0, center + half)
    # At the edges the closed form is exact; pin them so 0/n and n/n read as 0 and 1.
    if correct == 0:
        low = 0.0
    if correct == n:
        high = 1.0
    return low, high


def _cmp(op: str, a: float, b: float) -> bool:
    return {">=": a >= b, ">": a > b, "<=": a <= b, "<": a < b}[op]


def judge(op: str, threshold: float, correct: int, n: int, confidence: float = 0.95,
          metric: str = "IIA") -> dict[str, Any]:
    """Decide `metric op threshold` from counts, conservatively.

    `>=`/`>` pass only when the interval's lower bound clears the threshold; `<=`/`<` only when
    its upper bound does. Returns value, ci_low, ci_high, passed and a one-line human reason.
    """
    if op not in OPS:
        raise ValueError(f"unknown comparison {op!r}; expected one of {', '.join(OPS)}")
    if n == 0:
        return {"value": None, "ci_low": None, "ci_high": None, "passed": False,
                "reason": f"{metric}: no held-out pairs (n=0), nothing to judge"}
    low, high = wilson_interval(correct, n, confidence)
    value = correct / n
    bound_name, bound = ("lower", low) if op in (">=", ">") else ("upper", high)
    passed = _cmp(op, bound, threshold)
    head = f"{metric} {value:.3f} [{low:.3f}, {high:.3f}], n={n}: {bound_name} bound {bound:.3f}"
    if passed:
        reason = f"{head} {op} {threshold:g}"
    else:
        reason = f"{head} is not {op} {threshold:g}"
        if _cmp(op, value, threshold):
            reason += f" (the point estimate is, but {n} pairs are too few to be sure at {confidence:.0%})"
    return {"value": round(value, 6), "ci_low": round(low, 6), "ci_high": round(high, 6), "passed": passed,
            "reason": reason}


def judge_relative(op: str, margin: float, left: tuple[int, int], right: tuple[int, int], confidence: float = 0.95,
                   metric: str = "IIA", against: str = "the baseline") -> dict[str, Any]:
    """Decide `metric op AGAINST + margin` from two counts, conservatively, with both intervals.

    `>=`/`>` pass only when the left figure's lower bound minus the right figure's upper bound
    clears the margin; `<=`/`<` only when the left's upper bound minus the right's lower bound
    does. Returns value, ci_low, ci_high (the left figure's), passed, reason and ``difference``
    (the bound difference that was compared with the margin)."""
    if op not in OPS:
        raise ValueError(f"unknown comparison {op!r}; expected one of {', '.join(OPS)}")
    (lc, ln), (rc, rn) = left, right
    if ln == 0 or rn == 0:
        side = metric if ln == 0 else against
        return {"value": None if ln == 0 else round(lc / ln, 6), "ci_low": None, "ci_high": None, "passed": False,
                "difference": None, "reason": f"{side}: no held-out pairs (n=0), nothing to judge"}
    low, high = wilson_interval(lc, ln, confidence)
    r_low, r_high = wilson_interval(rc, rn, confidence)
    value, r_value = lc / ln, rc / rn
    if op in (">=", ">"):
        difference, how = low - r_high, "lower bound minus its upper bound"
    else:
        difference, how = high - r_low, "upper bound minus its lower bound"
    passed = _cmp(op, difference, margin)
    head = (f"{metric} {value:.3f} [{low:.3f}, {high:.3f}], n={ln} against {against} {r_value:.3f} "
            f"[{r_low:.3f}, {r_high:.3f}], n={rn}: {how} {difference:+.3f}")
    if passed:
        reason = f"{head} {op} {margin:+g}"
    else:
        reason = f"{head} is not {op} {margin:+g}"
        if _cmp(op, value - r_value, margin):
            reason += (f" (the point estimates differ by {value - r_value:+.3f}, but the pairs are too few to be "
                       f"sure at {confidence:.0%})")
    return {"value": round(value, 6), "ci_low": round(low, 6), "ci_high": round(high, 6), "passed": passed,
            "difference": round(difference, 6), "reason": reason}


def fmt_ci(low: float | None, high: float | None, digits: int = 3) -> str:
    """'[0.966, 0.980]', or an em dash when unknown; shared by the summary, JUnit and HTML."""
    if low is None or high is None:
        return "—"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def fmt_value(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def judged_iia(iia: dict) -> float | None:
    """The IIA an expectation is judged on: the dev-selected seed's correct/n on test pairs
    (older documents without counts fall back to the max over seeds)."""
    correct, n = iia.get("correct"), iia.get("n")
    if isinstance(n, int) and n > 0 and correct is not None:
        return correct / n
    return iia.get("max")


def _t_mass(x: float, df: int, steps: int = 2000) -> float:
    """P(0 <= T <= x) for Student's t with ``df`` degrees of freedom (Simpson's rule)."""
    v = float(df)
    c = math.exp(math.lgamma((v + 1) / 2) - math.lgamma(v / 2)) / math.sqrt(v * math.pi)
    h = x / steps
    total = 0.0
    for i in range(steps + 1):
        w = 1 if i in (0, steps) else (4 if i % 2 else 2)
        total += w * (1 + (i * h) ** 2 / v) ** (-(v + 1) / 2)
    return c * total * h / 3


def t_quantile(confidence: float, df: int) -> float:
    """Two-sided Student t quantile: bisection on the integrated density for small ``df``, the
    Cornish-Fisher expansion around the normal quantile from df 30 on (within 1e-5 there)."""
    z = z_for(confidence)
    if df <= 0:
        return math.inf
    if df < 30:
        lo, hi = z, 700.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if _t_mass(mid, df) < confidence / 2 else (lo, mid)
        return (lo + hi) / 2
    v = float(df)
    return (z + (z ** 3 + z) / (4 * v) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * v ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * v ** 3))


def mean_interval(values: "list[float]", confidence: float = 0.95, low_limit: float | None = None,
                  high_limit: float | None = None) -> tuple[float | None, float | None, float | None]:
    """(mean, ci_low, ci_high) of ``values`` with a t interval, clipped to the figure's own range
    (a probability stays in [0, 1], a KL above 0); (None, None, None) for no values, and no
    interval for a single one. Why t: effect sizes are means of continuous per-pair figures."""
    n = len(values)
    if n == 0:
        return None, None, None
    mean = sum(values) / n
    if n == 1:
        return mean, None, None
    var = sum((x - mean) ** 2 for x in values) / (n - 1)
    half = t_quantile(confidence, n - 1) * math.sqrt(var / n)
    low, high = mean - half, mean + half
    if low_limit is not None:
        low = max(low, low_limit)
    if high_limit is not None:
        high = min(high, high_limit)
    return mean, low, high
