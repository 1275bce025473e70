"""Attribution pre-screen: rank every cell of a search grid before training any of them.

Why: a full layer x position grid is many independent DAS fits; most cells are hopeless.
A first-order (attribution-patching) estimate of what interchanging the whole activation at
a site does to the counterfactual-label loss costs one forward and one backward of the base
batch for the whole grid at once (plus one forward of the sources), where training costs
``steps`` suffix passes per cell. The search then trains only the ``top K`` cells.

The estimate, per site ``s`` and pair ``i``: with ``b`` the base activation at the site's
token, ``a`` the source activation there, and ``L`` the cross-entropy of the unmodified
network's class scores against the *counterfactual* label,

    score(s) = mean_i  -(a_i - b_i) . dL/db_i

i.e. the loss decrease a full interchange would bring to first order (higher = more
promising). Gradients are taken with a zero "probe" added at each hooked activation, so the
gradient reaches every site of the grid in one backward (detaching at a site would cut the
gradient to the layers before it).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

import torch
from torch import nn

from ..neural.hooks import Hooks
from ..neural.sites import Site, gather_positions
from .data import PairSet, take

MAX_PAIRS = 512  # training pairs the estimate averages over (the first ones of the split)


def _first(x: Any) -> torch.Tensor:
    return x[0] if isinstance(x, (tuple, list)) else x


def _replace_first(x: Any, new: torch.Tensor) -> Any:
    return (new, *x[1:]) if isinstance(x, tuple) else new


def _hooked_module_key(site: Site) -> tuple[Any, str]:
    """Sites that read the same activation tensor (one layer and component, other positions)."""
    return site.layer, site.component


def site_gradients(runner: Any, encoder: Any, base_x: Any, label: torch.Tensor,
                   logit_pos: Optional[torch.Tensor], sites: Sequence[Site],
                   positions: Mapping[Site, Optional[torch.Tensor]]) -> tuple[dict[Site, torch.Tensor],
                                                                               dict[Site, torch.Tensor]]:
    """One forward and backward of ``base_x``: each site's base activation and the gradient
    of the summed counterfactual cross-entropy with respect to it (both ``[batch, hidden]``;
    ``positions[site]``: the site's token per example, None for position-free networks)."""
    probes: dict[tuple[Any, str], torch.Tensor] = {}
    acts: dict[tuple[Any, str], torch.Tensor] = {}

    def probe(key: tuple[Any, str], act: torch.Tensor) -> torch.Tensor:
        p = torch.zeros_like(act, requires_grad=True)
        probes[key], acts[key] = p, act.detach()
        return act + p

    with Hooks() as hooks:
        for key, site in {_hooked_module_key(s): s for s in sites}.items():
            mod = runner.module_for(site)
            if site.component == "resid_pre":
                def pre(m: nn.Module, a: tuple, k: dict, key: tuple = key) -> tuple[tuple, dict]:
                    if "hidden_states" in k:
                        return a, {**k, "hidden_states": probe(key, k["hidden_states"])}
                    return (probe(key, a[0]), *a[1:]), k
                hooks.forward_pre(mod, pre, with_kwargs=True)
            else:
                hooks.forward(mod, lambda m, a, o, key=key: _replace_first(o, probe(key, _first(o))))
        with torch.enable_grad():
            out = runner.logits(base_x, logit_positions=logit_pos)
            loss = nn.functional.cross_entropy(encoder.class_logits(out), label.to(out.device), reduction="sum")
            keys = list(probes)
            grads = dict(zip(keys, torch.autograd.grad(loss, [probes[k] for k in keys], allow_unused=True)))

    def at(site: Site, t: Optional[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
        t = torch.zeros_like(like) if t is None else t
        pos = positions.get(site)
        return gather_positions(t, pos.to(t.device)) if pos is not None else t

    base, grad = {}, {}
    for s in sites:
        key = _hooked_module_key(s)
        base[s] = at(s, acts[key], acts[key])
        grad[s] = at(s, grads[key], acts[key])
    return base, grad


def attribution_scores(runner: Any, encoder: Any, pairs: PairSet, sites: Sequence[Site], batch: int = 64,
                       max_pairs: int = MAX_PAIRS, site_positions: Optional[Callable[[Any, Site], Any]] = None
                       ) -> dict[Site, float]:
    """``score(s)`` (module docstring) for every site, over the first ``max_pairs`` pairs in
    batches of ``batch``: per batch one source forward (all sites) and one base forward and
    backward (all sites). ``site_positions(encoded_inputs, site)``: the site's token per
    example (the runner's ``positions``; None for networks without positions)."""
    n = min(len(pairs), max_pairs)
    totals = {s: 0.0 for s in sites}
    for start in range(0, n, batch):
        idx = torch.arange(start, min(start + batch, n))
        base_x, source_x = take(pairs.base_x, idx), take(pairs.source_x, idx)
        lp = pairs.logit_pos[idx] if pairs.logit_pos is not None else None
        source = runner.collect_many(source_x, sites)
        positions = {s: (site_positions(base_x, s) if site_positions is not None else None) for s in sites}
        base, grad = site_gradients(runner, encoder, base_x, pairs.label[idx], lp, sites, positions)
        for s in sites:
            delta = source[s].to(base[s].device, base[s].dtype) - base[s]
            totals[s] += float(-(delta * grad[s]).sum())
    return {s: (totals[s] / n if n else 0.0) for s in sites}


def top_cells(scores: Mapping[Site, float], k: int, trivial: Mapping[Site, bool]) -> list[Site]:
    """The ``k`` best-scored sites, non-trivial ones first (a trivial site is not chosen by a
    search unless every cell is trivial); ties keep grid order."""
    order = sorted(scores, key=lambda s: (bool(trivial.get(s, False)), -scores[s]))
    return order[:k]


def runner_positions(runner: Any) -> Optional[Callable[[Any, Site], Any]]:
    """The runner's per-example token index of a site, for runners that have positions."""
    fn = getattr(runner, "positions", None)
    if fn is None:
        return None

    def positions(inputs: Any, site: Site) -> Any:
        return None if site.position is None else fn(runner._inputs(inputs), site)
    return positions
