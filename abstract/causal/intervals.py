"""Interval arithmetic for int mechanisms: sound bounds of what an operation can return.

One implementation serves the compiler (inferring an intermediate variable's domain) and the
array evaluator (deciding whether int64 is safe); the bounds are exact at the corners and never
narrower than the true range, so a domain inferred from them holds every value.
"""
from __future__ import annotations

from typing import Sequence

Interval = tuple[int, int]
BINARY = ("+", "-", "*", "//", "%")


def op_interval(op: str, ivs: Sequence[Interval]) -> Interval:
    """Bounds of ``op`` applied to arguments bounded by ``ivs`` (bool arguments: (0, 0) or (0, 1)).
    Raises ValueError for an operation that is not int-valued arithmetic."""
    if op == "neg":
        return -ivs[0][1], -ivs[0][0]
    if op == "abs":
        lo, hi = ivs[0]
        return (0 if lo <= 0 <= hi else min(abs(lo), abs(hi))), max(abs(lo), abs(hi))
    if op in ("min", "max"):
        f = min if op == "min" else max
        return f(i[0] for i in ivs), f(i[1] for i in ivs)
    if op == "ite":
        return min(ivs[1][0], ivs[2][0]), max(ivs[1][1], ivs[2][1])
    if op not in BINARY:
        raise ValueError(f"no interval rule for {op!r}")
    (a0, a1), (b0, b1) = ivs
    if op == "+":
        return a0 + b0, a1 + b1
    if op == "-":
        return a0 - b1, a1 - b0
    if op == "*":
        prods = [a0 * b0, a0 * b1, a1 * b0, a1 * b1]
        return min(prods), max(prods)
    if op == "%":
        m = max(abs(b0), abs(b1))
        lo = -(m - 1) if b0 < 0 else 0
        hi = (m - 1) if b1 > 0 else 0
        return lo, hi
    # floor division: extremes at the corners of each sign-constant part of the divisor
    divisors = [d for d in (b0, b1, -1, 1) if b0 <= d <= b1 and d != 0]
    if not divisors:
        return 0, 0
    qs = [a // d for a in (a0, a1) for d in divisors]
    return min(qs), max(qs)
