"""Metrics on held-out pairs, always kept as (correct, n) so the verifier can put a
confidence interval on them.

* IIA (interchange-intervention accuracy): share of test pairs on which the network, with
  the aligned site set by the intervention from the source, outputs the causal model's
  counterfactual label. Per seed; ``iia.correct/n`` is the best seed's test score, the best
  seed being chosen on the *dev* split (so the judged number is not the maximum of several
  draws on the same test pairs); ``mean`` and ``max`` over seeds are reported beside it.
* ``cause(A)`` (RAVEL): IIA of A's alignment restricted to test pairs whose A-interchange
  changes the label -- pairs where doing nothing would be scored wrong, so a site that
  ignores the source gets 0.
* ``isolate(A, B)`` (RAVEL): on pairs (base, source) where interchanging B from the source
  would give a different label than interchanging A, the share on which intervening on A's
  site (A's best seed) gives the *A-only* counterfactual label. A's subspace must not carry
  B's effect. Defined for every ordered pair of aligned variables, keyed ``"A,B"``.
"""
from __future__ import annotations

from typing import Any, Sequence


def rate(correct: int, n: int) -> float:
    return round(correct / n, 4) if n else 0.0


def seed_entry(seed: int, correct: int, n: int, dev: tuple[int, int] | None = None) -> dict[str, Any]:
    entry = {"seed": seed, "iia": rate(correct, n), "correct": correct, "n": n}
    if dev is not None:
        entry["dev_iia"] = rate(*dev)
    return entry


def best_seed_index(seeds: Sequence[dict[str, Any]]) -> int:
    """The seed to judge: best dev IIA (test IIA when no dev score); ties go to the first."""
    return max(range(len(seeds)), key=lambda i: (seeds[i].get("dev_iia", seeds[i]["iia"]), -i))


def iia_summary(seeds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and max of test IIA over seeds; correct/n of the seed chosen on dev."""
    if not seeds:
        return {"mean": None, "max": None, "best_seed": None, "correct": 0, "n": 0}
    best = seeds[best_seed_index(seeds)]
    return {"mean": round(sum(s["iia"] for s in seeds) / len(seeds), 4), "max": max(s["iia"] for s in seeds),
            "best_seed": best["seed"], "selected_by": "dev", "correct": best["correct"], "n": best["n"]}


def metric_entry(correct: int, n: int) -> dict[str, Any]:
    return {"value": rate(correct, n), "correct": correct, "n": n}
