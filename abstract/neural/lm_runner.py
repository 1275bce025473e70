"""Run Hugging Face decoder LMs from an intervention site onward, reusing a cached prefix.

How: one ordinary forward of the base batch records, with
``register_forward_pre_hook(with_kwargs=True)``, the exact positional and keyword arguments
every block is called with (attention mask, rotary cos/sin, position ids, per-layer masks for
sliding-window families ...). Resuming at block L is then: call blocks L..N-1 with those
arguments and our own hidden states, final norm, head. This is family-agnostic: whatever the
model computes before its blocks (embeddings, masks) is reused verbatim, so the cached path
reproduces the model's own logits. ``attn_out``/``mlp_out`` sites re-run block L from its
cached input with a forward hook on the sub-module that splices in the new value.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from .architectures import ArchSpec, detect_architecture, get_module, has_path
from .cache import BaseCache
from .sites import NAMED_POSITIONS, Site, gather_positions, resolve_positions, scatter_positions

NewAct = Union[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]


class _Stop(Exception):
    """Raised by a hook to end a forward early once the needed activations are captured."""


def _first(x: Any) -> torch.Tensor:
    return x[0] if isinstance(x, (tuple, list)) else x


def _replace_first(x: Any, new: torch.Tensor) -> Any:
    return (new, *x[1:]) if isinstance(x, tuple) else new


def _hidden_arg(args: tuple, kwargs: dict) -> torch.Tensor:
    return kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]


def _with_hidden(args: tuple, kwargs: dict, hidden: Optional[torch.Tensor]) -> tuple[tuple, dict]:
    if "hidden_states" in kwargs:
        return args, {**kwargs, "hidden_states": hidden}
    return (hidden, *args[1:]), kwargs


def _resolve_new(new: NewAct, base_act: torch.Tensor) -> torch.Tensor:
    return new(base_act) if callable(new) else new


class LMRunner:
    """Cached and hook-based interventions on a frozen HF causal LM (see module docstring)."""

    uses_position = True

    def __init__(self, model: nn.Module, arch: Optional[ArchSpec] = None):
        self.model = model.eval().requires_grad_(False)
        self.arch = arch or detect_architecture(model)
        self.blocks = get_module(model, self.arch.blocks)
        self.final_norm = get_module(model, self.arch.final_norm)
        heads = [get_module(model, h) for h in self.arch.head if has_path(model, h)]
        self.head = heads[0] if heads else None
        cap = getattr(model.config, self.arch.logit_softcap_attr, None) if self.arch.logit_softcap_attr else None
        self.softcap: Optional[float] = cap
        # Granite-style models divide their logits by this (HF does it in the LM head's forward)
        self.logits_scaling: Optional[float] = getattr(model.config, "logits_scaling", None)

    # ----- basic facts -------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    def module_for(self, site: Site) -> nn.Module:
        """The module whose input (``resid_pre``) or output (others) is the site."""
        if site.layer is None or not -self.n_layers <= site.layer < self.n_layers:
            raise IndexError(f"layer {site.layer} out of range for a {self.n_layers}-block model")
        block = self.blocks[site.layer]
        if site.component == "attn_out":
            return get_module(block, self.arch.attn)
        if site.component == "mlp_out":
            return get_module(block, self.arch.mlp)
        return block

    def _inputs(self, inputs: Union[Mapping[str, torch.Tensor], torch.Tensor]) -> dict:
        if torch.is_tensor(inputs):
            inputs = {"input_ids": inputs}
        dev = self.device
        out = {k: (v.to(dev) if torch.is_tensor(v) else v) for k, v in dict(inputs).items()}
        if NAMED_POSITIONS in out:
            out[NAMED_POSITIONS] = {k: v.to(dev) for k, v in out[NAMED_POSITIONS].items()}
        return out

    def positions(self, inputs: Mapping[str, torch.Tensor], site: Site) -> torch.Tensor:
        ids = inputs.get("input_ids", inputs.get("inputs_embeds"))
        batch, seq = ids.shape[0], ids.shape[1]
        return resolve_positions(site.position, inputs.get("attention_mask"), seq, batch, self.device,
                                 inputs.get(NAMED_POSITIONS))

    def _forward(self, inputs: Mapping[str, Any]) -> Any:
        """The model's own forward on encoded inputs (the engine's bookkeeping keys removed)."""
        return self.model(**{k: v for k, v in inputs.items() if k != NAMED_POSITIONS}, use_cache=False)

    def _head(self, hidden: torch.Tensor, logit_positions: Optional[torch.Tensor]) -> torch.Tensor:
        hidden = self.final_norm(hidden)
        if logit_positions is not None:
            hidden = gather_positions(hidden, logit_positions)
        if self.head is None:
            return hidden
        logits = self.head(hidden)
        if self.logits_scaling and self.logits_scaling != 1:
            logits = logits / self.logits_scaling
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits

    def logits(self, inputs: Any, logit_positions: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The model's ordinary logits (``[B, S, V]``, or ``[B, V]`` at ``logit_positions``)."""
        out = self._forward(self._inputs(inputs)).logits
        return out if logit_positions is None else gather_positions(out, logit_positions)

    # ----- collecting source activations --------------------------------------------------
    @torch.no_grad()
    def collect_many(self, inputs: Any, sites: Sequence[Site]) -> dict[Site, torch.Tensor]:
        """``[batch, hidden]`` activations at several sites in one (early-stopped) forward."""
        inputs = self._inputs(inputs)
        found: dict[Site, torch.Tensor] = {}
        deepest = max(s.layer % self.n_layers for s in sites)
        handles = []

        def grab(site: Site, act: torch.Tensor) -> None:
            found[site] = gather_positions(act, self.positions(inputs, site)).detach()
            if len(found) == len(set(sites)):
                raise _Stop

        for site in set(sites):
            mod = self.module_for(site)
            if site.component == "resid_pre":
                handles.append(mod.register_forward_pre_hook(
                    lambda m, a, k, s=site: grab(s, _hidden_arg(a, k)), with_kwargs=True))
            else:
                handles.append(mod.register_forward_hook(lambda m, a, o, s=site: grab(s, _first(o))))
        try:
            self._forward(inputs)
        except _Stop:
            pass
        finally:
            for h in handles:
                h.remove()
        missing = set(sites) - set(found)
        if missing:
            raise RuntimeError(f"sites never reached during the forward (deepest={deepest}): {missing}")
        return found

    def collect(self, inputs: Any, site: Site) -> torch.Tensor:
        return self.collect_many(inputs, [site])[site]

    # ----- cached base prefix -------------------------------------------------------------
    @torch.no_grad()
    def prepare_many(self, inputs: Any, sites: Sequence[Site]) -> dict[Site, BaseCache]:
        """One forward of the base batch -> a :class:`BaseCache` per site."""
        inputs = self._inputs(inputs)
        calls: list = [None] * self.n_layers
        subs: dict[Site, torch.Tensor] = {}
        final: dict[str, torch.Tensor] = {}
        handles = []
        for i, block in enumerate(self.blocks):
            handles.append(block.register_forward_pre_hook(
                lambda m, a, k, i=i: calls.__setitem__(i, (a, k)), with_kwargs=True))
        handles.append(self.blocks[-1].register_forward_hook(
            lambda m, a, o: final.__setitem__("out", _first(o))))
        for site in sites:
            if site.component in ("attn_out", "mlp_out"):
                handles.append(self.module_for(site).register_forward_hook(
                    lambda m, a, o, s=site: subs.__setitem__(s, _first(o))))
        try:
            self._forward(inputs)
        finally:
            for h in handles:
                h.remove()
        caches = {}
        for site in sites:
            layer = site.layer % self.n_layers
            pos = self.positions(inputs, site)
            if site.component == "resid_post":
                start = layer + 1
                hidden = final["out"] if start == self.n_layers else _hidden_arg(*calls[start])
                act = gather_positions(hidden, pos)
            else:
                start = layer
                hidden = _hidden_arg(*calls[layer])
                act = gather_positions(subs[site] if site in subs else hidden, pos)
            kept = [_with_hidden(a, k, None) for a, k in calls[start:]]
            caches[site] = BaseCache(site=site, base_act=act, positions=pos, hidden=hidden,
                                     start=start, calls=kept)
        return caches

    def prepare(self, inputs: Any, site: Site) -> BaseCache:
        return self.prepare_many(inputs, [site])[site]

    def run_from_site(self, cache: BaseCache, new: NewAct,
                      logit_positions: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits with the site set to ``new`` (tensor ``[B, H]`` or ``fn(base_act)``).

        Only the blocks from ``cache.start`` on run; gradients flow into ``new``.
        """
        site, pos = cache.site, cache.positions
        value = _resolve_new(new, cache.base_act)
        hidden = cache.hidden
        handle = None
        if site.component in ("resid_pre", "resid_post"):
            hidden = scatter_positions(hidden, pos, value)
        else:
            handle = self.module_for(site).register_forward_hook(
                lambda m, a, o: _replace_first(o, scatter_positions(_first(o), pos, value)))
        try:
            for offset, (args, kwargs) in enumerate(cache.calls):
                a, k = _with_hidden(args, kwargs, hidden)
                hidden = _first(self.blocks[cache.start + offset](*a, **k))
                if handle is not None:
                    handle.remove()
                    handle = None
        finally:
            if handle is not None:
                handle.remove()
        return self._head(hidden, logit_positions)

    # ----- uncached reference --------------------------------------------------------------
    def run_with_hook(self, inputs: Any, site: Site, new: NewAct,
                      logit_positions: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Whole-model forward with a hook replacing the site activation (the reference path)."""
        inputs = self._inputs(inputs)
        pos = self.positions(inputs, site)
        mod = self.module_for(site)

        def splice(act: torch.Tensor) -> torch.Tensor:
            return scatter_positions(act, pos, _resolve_new(new, gather_positions(act, pos)))

        if site.component == "resid_pre":
            def pre(m, args, kwargs):
                return _with_hidden(args, kwargs, splice(_hidden_arg(args, kwargs)))
            handle = mod.register_forward_pre_hook(pre, with_kwargs=True)
        else:
            handle = mod.register_forward_hook(lambda m, a, o: _replace_first(o, splice(_first(o))))
        try:
            return self.logits(inputs, logit_positions)
        finally:
            handle.remove()
