"""Pick the right runner for a model; the engine talks only to this interface.

Both runners offer the same methods:

* ``collect(inputs, site)`` / ``collect_many(inputs, sites)`` -> ``[batch, hidden]`` source
  activations (no grad);
* ``prepare(inputs, site)`` / ``prepare_many(inputs, sites)`` -> :class:`BaseCache` of the base
  batch (no grad; one forward);
* ``run_from_site(cache, new, logit_positions=None)`` -> outputs with the site set to ``new``
  (a ``[batch, hidden]`` tensor or ``fn(base_act)``), running only the part after the site;
  gradients flow into ``new`` (the model itself is frozen);
* ``run_with_hook(inputs, site, new, logit_positions=None)`` -> the same, computed by a full
  forward with a replacing hook (the uncached reference);
* ``logits(inputs, logit_positions=None)`` -> the unmodified model's outputs.

The interface is the :class:`Runner` protocol below.

Typical training step::

    runner = make_runner(model)
    src = runner.collect(source_inputs, site)          # cache once
    base = runner.prepare(base_inputs, site)           # cache once
    logits = runner.run_from_site(base, lambda b: das(b, src), logit_positions=base.positions)
"""
from __future__ import annotations

from typing import Any, Optional, Protocol, Sequence, runtime_checkable

import torch
from torch import nn

from .architectures import is_hf_lm
from .cache import BaseCache, NewAct
from .lm_runner import LMRunner
from .sites import Site
from .torch_runner import TorchRunner

__all__ = ["BaseCache", "LMRunner", "TorchRunner", "Runner", "make_runner"]


@runtime_checkable
class Runner(Protocol):
    """What the engine may ask of a network; :class:`LMRunner` and :class:`TorchRunner` both are one.

    A test compares every method's signature with both runners', so a method added to one
    runner only (or a parameter renamed in one) is caught.
    """

    model: nn.Module

    @property
    def device(self) -> torch.device: ...

    @property
    def n_layers(self) -> int: ...

    def module_for(self, site: Site) -> nn.Module: ...

    def logits(self, inputs: Any, logit_positions: Optional[torch.Tensor] = None) -> torch.Tensor: ...

    def collect_many(self, inputs: Any, sites: Sequence[Site]) -> dict[Site, torch.Tensor]: ...

    def collect(self, inputs: Any, site: Site) -> torch.Tensor: ...

    def prepare_many(self, inputs: Any, sites: Sequence[Site]) -> dict[Site, BaseCache]: ...

    def prepare(self, inputs: Any, site: Site) -> BaseCache: ...

    def run_from_site(self, cache: BaseCache, new: NewAct,
                      logit_positions: Optional[torch.Tensor] = None) -> torch.Tensor: ...

    def run_with_hook(self, inputs: Any, site: Site, new: NewAct,
                      logit_positions: Optional[torch.Tensor] = None) -> torch.Tensor: ...


def make_runner(model: nn.Module, layers: Optional[Sequence[str]] = None,
                head: Optional[str] = None) -> Runner:
    """An :class:`LMRunner` for supported HF causal LMs, else a :class:`TorchRunner`.

    ``layers``/``head`` (module paths) declare the layer list and head of a plain torch model
    when auto-detection is not what you want; they are ignored for HF LMs.
    """
    if is_hf_lm(model):
        return LMRunner(model)
    return TorchRunner(model, layers=layers, head=head)
