"""Train the cells of one grid row together: several token positions at one layer.

Why: every position at a layer shares the network's suffix, so the interventions of a row
(one per position, each with its own parameters) can run in one stacked forward per step
instead of one forward each (:func:`~abstract.neural.cache.stack_caches`). The loss is the
sum of the per-position losses, each on the same minibatch as separate training would draw
(same seed), and each intervention's parameters get only their own gradient -- so Adam takes
the same steps as it would position by position, up to float rounding; only the wall-clock
time changes.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from torch import nn

from ..neural.cache import stack_caches
from ..neural.interventions import Intervention
from ..hypothesis.plan import TrainPlan
from .train import SiteData, fit

MAX_STACK = 8  # positions per stacked pass: bounds memory at MAX_STACK x one batch


def train_stacked(runner, encoder, sds: Sequence[SiteData], intervs: Sequence[Intervention], tp: TrainPlan,
                  seed: int, on_step: Optional[Callable[[float], None]] = None) -> list[list[float]]:
    """Train ``intervs[k]`` at ``sds[k].site`` for every k in one stacked pass per step.

    Returns each intervention's per-step losses (what separate training would report)."""
    if len({len(sd) for sd in sds}) != 1:
        raise ValueError("stacked sites must hold the same pairs")
    device = sds[0].device
    for iv in intervs:
        iv.to(device).train()
    params = [p for iv in intervs for p in iv.parameters() if p.requires_grad]
    loss_fn = nn.CrossEntropyLoss()
    per_site: list[list[float]] = [[] for _ in sds]

    def loss_of(idx: torch.Tensor, step: int) -> torch.Tensor:
        i = idx.to(device)
        caches = [sd.cache.select(i) for sd in sds]
        new = torch.cat([iv(c.base_act, sd.source[i]) for iv, c, sd in zip(intervs, caches, sds)])
        lps = [sd.logit_pos for sd in sds]
        lp = None if any(p is None for p in lps) else torch.cat([p[i] for p in lps if p is not None])
        logits = encoder.class_logits(runner.run_from_site(stack_caches(caches), new, logit_positions=lp))
        parts = [loss_fn(chunk, sd.label[i]) for chunk, sd in zip(logits.split(len(i)), sds)]
        for k, part in enumerate(parts):
            per_site[k].append(float(part.detach()))
        return torch.stack(parts).sum()

    fit(params, len(sds[0]), loss_of, tp, seed, on_step)
    for iv in intervs:
        iv.eval()
    return per_site
