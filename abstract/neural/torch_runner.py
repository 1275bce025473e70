"""Interventions on plain torch modules (MLPs and other small networks).

Convention: a site is ``layer N`` (the output of the N-th layer module, see
:func:`abstract.neural.architectures.torch_layer_paths`) or an explicit module path; its
activation is that module's output, ``[batch, hidden]``, with no position axis.

Cached path: when the model is a *chain* -- an ``nn.Sequential``, or a module whose forward
is ``head(layers[-1](...layers[0](x)))`` -- and the site is one link of it, the suffix after
the site is run directly from the cached site activation. The chain assumption is checked
against ``model(x)`` on the base batch; if it fails (or the site is not a link), the runner
falls back to a whole-model forward with a replacing hook and marks the cache
``cached=False`` with a ``note`` the caller can report.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import nn

from ..device import module_device
from .architectures import UnsupportedModelError, get_module, has_path, torch_layer_paths
from .cache import BaseCache, NewAct
from .hooks import Hooks
from .sites import Site, SiteError


def _call(model: nn.Module, inputs: Any) -> torch.Tensor:
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


class TorchRunner:
    """Cached and hook-based interventions on a frozen plain torch module."""

    def __init__(self, model: nn.Module, layers: Optional[Sequence[str]] = None,
                 head: Optional[str] = None, atol: float = 1e-5) -> None:
        self.model = model.eval().requires_grad_(False)
        try:
            self.layer_paths = torch_layer_paths(model, layers)
        except UnsupportedModelError:  # sites must then name module paths (site_path says so)
            self.layer_paths = []
        self.chain = self._find_chain(head)
        self.atol = atol
        self._chain_ok: Optional[bool] = None

    def _find_chain(self, head: Optional[str]) -> list[str]:
        if isinstance(self.model, nn.Sequential):
            return [str(i) for i in range(len(self.model))]
        if not self.layer_paths:
            return []
        head = head or next((h for h in ("head", "readout", "out", "classifier")
                             if has_path(self.model, h)), None)
        return list(self.layer_paths) + ([head] if head else [])

    @property
    def device(self) -> torch.device:
        return module_device(self.model)

    @property
    def n_layers(self) -> int:
        return len(self.layer_paths)

    def site_path(self, site: Site) -> str:
        """The module path whose output is the site (``site.module``, else layer N's path)."""
        if site.head is not None or site.heads or site.component == "resid_mid":
            raise SiteError(f"{site.label}: a plain torch network has no attention heads or blocks; its sites "
                            "are layer outputs")
        if site.module is not None:
            return site.module
        if not self.layer_paths:
            raise SiteError("this model has no detected layer list; address the site by module path")
        if site.layer is None or not -self.n_layers <= site.layer < self.n_layers:
            raise SiteError(f"layer {site.layer} out of range ({self.n_layers} layers)")
        return self.layer_paths[site.layer]

    def module_for(self, site: Site) -> nn.Module:
        """The module whose output is the site."""
        return get_module(self.model, self.site_path(site))

    def _inputs(self, inputs: Any) -> Any:
        dev = self.device
        if torch.is_tensor(inputs):
            return inputs.to(dev)
        if isinstance(inputs, dict):
            return {k: v.to(dev) if torch.is_tensor(v) else v for k, v in inputs.items()}
        return type(inputs)(v.to(dev) if torch.is_tensor(v) else v for v in inputs)

    def logits(self, inputs: Any, logit_positions: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The unmodified model's outputs (``logit_positions`` is for LMs; ignored here)."""
        return _call(self.model, self._inputs(inputs))

    @torch.no_grad()
    def collect_many(self, inputs: Any, sites: Sequence[Site]) -> dict[Site, torch.Tensor]:
        """Site activations (module outputs) for a batch, in one forward."""
        found: dict[Site, torch.Tensor] = {}
        with Hooks() as hooks:
            for site in set(sites):
                hooks.forward(self.module_for(site), lambda m, a, o, s=site: found.__setitem__(s, o.detach()))
            _call(self.model, self._inputs(inputs))
        return found

    def collect(self, inputs: Any, site: Site) -> torch.Tensor:
        """One site's activations (:meth:`collect_many` for one site)."""
        return self.collect_many(inputs, [site])[site]

    @torch.no_grad()
    def _check_chain(self, x: torch.Tensor) -> bool:
        """Does running the chain links in order reproduce ``model(x)``?"""
        if self._chain_ok is None:
            h = x
            for path in self.chain:
                h = get_module(self.model, path)(h)
            ref = _call(self.model, x)
            self._chain_ok = (torch.is_tensor(ref) and ref.shape == h.shape
                              and torch.allclose(ref, h, atol=self.atol, rtol=1e-4))
        return self._chain_ok

    def _fallback_reason(self, inputs: Any, site: Site) -> str:
        path = self.site_path(site)
        if not self.chain:
            return "model is not a chain (no layers list / Sequential)"
        if path not in self.chain:
            return f"site {path!r} is not a link of the chain {self.chain}"
        if not torch.is_tensor(inputs):
            return "inputs are not a single tensor"
        if not self._check_chain(inputs):
            return "model.forward is not the plain chain of its layers (+ head)"
        return ""

    @torch.no_grad()
    def prepare_many(self, inputs: Any, sites: Sequence[Site]) -> dict[Site, BaseCache]:
        """Site activations of the base batch, and where the chain resumes (or why it cannot)."""
        inputs = self._inputs(inputs)
        acts = self.collect_many(inputs, sites)
        out: dict[Site, BaseCache] = {}
        for site in sites:
            reason = self._fallback_reason(inputs, site)
            start = self.chain.index(self.site_path(site)) + 1 if not reason else 0
            out[site] = BaseCache(site=site, base_act=acts[site], hidden=acts[site], start=start,
                                  inputs=None if not reason else inputs,
                                  cached=not reason, note=reason)
        return out

    def prepare(self, inputs: Any, site: Site) -> BaseCache:
        """One site's :class:`BaseCache` (:meth:`prepare_many` for one site)."""
        return self.prepare_many(inputs, [site])[site]

    def run_from_site(self, cache: BaseCache, new: NewAct,
                      logit_positions: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Model output with the site set to ``new`` (``[B, H]`` or ``fn(base_act)``)."""
        if not cache.cached:
            return self.run_with_hook(cache.inputs, cache.site, new)
        h = new(cache.base_act) if callable(new) else new
        for path in self.chain[cache.start:]:
            h = get_module(self.model, path)(h)
        return h

    def run_with_hook(self, inputs: Any, site: Site, new: NewAct,
                      logit_positions: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Whole-model forward with a forward hook returning the new site activation."""
        def replace(m: nn.Module, a: Any, o: torch.Tensor) -> torch.Tensor:
            return (new(o) if callable(new) else new).to(o.dtype)
        with Hooks() as hooks:
            hooks.forward(self.module_for(site), replace)
            return _call(self.model, self._inputs(inputs))
