"""The one place a device is resolved: validated from the command line, picked, and described.

Why one module: `verify`, `align`, `demo`, the pytest plugin and the engine all need the same
answer to "which device", and the same refusal of one that cannot be used.
"""
from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # torch is imported inside the functions: `check` stays torch-free
    import torch


def device_problem(device: Optional[str]) -> Optional[str]:
    """Why ``device`` cannot be used here (a sentence), or None when it can (None = auto)."""
    if device is None:
        return None
    import torch
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        return "not a device name; expected cpu, cuda or cuda:N"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return "no CUDA device is available on this machine (use cpu, or leave --device out)"
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            return f"there are only {torch.cuda.device_count()} CUDA device(s)"
    elif dev.type != "cpu":
        return f"device type {dev.type!r} is not supported; expected cpu or cuda"
    return None


def pick_device(device: Optional[str] = None) -> torch.device:
    """The requested device, else CUDA when present, else CPU (a ``torch.device``)."""
    import torch
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe_device(device: Optional[str] = None) -> str:
    """The device as the results document records it, e.g. ``cpu`` or ``cuda:0 (NVIDIA H200)``."""
    import torch
    dev = pick_device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        index = dev.index or 0
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(dev)


def module_device(module: torch.nn.Module) -> torch.device:
    """Where ``module`` lives: the device of its first parameter or buffer (CPU if it has none).

    Why here: runners move their inputs to the model; they read the model's placement rather
    than choosing a device themselves (a parameter-free module has no ``next(parameters())``).
    """
    import torch
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    return torch.device("cpu")
