"""Train one intervention at one site on a frozen network, and evaluate it.

Why it is cheap: the network never changes, so the source activations at the site and the
base forward up to the site are computed once per (site, split) (:func:`prepare_site`,
:func:`prepare_sites`) and every training step runs only the part of the network after the
site (``runner.run_from_site``). Loss: cross-entropy of the intervened network's class scores
(classes = the output domain) against the causal model's counterfactual label.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from ..neural.cache import BaseCache
from ..neural.interventions import (DAS, BoundlessDAS, Intervention, LowRankRotation, NeuronInterchange,
                                    VectorInterchange, random_rotation_control, temperature_schedule)
from ..neural.sites import Site
from .data import PairSet, minibatches
from ..hypothesis.plan import InterventionPlan, TrainPlan

# Above this width `das` keeps only the k used columns of the rotation (LowRankRotation): the
# same function class (a k-dim subspace swap) without a hidden x hidden orthogonal matrix.
FULL_ROTATION_MAX = 256
BOUNDLESS_PENALTY = 1e-3
EVAL_BATCH = 1024


def make_intervention(ip: InterventionPlan, hidden: int, seed: int) -> Intervention:
    """A fresh intervention module of the planned kind (seeded initialisation)."""
    if ip.kind == "das":
        cls = DAS if hidden <= FULL_ROTATION_MAX else LowRankRotation
        return cls(hidden, _dim(ip, hidden), seed=seed)
    if ip.kind == "lowrank":
        return LowRankRotation(hidden, _dim(ip, hidden), seed=seed)
    if ip.kind == "boundless":
        return BoundlessDAS(hidden, seed=seed, temperature=50.0)
    if ip.kind == "neurons":
        return NeuronInterchange(hidden, ip.neurons)
    return VectorInterchange()


def _dim(ip: InterventionPlan, hidden: int) -> int:
    if ip.dim is None or ip.dim > hidden:
        raise ValueError(f"{ip.kind}(dim={ip.dim}) does not fit a site of width {hidden}")
    return ip.dim


def random_rotation(ip: InterventionPlan, hidden: int, seed: int) -> Intervention:
    """The `random_rotation` control: an untrained rotation with as many dims as the alignment."""
    k = min(ip.dim or max(1, hidden // 2), hidden)
    return random_rotation_control(hidden, k, seed=seed)


def describe(ip: InterventionPlan, interv: Intervention, hidden: int) -> dict[str, Any]:
    out = {**ip.to_json(), "hidden": hidden}
    if isinstance(interv, DAS):
        out["parametrization"] = "full_rotation"
        out["effective_dim"] = interv.k
    elif isinstance(interv, LowRankRotation):
        out["parametrization"] = "orthonormal_columns"
        out["effective_dim"] = interv.k
    elif isinstance(interv, BoundlessDAS):
        out["parametrization"] = "full_rotation_soft_mask"
        out["dim"] = round(interv.effective_dim, 2)
        out["effective_dim"] = out["dim"]  # sum of the learned mask (``dim`` kept for older readers)
    return out


@dataclass
class SiteData:
    """Everything fixed about one split at one site: base prefix cache and source activations."""

    site: Site
    cache: BaseCache
    source: torch.Tensor  # [N, hidden]
    label: torch.Tensor
    logit_pos: Optional[torch.Tensor]

    @property
    def hidden(self) -> int:
        return int(self.source.shape[1])

    def __len__(self) -> int:
        return int(self.label.shape[0])


def prepare_site(runner, site: Site, pairs: PairSet) -> SiteData:
    """One forward of the bases (kept as a prefix cache) and one of the sources (activations)."""
    return prepare_sites(runner, [site], pairs)[0]


def prepare_sites(runner, sites: Sequence[Site], pairs: PairSet) -> list[SiteData]:
    """SiteData for several sites from one base forward and one source forward; sites at one
    layer share the prefix tensors (one copy in memory, not one per position)."""
    caches = runner.prepare_many(pairs.base_x, sites)
    sources = runner.collect_many(pairs.source_x, sites)
    out = []
    for s in sites:
        dev = caches[s].base_act.device
        lp = pairs.logit_pos.to(dev) if pairs.logit_pos is not None else None
        out.append(SiteData(s, caches[s], sources[s], pairs.label.to(dev), lp))
    return out


def _logits(runner, encoder, sd: SiteData, interv: Intervention, idx: Optional[torch.Tensor]) -> torch.Tensor:
    if idx is None:
        cache, src, lp = sd.cache, sd.source, sd.logit_pos
    else:
        i = idx.to(sd.source.device)
        cache, src = sd.cache.select(i), sd.source[i]
        lp = sd.logit_pos[i] if sd.logit_pos is not None else None
    out = runner.run_from_site(cache, lambda b: interv(b, src), logit_positions=lp)
    return encoder.class_logits(out)


def fit(params: list[torch.Tensor], n: int, loss_of: Callable[[torch.Tensor, int], torch.Tensor], tp: TrainPlan,
        seed: int, on_step: Optional[Callable[[float], None]] = None) -> list[float]:
    """Adam over ``tp.epochs`` seeded shuffles of ``range(n)``; ``loss_of(batch_idx, step)``.

    Shared by single-variable and joint training so both see the same optimisation recipe."""
    opt = torch.optim.Adam(params, lr=tp.lr)
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    for _ in range(tp.epochs):
        for idx in minibatches(n, tp.batch, gen):
            loss = loss_of(idx, len(losses))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(losses[-1])
    return losses


def train_intervention(runner, encoder, sd: SiteData, interv: Intervention, tp: TrainPlan, seed: int,
                       on_step: Optional[Callable[[float], None]] = None) -> list[float]:
    """Adam on the intervention's parameters; returns the loss of every step."""
    params = [p for p in interv.parameters() if p.requires_grad]
    if not params:
        return []
    interv.to(sd.source.device).train()
    n = len(sd)
    steps = tp.epochs * -(-n // tp.batch)
    temps = temperature_schedule(50.0, 0.1, steps) if isinstance(interv, BoundlessDAS) else None
    loss_fn = nn.CrossEntropyLoss()

    def loss_of(idx: torch.Tensor, step: int) -> torch.Tensor:
        if temps is not None:
            interv.set_temperature(temps[step])
        loss = loss_fn(_logits(runner, encoder, sd, interv, idx), sd.label[idx.to(sd.label.device)])
        if isinstance(interv, BoundlessDAS):
            loss = loss + BOUNDLESS_PENALTY * interv.mask_penalty()
        return loss

    losses = fit(params, n, loss_of, tp, seed, on_step)
    interv.eval()
    return losses


@torch.no_grad()
def predict(runner, encoder, sd: SiteData, interv: Intervention, batch: int = EVAL_BATCH) -> torch.Tensor:
    """Predicted class of the intervened network for every pair (cached path)."""
    interv.to(sd.source.device).eval()
    preds = []
    for start in range(0, len(sd), batch):
        idx = torch.arange(start, min(start + batch, len(sd)))
        preds.append(_logits(runner, encoder, sd, interv, idx).argmax(-1))
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)


def count_correct(pred: torch.Tensor, label: torch.Tensor, mask: Optional[torch.Tensor] = None) -> tuple[int, int]:
    """(correct, n), optionally only over rows where ``mask`` is true."""
    hit = pred.to(label.device) == label
    if mask is not None:
        hit = hit[mask.to(hit.device)]
    return int(hit.sum()), int(hit.numel())


@torch.no_grad()
def predict_uncached(runner, encoder, pairs: PairSet, site: Site, interv: Intervention) -> torch.Tensor:
    """Reference path: whole-model forwards with a replacing hook (tests compare the two)."""
    source = runner.collect(pairs.source_x, site)
    out = runner.run_with_hook(pairs.base_x, site, lambda b: interv(b, source.to(b.device)),
                               logit_positions=pairs.logit_pos)
    return encoder.class_logits(out).argmax(-1)
