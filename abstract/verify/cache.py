"""A results cache so that CI does not retrain an unchanged hypothesis.

Keyed by everything that can change the numbers: the spec text, the hypothesis, the
network's declaration and source and the fingerprint of its loaded weights, the seed, the
device, the versions of abstract, torch and transformers, and a hash of abstract's own source
(see ``verify.pipeline.verify_spec``). A hit returns the stored hypothesis result.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path(os.environ.get("ABSTRACT_CACHE_DIR", ".abstract-cache")) / "results"


def cache_key(**parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


class ResultsCache:
    """JSON files under `directory`, one per key; writes are atomic (write then rename)."""

    def __init__(self, directory: str | Path = DEFAULT_DIR, enabled: bool = True) -> None:
        self.directory = Path(directory)
        self.enabled = enabled

    def get(self, key: str) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        path = self.directory / f"{key}.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(value, indent=1, default=str))
        tmp.replace(self.directory / f"{key}.json")
