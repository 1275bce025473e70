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

import functools
from typing import Any, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from ..device import module_device
from .architectures import ArchSpec, detect_architecture, get_module, get_module_list, has_path
from .cache import BaseCache, BlockCall, NewAct
from .hooks import Hooks
from .prefix import StopForward, follow_devices, last_computed_block, pass_through_after, spans_devices, to_device
from .sites import NAMED_POSITIONS, Site, SiteError, gather_positions, resolve_positions, scatter_positions
from .taps import register_read, register_write, site_taps, uses_taps


class _Stop(Exception):
    """Raised by a hook to end a forward early once the needed activations are captured."""


def _first(x: Any) -> torch.Tensor:
    return x[0] if isinstance(x, (tuple, list)) else x


def _replace_first(x: Any, new: torch.Tensor) -> Any:
    return (new, *x[1:]) if isinstance(x, tuple) else new


def _hidden_arg(args: tuple, kwargs: dict) -> torch.Tensor:
    return kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]


def _with_hidden(args: tuple, kwargs: dict, hidden: Optional[torch.Tensor]) -> BlockCall:
    if "hidden_states" in kwargs:
        return args, {**kwargs, "hidden_states": hidden}
    return (hidden, *args[1:]), kwargs


def _resolve_new(new: NewAct, base_act: torch.Tensor) -> torch.Tensor:
    return new(base_act) if callable(new) else new


def _stop_forward(module: nn.Module, args: Any, output: Any) -> None:
    """End a prefix forward after the last block (see ``prefix.py``)."""
    raise StopForward


class LMRunner:
    """Cached and hook-based interventions on a frozen HF causal LM (see module docstring)."""

    def __init__(self, model: nn.Module, arch: Optional[ArchSpec] = None) -> None:
        self.model = model.eval().requires_grad_(False)
        self.arch = arch or detect_architecture(model)
        self.blocks = get_module_list(model, self.arch.blocks)
        self.final_norm = get_module(model, self.arch.final_norm)
        heads = [get_module(model, h) for h in self.arch.head if has_path(model, h)]
        self.head = heads[0] if heads else None
        config = getattr(model, "config", None)
        cap = getattr(config, self.arch.logit_softcap_attr, None) if self.arch.logit_softcap_attr else None
        self.softcap: Optional[float] = cap
        # Granite-style models divide their logits by this (HF does it in the LM head's forward)
        self.logits_scaling: Optional[float] = getattr(config, "logits_scaling", None)

    # ----- basic facts -------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return module_device(self.model)

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    def _layer(self, site: Site) -> int:
        """The site's block index, counted from 0 (negative layers count from the end)."""
        if site.layer is None or not -self.n_layers <= site.layer < self.n_layers:
            raise SiteError(f"layer {site.layer} out of range for a {self.n_layers}-block model")
        return site.layer % self.n_layers

    def module_for(self, site: Site) -> nn.Module:
        """The module whose input (``resid_pre``) or output (others) is the site."""
        block = self.blocks[self._layer(site)]
        if uses_taps(site):  # head / q / k / v / resid_mid: the module read (input or output side)
            return site_taps(self, site)[0].module
        if site.component == "attn_out":
            return get_module(block, self.arch.attn)
        if site.component == "mlp_out":
            return get_module(block, self.arch.mlp)
        return block

    def _inputs(self, inputs: Union[Mapping[str, Any], torch.Tensor]) -> dict[str, Any]:
        given: Mapping[str, Any] = {"input_ids": inputs} if isinstance(inputs, torch.Tensor) else inputs
        dev = self.device
        out: dict[str, Any] = {k: (v.to(dev) if torch.is_tensor(v) else v) for k, v in given.items()}
        if NAMED_POSITIONS in out:
            out[NAMED_POSITIONS] = {k: v.to(dev) for k, v in out[NAMED_POSITIONS].items()}
        return out

    def positions(self, inputs: Mapping[str, Any], site: Site) -> torch.Tensor:
        """The site's token index in every example of an encoded batch (``LongTensor[batch]``)."""
        ids = inputs["input_ids"] if "input_ids" in inputs else inputs["inputs_embeds"]
        batch, seq = ids.shape[0], ids.shape[1]
        return resolve_positions(site.position, inputs.get("attention_mask"), seq, batch, self.device,
                                 inputs.get(NAMED_POSITIONS))

    def _forward(self, inputs: Mapping[str, Any]) -> Any:
        """The model's own forward on encoded inputs (the engine's bookkeeping keys removed);
        a model spread over devices gets each module's inputs moved onto its device."""
        with Hooks() as hooks:
            if spans_devices(self.model):
                follow_devices(hooks, [*self.blocks, self.final_norm, self.head])
            return self.model(**{k: v for k, v in inputs.items() if k != NAMED_POSITIONS}, use_cache=False)

    def _head(self, hidden: torch.Tensor, logit_positions: Optional[torch.Tensor]) -> torch.Tensor:
        hidden = self.final_norm(to_device(hidden, module_device(self.final_norm)))
        if logit_positions is not None:
            hidden = gather_positions(hidden, logit_positions)
        if self.head is None:
            return hidden
        logits = self.head(to_device(hidden, module_device(self.head)))
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
        wanted = set(sites)
        found: dict[Site, torch.Tensor] = {}

        def grab(site: Site, act: torch.Tensor) -> None:
            found[site] = gather_positions(act, self.positions(inputs, site)).detach()
            if len(found) == len(wanted):
                raise _Stop

        with Hooks() as hooks:
            for site in wanted:
                if uses_taps(site):
                    register_read(hooks, self, site, functools.partial(grab, site))
                    continue
                mod = self.module_for(site)
                if site.component == "resid_pre":
                    hooks.forward_pre(mod, lambda m, a, k, s=site: grab(s, _hidden_arg(a, k)), with_kwargs=True)
                else:
                    hooks.forward(mod, lambda m, a, o, s=site: grab(s, _first(o)))
            try:
                self._forward(inputs)
            except _Stop:
                pass
        missing = wanted - set(found)
        if missing:
            raise RuntimeError(f"sites never reached during the forward: {sorted(s.label for s in missing)}")
        return found

    def collect(self, inputs: Any, site: Site) -> torch.Tensor:
        """One site's activations (:meth:`collect_many` for one site)."""
        return self.collect_many(inputs, [site])[site]

    # ----- cached base prefix -------------------------------------------------------------
    @torch.no_grad()
    def prepare_many(self, inputs: Any, sites: Sequence[Site]) -> dict[Site, BaseCache]:
        """One forward of the base batch -> a :class:`BaseCache` per site. Blocks after the
        deepest site's pass their input through and the head never runs (``prefix.py``)."""
        inputs = self._inputs(inputs)
        calls: list[Optional[BlockCall]] = [None] * self.n_layers
        subs: dict[Site, torch.Tensor] = {}
        final: dict[str, torch.Tensor] = {}
        with Hooks() as hooks:
            for i, block in enumerate(self.blocks):
                hooks.forward_pre(block, lambda m, a, k, i=i: calls.__setitem__(i, (a, k)), with_kwargs=True)
            hooks.forward(self.blocks[-1], lambda m, a, o: final.__setitem__("out", _first(o)))
            for site in sites:
                if uses_taps(site):
                    register_read(hooks, self, site, functools.partial(subs.__setitem__, site))
                elif site.component in ("attn_out", "mlp_out"):
                    hooks.forward(self.module_for(site), lambda m, a, o, s=site: subs.__setitem__(s, _first(o)))
            hooks.forward(self.blocks[-1], _stop_forward)
            try:
                with pass_through_after(self.blocks, last_computed_block(sites, self.n_layers)):
                    self._forward(inputs)
            except StopForward:
                pass
        recorded = [c for c in calls if c is not None]
        if len(recorded) != self.n_layers:
            raise RuntimeError(f"the forward called {len(recorded)} of the model's {self.n_layers} blocks")
        caches = {}
        for site in sites:
            layer = self._layer(site)
            pos = self.positions(inputs, site)
            if site.component == "resid_post":
                start = layer + 1
                hidden = final["out"] if start == self.n_layers else _hidden_arg(*recorded[start])
                act = gather_positions(hidden, pos)
            else:
                start = layer
                hidden = _hidden_arg(*recorded[layer])
                if uses_taps(site) and site not in subs:  # a head group's later layer must have run too
                    raise RuntimeError(f"{site.label}: blocks {list(site.layers)} were not all reached")
                act = gather_positions(subs[site] if site in subs else hidden, pos)
            kept = [_with_hidden(a, k, None) for a, k in recorded[start:]]
            caches[site] = BaseCache(site=site, base_act=act, positions=pos, hidden=hidden,
                                     start=start, calls=kept)
        return caches

    def prepare(self, inputs: Any, site: Site) -> BaseCache:
        """One site's :class:`BaseCache` (:meth:`prepare_many` for one site)."""
        return self.prepare_many(inputs, [site])[site]

    def run_from_site(self, cache: BaseCache, new: NewAct,
                      logit_positions: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits with the site set to ``new`` (tensor ``[B, H]`` or ``fn(base_act)``).

        Only the blocks from ``cache.start`` on run; gradients flow into ``new``.
        """
        site, pos, hidden = cache.site, cache.positions, cache.hidden
        if pos is None or hidden is None:
            raise ValueError("this cache was not made by an LMRunner (no positions / hidden states)")
        value = _resolve_new(new, cache.base_act)
        spread = spans_devices(self.model)
        with Hooks() as hooks:
            splice = None
            if site.component in ("resid_pre", "resid_post"):
                hidden = scatter_positions(hidden, pos, value)
            elif uses_taps(site):  # spliced in each member's block (several, for a head group)
                register_write(hooks, self, site, pos, value)
            else:  # the sub-module's output is replaced inside the first block only
                splice = hooks.forward(self.module_for(site), lambda m, a, o: _replace_first(
                    o, scatter_positions(_first(o), pos, value)))
            for offset, (args, kwargs) in enumerate(cache.calls):
                block = self.blocks[cache.start + offset]
                a, k = _with_hidden(args, kwargs, hidden)
                if spread:  # a model spread over devices (device_map): inputs onto the block's
                    a, k = to_device(a, module_device(block)), to_device(k, module_device(block))
                hidden = _first(block(*a, **k))
                if splice is not None:
                    hooks.remove(splice)
                    splice = None
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

        if uses_taps(site):  # the base value comes from the unpatched run (see taps.py: head groups)
            value = _resolve_new(new, self.collect(inputs, site)) if callable(new) else new
            with Hooks() as hooks:
                register_write(hooks, self, site, pos, value)
                return self.logits(inputs, logit_positions)
        with Hooks() as hooks:
            if site.component == "resid_pre":
                hooks.forward_pre(mod, lambda m, a, k: _with_hidden(a, k, splice(_hidden_arg(a, k))),
                                  with_kwargs=True)
            else:
                hooks.forward(mod, lambda m, a, o: _replace_first(o, splice(_first(o))))
            return self.logits(inputs, logit_positions)
