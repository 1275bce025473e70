"""Rejection sampling in batches toward equal counts per label (quotas), as array masks.

Why batches: a candidate costs a few array operations when drawn with a hundred thousand
others, and a Python call when drawn alone. Used for label-balanced counterfactual pairs
and for inputs balanced over one variable's values.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .vectorized import ArrayModel

GIVE_UP_FACTOR = 16  # a label never seen after this many candidates per wanted item is unreachable
MIN_ROUND, MAX_ROUND = 1024, 1 << 17  # candidates per batch


def take_first(labels: np.ndarray, remaining: np.ndarray) -> np.ndarray:
    """Mask of the first ``remaining[l]`` items (in order) of each label ``l``."""
    if len(labels) == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(labels, kind="stable")
    ordered = labels[order]
    rank = np.arange(len(ordered)) - np.searchsorted(ordered, ordered, side="left")
    mask = np.zeros(len(labels), dtype=bool)
    mask[order[rank < remaining[ordered]]] = True
    return mask


def round_size(remaining: np.ndarray, hits: np.ndarray, drawn: int, left: int) -> int:
    """Candidates for the next batch: enough to fill every open quota at the rates seen so far
    (labels not seen yet do not size it: they are searched for by doubling)."""
    open_ = remaining > 0
    seen = open_ & (hits > 0)
    if seen.any():
        want = 1.25 * float(np.max(remaining[seen] * drawn / hits[seen]))
    elif drawn:
        want = drawn
    else:
        want = 1.25 * float(remaining.sum())
    return max(1, min(max(int(want), MIN_ROUND), MAX_ROUND, left))


class QuotaFill:
    """Rejection sampling toward equal counts per label, in batches.

    ``quota[l]`` items of label ``l`` are wanted. Batches are drawn until every quota is met,
    the budget of candidates is spent, or nothing acceptable turns up at all (the filters
    exclude everything). A label never seen after ``give_up`` candidates is taken as
    unreachable. Accepted items beyond a full quota are kept as spares, to top up with."""

    def __init__(self, quota: np.ndarray, budget: int, give_up: int) -> None:
        self.remaining = quota.astype(np.int64).copy()
        self.hits = np.zeros(len(quota), dtype=np.int64)
        self.budget, self.give_up, self.drawn = budget, give_up, 0

    def next_size(self) -> int:
        """Size of the next batch, 0 when done."""
        if self.drawn >= self.budget or not (self.remaining > 0).any():
            return 0
        if self.drawn >= 4 * MIN_ROUND and not self.hits.any():
            return 0  # the filters leave nothing: the space is exhausted
        if self.drawn >= self.give_up:
            self.remaining[self.hits == 0] = 0
            if not (self.remaining > 0).any():
                return 0
        return round_size(self.remaining, self.hits, self.drawn, self.budget - self.drawn)

    def accept(self, labels: np.ndarray, ok: np.ndarray, drawn: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices taken toward the quotas, and the spare acceptable ones, of a batch."""
        self.drawn += drawn
        idx = np.flatnonzero(ok)
        lab = labels[idx]
        self.hits += np.bincount(lab, minlength=len(self.hits))
        taken = take_first(lab, self.remaining)
        self.remaining -= np.bincount(lab[taken], minlength=len(self.hits))
        return idx[taken], idx[~taken]


def draw_balanced_inputs(am: ArrayModel, n: int, rng: np.random.Generator, balance: Optional[str]) -> np.ndarray:
    """``n`` input rows; with ``balance=V``, V's values equally frequent (rejection; a value that
    is rare or unreachable leaves its share to plain uniform draws)."""
    if balance is None or n == 0:
        return am.uniform(n, rng)
    k = len(am.domains[balance])
    quota = np.full(k, n // k, dtype=np.int64)
    quota[rng.permutation(k)[:n % k]] += 1
    fill = QuotaFill(quota, budget=200 * n, give_up=GIVE_UP_FACTOR * n + 4 * MIN_ROUND)
    parts = []
    while size := fill.next_size():
        pool = am.uniform(size, rng)
        label = am.class_index(balance, am.evaluate(pool)[balance])
        ok = label >= 0
        taken, _ = fill.accept(np.where(ok, label, 0), ok, size)
        parts.append(pool[taken])
    got = sum(len(p) for p in parts)
    parts.append(am.uniform(n - got, rng))
    X = np.concatenate(parts)
    return X[rng.permutation(len(X))]
