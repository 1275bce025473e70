"""Path patching: hold chosen downstream sites at their *base* values while an intervention runs.

A claim such as "the S-inhibition signal acts only through the name movers" says the effect of
an intervention flows through some components and not others. To test it, every component that
should *not* carry the effect is held at the value it has in the unmodified base run, while the
site is set to its new value and the rest of the network recomputes (Wang et al. 2022, path
patching). A held site is a :class:`~abstract.neural.sites.Site` whose ``position`` is ``None``
for "every token" (language models) or a position for one token per example; for plain torch
networks it is a layer output (``[batch, hidden]``, no positions).

How: :class:`HoldingRunner` wraps a runner and keeps its interface. ``prepare_many`` records the
held modules' base outputs during the base forward the wrapped runner does anyway (stored in
``BaseCache.held``, so minibatch ``select`` and position stacking carry them), and
``run_from_site`` / ``run_with_hook`` put forward hooks on those modules that return the
recorded values. Only ``runner.module_for(site)`` is needed to find a held module, so any
component whose value is a module's (first) output can be held with no further code.
Source activations (``collect``) and the plain ``logits`` are not affected: the source run and
the base run are the unmodified network.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import nn

from ..hypothesis.holds import after
from .cache import BaseCache, NewAct
from .hooks import Hooks
from .sites import Site, SiteError, gather_positions, scatter_positions

def downstream(held: Site, site: Site) -> bool:
    """Is ``held`` computed strictly after ``site`` (so the intervention can change it)?
    (:func:`abstract.hypothesis.holds.after` on their layers and components.)"""
    if held.layer is None or site.layer is None:
        return False
    if site.heads:  # a head group: after every member's block
        return all(after((held.layer, held.component), (layer, site.component)) for layer in site.layers)
    return after((held.layer, held.component), (site.layer, site.component))


def _first(x: Any) -> torch.Tensor:
    return x[0] if isinstance(x, (tuple, list)) else x


def _replace_first(x: Any, new: torch.Tensor) -> Any:
    if isinstance(x, tuple):
        return (new, *x[1:])
    if isinstance(x, list):
        return [new, *x[1:]]
    return new


class HoldingRunner:
    """A runner whose interventions keep ``holds`` at their base values (see module docstring).

    Every other method and attribute is the wrapped runner's."""

    def __init__(self, runner: Any, holds: Sequence[Site]) -> None:
        self.inner = runner
        self.holds = tuple(dict.fromkeys(holds))
        for h in self.holds:  # fail now, not in the middle of a forward
            runner.module_for(h)

    def __getattr__(self, name: str) -> Any:  # model, device, n_layers, logits, collect ...
        return getattr(self.inner, name)

    # ----- recording ------------------------------------------------------------------------
    def _positions(self, inputs: Any, site: Site) -> Optional[torch.Tensor]:
        if site.position is None:
            return None
        encode = getattr(self.inner, "_inputs", None)
        given = encode(inputs) if encode is not None else inputs
        if not isinstance(given, dict):
            raise SiteError(f"held site {site.label} names a position, but the network's inputs have no tokens")
        return self.inner.positions(given, site)

    def _recorders(self, hooks: Hooks, inputs: Any, found: dict[Site, Any]) -> None:
        for h in self.holds:
            pos = self._positions(inputs, h)

            def grab(m: nn.Module, a: Any, o: Any, h: Site = h, pos: Optional[torch.Tensor] = pos) -> None:
                if h in found:  # the first call is the model's own forward (a runner may then probe
                    return      # its layers one by one, e.g. TorchRunner's chain check)
                out = _first(o).detach()
                found[h] = out if pos is None else (pos.to(out.device).unsqueeze(1), gather_positions(out, pos))
            hooks.forward(self.inner.module_for(h), grab)

    def _check(self, found: dict[Site, Any]) -> None:
        missing = [h.label for h in self.holds if h not in found]
        if missing:
            raise RuntimeError(f"held sites never reached during the base forward: {missing}")

    @torch.no_grad()
    def base_values(self, inputs: Any) -> dict[Site, Any]:
        """The held sites' values in an unmodified forward of ``inputs`` (as ``BaseCache.held``)."""
        found: dict[Site, Any] = {}
        with Hooks() as hooks:
            self._recorders(hooks, inputs, found)
            self.inner.logits(inputs)
        self._check(found)
        return found

    # ----- replaying ------------------------------------------------------------------------
    def _replayers(self, hooks: Hooks, held: dict[Site, Any]) -> None:
        for h in self.holds:
            value = held[h]

            def put(m: nn.Module, a: Any, o: Any, value: Any = value) -> Any:
                out = _first(o)
                if isinstance(value, tuple):
                    pos, v = value
                    return _replace_first(o, scatter_positions(out, pos[:, 0], v))
                if value.shape != out.shape:
                    raise RuntimeError(f"held value of shape {tuple(value.shape)} does not fit the output "
                                       f"{tuple(out.shape)}")
                return _replace_first(o, value.to(out.dtype))
            hooks.forward(self.inner.module_for(h), put)

    # ----- the runner interface -----------------------------------------------------------
    @torch.no_grad()
    def prepare_many(self, inputs: Any, sites: Sequence[Site]) -> dict[Site, BaseCache]:
        """The wrapped runner's caches, each carrying the held sites' base values (recorded in
        the same base forward)."""
        found: dict[Site, Any] = {}
        with Hooks() as hooks:
            self._recorders(hooks, inputs, found)
            caches = self.inner.prepare_many(inputs, sites)
        if self.holds and len(found) < len(self.holds):  # a runner that did not run the whole model
            found = self.base_values(inputs)
        self._check(found)
        for cache in caches.values():
            cache.held = dict(found)
        return caches

    def prepare(self, inputs: Any, site: Site) -> BaseCache:
        return self.prepare_many(inputs, [site])[site]

    def run_from_site(self, cache: BaseCache, new: NewAct,
                      logit_positions: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The wrapped runner's cached suffix, with the held modules returning their base values."""
        if self.holds and not cache.held:
            raise ValueError("this cache holds no base values of the held sites: prepare it with this runner")
        with Hooks() as hooks:
            self._replayers(hooks, cache.held)
            return self.inner.run_from_site(cache, new, logit_positions)

    def run_with_hook(self, inputs: Any, site: Site, new: NewAct,
                      logit_positions: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The reference path: one unmodified forward records the held values, then a whole
        forward with the site replaced and the held modules returning them."""
        held = self.base_values(inputs)
        with Hooks() as hooks:
            self._replayers(hooks, held)
            return self.inner.run_with_hook(inputs, site, new, logit_positions)


def holding(runner: Any, holds: Sequence[Site]) -> Any:
    """``runner`` itself when nothing is held (today's path, bit for bit), else a
    :class:`HoldingRunner` around it."""
    return HoldingRunner(runner, holds) if holds else runner
