"""The `device_map` network option: where the layers of an `hf` model live (torch-free).

Written as one of
  * a placement strategy accelerate computes: ``device_map auto`` (or ``balanced``,
    ``balanced_low_0``, ``sequential``);
  * one device for the whole model: ``device_map "cuda:1"``;
  * the blocks in order: ``device_map [["cuda:0", 16], ["cuda:1", 16]]`` (16 blocks on each
    GPU; a bare ``"cuda:0"`` entry is one block). The embeddings go with the first block, the
    final norm with the last; the runners move activations between them.
Device names are checked for their form here (``check``) and for existence when the network
loads (a missing GPU is an error at the option, exit 2).
"""
from __future__ import annotations

import re
from typing import Any, Union

STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")
DEVICE_RE = re.compile(r"^(cpu|cuda(:\d+)?|mps|xpu(:\d+)?)$")

# a strategy or one device (str), or (device, number of blocks) runs in block order
DeviceMap = Union[str, tuple[tuple[str, int], ...]]


def parse_device_map(value: Any) -> DeviceMap:
    """The normalised map, or ValueError saying what was expected."""
    if isinstance(value, str):
        if value in STRATEGIES or DEVICE_RE.match(value):
            return value
        raise ValueError(f"{value!r} is neither a placement strategy ({', '.join(STRATEGIES)}) nor a device "
                         "(cpu, cuda, cuda:N)")
    if isinstance(value, list) and value:
        runs: list[tuple[str, int]] = []
        for item in value:
            if isinstance(item, str):
                item = [item, 1]
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
                    and isinstance(item[1], int) and not isinstance(item[1], bool) and item[1] >= 1):
                raise ValueError(f"each entry of a device list is a device or [device, number of blocks], got {item!r}")
            if not DEVICE_RE.match(item[0]):
                raise ValueError(f"{item[0]!r} is not a device (cpu, cuda, cuda:N)")
            runs.append((item[0], item[1]))
        return tuple(runs)
    raise ValueError("expected auto, a device in quotes, or a list of [device, blocks]")


def devices(dm: DeviceMap) -> list[str]:
    """The explicit devices a map names (none for a strategy)."""
    if isinstance(dm, str):
        return [] if dm in STRATEGIES else [dm]
    return list(dict.fromkeys(d for d, _ in dm))


def block_devices(dm: tuple[tuple[str, int], ...]) -> list[str]:
    """One device per block, in order."""
    return [d for d, n in dm for _ in range(n)]
