"""Metrics on held-out pairs, always kept as (correct, n) so the verifier can put a
confidence interval on them.

* IIA (interchange-intervention accuracy): share of test pairs on which the network, with
  the aligned site set by the intervention from the source, outputs the causal model's
  counterfactual label. Per seed; ``iia.correct/n`` is the best seed's (best on *test*, as
  in the DAS paper's "best run"; ``mean`` over seeds is reported beside it).
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


def seed_entry(seed: int, correct: int, n: int) -> dict[str, Any]:
    return {"seed": seed, "iia": rate(correct, n), "correct": correct, "n": n}


def iia_summary(seeds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and max over seeds; correct/n of the best seed (ties: the first)."""
    if not seeds:
        return {"mean": None, "max": None, "best_seed": None, "correct": 0, "n": 0}
    best = max(seeds, key=lambda s: (s["iia"], -seeds.index(s)))
    return {"mean": round(sum(s["iia"] for s in seeds) / len(seeds), 4), "max": best["iia"],
            "best_seed": best["seed"], "correct": best["correct"], "n": best["n"]}


def metric_entry(correct: int, n: int) -> dict[str, Any]:
    return {"value": rate(correct, n), "correct": correct, "n": n}
