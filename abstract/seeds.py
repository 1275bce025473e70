"""Named seed streams: every random draw of a run comes from the run's seed and a stream name.

Why: magic offsets (``seed * 1000 + 3``, ``10_000 + seed``) spread over files collide
silently and cannot be read back. A stream is named for what it draws (``"data/test"``,
``"control/random_network"``) plus the keys that distinguish its draws (a variable name, a
training seed); its integer seed is a stable hash of those, identical in every process and on
every platform (no Python ``hash()``, which is salted per process).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Union

Key = Union[str, int]

SEED_BITS = 62  # fits torch.Generator.manual_seed, random.Random and numpy's SeedSequence


def derive_seed(base: int, stream: str, *keys: Key) -> int:
    """A stable non-negative seed for the draws of ``stream`` (with ``keys``) under ``base``."""
    text = "\x1f".join([str(int(base)), stream, *(f"{type(k).__name__}:{k}" for k in keys)])
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> (64 - SEED_BITS)


@dataclass(frozen=True)
class SeedStreams:
    """The seed streams of one run (``base`` is the run's ``--seed``)."""

    base: int = 0

    def seed(self, stream: str, *keys: Key) -> int:
        return derive_seed(self.base, stream, *keys)
