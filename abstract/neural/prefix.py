"""The base prefix forward, only as deep as the sites need, and activations that follow devices.

Why: caching the base prefix for a grid of sites needs the inputs of every block from the
shallowest site on, but *computing* the blocks after the deepest site (and the LM head over
every position, ``[batch, seq, vocab]``: the most expensive matmul of a small LM) is waste.
The later blocks still have to be *called* once, because their call arguments (masks, rotary
embeddings, per-layer sliding-window masks) are what the cached suffix replays; so they are
called with a pass-through forward that returns its input unchanged, and the forward ends
(:class:`StopForward`) after the last block, before the final norm and the head.

Models spread over several devices (``device_map``): :func:`follow_devices` moves each
block's, the final norm's and the head's inputs onto that module's device, so a runner works
whether the model was dispatched by accelerate (whose own hooks do the same) or its blocks
were moved by hand.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional, Sequence

import torch
from torch import nn

from ..device import module_device
from .hooks import Hooks
from .sites import Site


class StopForward(Exception):
    """Raised after the last block's (pass-through) call: the final norm and head never run."""


def last_computed_block(sites: Sequence[Site], n_layers: int) -> int:
    """The deepest block whose computation some site needs: ``resid_pre`` at L needs blocks
    before L; ``resid_post`` and sub-module sites at L need block L itself. At least 0 (the
    first block always runs, so the pass-through knows the shape of a block's output)."""
    deepest = 0
    for s in sites:
        for layer in s.layers:  # a head group spans several blocks
            layer = int(layer) % n_layers
            deepest = max(deepest, layer - 1 if s.component == "resid_pre" else layer)
    return deepest


def _first(x: Any) -> torch.Tensor:
    return x[0] if isinstance(x, (tuple, list)) else x


def _replace_first(x: Any, new: torch.Tensor) -> Any:
    return (new, *x[1:]) if isinstance(x, tuple) else new


@contextlib.contextmanager
def pass_through_after(blocks: nn.ModuleList | nn.Sequential, last: int) -> Iterator[None]:
    """Blocks after ``last`` return their hidden-state input unchanged (in the output structure
    block ``last`` returned), while their hooks still fire; afterwards every block is restored
    (including an instance ``forward`` someone else installed, e.g. accelerate's)."""
    template: dict[str, Any] = {}
    saved: list[tuple[nn.Module, Optional[Any]]] = []

    def remember(m: nn.Module, a: Any, o: Any) -> None:
        template["out"] = o

    def passthrough(*args: Any, **kwargs: Any) -> Any:
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        return _replace_first(template["out"], hidden)

    with Hooks() as hooks:
        hooks.forward(blocks[last], remember)
        try:
            for block in list(blocks)[last + 1:]:
                saved.append((block, block.__dict__.get("forward")))
                block.forward = passthrough
            yield
        finally:
            for block, old in saved:
                if old is None:
                    del block.__dict__["forward"]
                else:
                    block.forward = old


def to_device(x: Any, device: torch.device) -> Any:
    """Tensors inside ``x`` (nested tuples, lists, dicts) moved to ``device``; other values as is."""
    if torch.is_tensor(x):
        return x if x.device == device else x.to(device)
    if isinstance(x, tuple):
        return tuple(to_device(v, device) for v in x)
    if isinstance(x, list):
        return [to_device(v, device) for v in x]
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    return x


def spans_devices(model: nn.Module) -> bool:
    """Whether the model's parameters live on more than one device."""
    return len({p.device for p in model.parameters()}) > 1


def follow_devices(hooks: Hooks, modules: Sequence[Optional[nn.Module]]) -> None:
    """Pre-hooks moving every input of each module onto that module's device."""
    for mod in modules:
        if mod is None:
            continue
        dev = module_device(mod)
        hooks.forward_pre(mod, lambda m, a, k, d=dev: (to_device(a, d), to_device(k, d)), with_kwargs=True)
