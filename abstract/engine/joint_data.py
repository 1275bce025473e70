"""Multi-source counterfactual data for joint (MDAS-style) alignment of several variables.

Why multi-source: a shared basis with one block per variable is only pinned down when the
training signal says which block carries which variable *and* that the blocks do not leak
into each other. So every training example interchanges a non-empty subset of the group's
variables, each from its own source (label: ``CausalModel.interchange`` with those
sources); all subsets are equally common and examples are shuffled, so every minibatch mixes
single-variable and several-variable interchanges. A variable outside an example's subset
takes the base as its source (its block then changes nothing: difference form).

Held out: the joint test/dev pairs (every variable interchanged) and every variable's own
single-variable test/dev pairs are excluded from training.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Collection, Optional, Sequence

import numpy as np
import torch

from ..causal import CausalModel, CounterfactualExample, informativeness
from ..seeds import SeedStreams
from ..causal.counterfactuals import PairArrays, gc_paused
from .data import Held, PairList, as_examples, draw_arrays


@dataclass
class JointPairSet:
    """One split of multi-source examples, encoded: a source per variable and where it is active."""

    examples: list[CounterfactualExample]
    variables: tuple[str, ...]
    base_x: Any
    sources_x: dict[str, Any]  # variable -> encoded sources (the base where inactive)
    active: dict[str, torch.Tensor]  # variable -> bool[N]: is it interchanged in this example
    label: torch.Tensor
    base_label: torch.Tensor
    logit_pos: Optional[torch.Tensor]

    def __len__(self) -> int:
        return len(self.examples)


def subsets(variables: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset, smallest first, in declaration order."""
    return [c for r in range(1, len(variables) + 1) for c in itertools.combinations(variables, r)]


@gc_paused()
def make_joint_splits(model: CausalModel, variables: Sequence[str], n_train: int, n_dev: int, n_test: int,
                      seed: int, held: Collection, balance: Optional[str] = None,
                      informative: bool = False) -> dict[str, Any]:
    """Joint ``dev``/``test`` (all variables interchanged) and multi-source ``train``.

    ``held``: keys (``data.pair_key``) of single-variable pairs that training must not see.
    ``disjoint`` is False when the input space was too small to hold pairs out. Each split is a
    ``data.PairList`` (``wanted``: how many were asked for)."""
    variables = list(variables)
    streams = SeedStreams(seed)

    def draw(vs: Sequence[str], n: int, stream: str, excl: Optional[Held]) -> PairArrays:
        return draw_arrays(model, vs, n, streams.seed(stream, *vs), balance, informative, excl)

    test = draw(variables, n_test, "data/joint/test", None)
    exclude = Held()
    exclude.add(model, test)
    dev = draw(variables, n_dev, "data/joint/dev", exclude)
    exclude.add(model, dev)
    exclude.add_examples(model, held)

    def draw_train(excl: Optional[Held]) -> PairList:
        groups = subsets(variables)
        out: list[CounterfactualExample] = []
        for i, subset in enumerate(groups):
            quota = n_train // len(groups) + (1 if i < n_train % len(groups) else 0)
            out += as_examples(model, draw(subset, quota, "data/joint/train", excl), quota)
        order = np.random.default_rng(streams.seed("data/joint/shuffle", *variables)).permutation(len(out))
        return PairList([out[i] for i in order], n_train)

    train = draw_train(exclude)
    disjoint = True
    if len(train) < n_train // 2 or (n_dev > 0 and not len(dev)):
        if not len(dev):
            dev = draw(variables, n_dev, "data/joint/dev", None)
        train = draw_train(None)
        disjoint = False
    return {"train": train, "dev": as_examples(model, dev, n_dev), "test": as_examples(model, test, n_test),
            "disjoint": disjoint}


def encode_joint(examples: list[CounterfactualExample], variables: Sequence[str], encoder) -> JointPairSet:
    """Encode bases and, per variable, its sources (the base itself where it is not interchanged)."""
    bases = [ex.base for ex in examples]
    base_x = encoder.encode(bases)
    sources_x, active = {}, {}
    for v in variables:
        sources_x[v] = encoder.encode([ex.sources.get(v, ex.base) for ex in examples])
        active[v] = torch.tensor([v in ex.sources for ex in examples], dtype=torch.bool)
    label = torch.tensor([encoder.classes.index(ex.counterfactual_output) for ex in examples], dtype=torch.long)
    base_label = torch.tensor([encoder.classes.index(ex.base_output) for ex in examples], dtype=torch.long)
    return JointPairSet(examples, tuple(variables), base_x, sources_x, active, label, base_label,
                        encoder.logit_positions(base_x))


def joint_summary(splits: dict[str, Any]) -> dict[str, Any]:
    return {"train": len(splits["train"]), "dev": len(splits["dev"]), "test": len(splits["test"]),
            "informativeness": round(informativeness(splits["test"]), 4),
            "held_out": bool(splits.get("disjoint", True))}
