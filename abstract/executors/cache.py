"""Finished cells on disk, so that an interrupted sweep resumes where it stopped.

One file per task under ``DIR`` (default ``.abstract-cache/cells``, beside the results
cache): ``<key>.pt``, a ``torch.save`` of the task's :class:`CellRecord` list. The key hashes
everything that can change a cell: the spec's sha256, the network's fingerprint (its loaded
weights), the hypothesis, the run's seed and overrides, abstract's own source (an edited
engine never serves cells it did not make), and the task (variable, sites, training seed).
Only successful tasks are stored; a failed one is tried again on the next run.

Like the results cache, it never fails a run: an unreadable entry is a miss, an unwritable
directory is reported once and the sweep goes on. Entries are pickles: a cache directory
is trusted like the code that wrote it (do not point it at files from elsewhere).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from ..verify.cache import DEFAULT_DIR, cache_key
from .cells import CellRecord, CellTask

DEFAULT_CELL_DIR = DEFAULT_DIR.parent / "cells"


class CellCache:
    """Cells of finished tasks, keyed by ``run`` parts (fixed per run) plus the task's."""

    def __init__(self, directory: str | Path = DEFAULT_CELL_DIR, enabled: bool = True) -> None:
        self.directory = Path(directory)
        self.enabled = enabled
        self.problem: Optional[str] = None  # why writing failed (reported once by the caller)

    def key(self, run: Mapping[str, Any], task: CellTask) -> str:
        return cache_key(**run, task=task.key_parts())

    def get(self, key: str) -> Optional[list[CellRecord]]:
        if not self.enabled:
            return None
        try:
            found = torch.load(self.directory / f"{key}.pt", weights_only=False)
        except FileNotFoundError:
            return None
        except Exception:  # noqa: BLE001 - a damaged entry is recomputed
            return None
        if isinstance(found, list) and all(isinstance(r, CellRecord) for r in found):
            return found
        return None

    def put(self, key: str, records: list[CellRecord]) -> None:
        if not self.enabled or self.problem is not None:
            return
        tmp = self.directory / f".{key}.{os.getpid()}.tmp"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            torch.save(records, tmp)
            tmp.replace(self.directory / f"{key}.pt")
        except OSError as err:
            self.problem = f"cell cache {self.directory} cannot be written ({err}); finished cells are not kept"
