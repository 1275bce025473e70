"""A results cache so that CI does not retrain an unchanged hypothesis.

Keyed by everything that can change the numbers: the spec text, the hypothesis, the
network's declaration, builder and the local modules it imports, the fingerprint of its
loaded weights, the seed, the device, the versions of abstract, torch and transformers, and
a hash of abstract's own source (see ``verify.pipeline.verify_spec`` and
``verify.fingerprint``). Nothing in the key depends on the path the spec was read by, so
the CLI and the pytest plugin share entries.

The cache is an optimisation, never a source of failure: an entry that cannot be read, is
not JSON, or does not have the shape of a hypothesis result is a miss (the caller
recomputes and overwrites it); a cache that cannot be written keeps the computed result and
reports why (`put` returns the problem instead of raising).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

DEFAULT_DIR = Path(os.environ.get("ABSTRACT_CACHE_DIR", ".abstract-cache")) / "results"
ENTRY_SCHEMA = "abstract.cache/1"


def cache_key(**parts: Any) -> str:
    """A short hex digest of the key parts (JSON with sorted keys)."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


class ResultsCache:
    """JSON files under `directory`, one per key; writes are atomic (write then rename).

    An entry is ``{"schema": "abstract.cache/1", "key": key, "result": {...}}``; `get` returns
    the result only when the wrapper is intact and `valid` (if given) accepts it."""

    def __init__(self, directory: str | Path = DEFAULT_DIR, enabled: bool = True) -> None:
        self.directory = Path(directory)
        self.enabled = enabled
        self.last_miss: str | None = None  # why the last `get` missed an existing entry, for messages

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, key: str, valid: Callable[[Any], list[str]] | None = None) -> dict[str, Any] | None:
        """The stored result, or None (disabled, absent, unreadable or malformed)."""
        self.last_miss = None
        if not self.enabled:
            return None
        path = self.path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:  # ValueError: not JSON, not UTF-8
            self.last_miss = f"cache entry {path} is unreadable ({type(err).__name__}: {err}); recomputing"
            return None
        if not (isinstance(entry, dict) and entry.get("schema") == ENTRY_SCHEMA and entry.get("key") == key
                and isinstance(entry.get("result"), dict)):
            self.last_miss = f"cache entry {path} is not an {ENTRY_SCHEMA} entry for this key; recomputing"
            return None
        problems = valid(entry["result"]) if valid is not None else []
        if problems:
            self.last_miss = f"cache entry {path} is malformed ({problems[0]}); recomputing"
            return None
        return entry["result"]

    def put(self, key: str, value: dict[str, Any]) -> str | None:
        """Store `value`; returns None, or why it could not be stored (the caller warns)."""
        if not self.enabled:
            return None
        tmp = self.directory / f".{key}.{os.getpid()}.tmp"
        try:
            text = json.dumps({"schema": ENTRY_SCHEMA, "key": key, "result": value}, indent=1, default=str)
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(self.path(key))
        except (OSError, TypeError, ValueError) as err:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            where = getattr(err, "filename", None) or self.directory
            why = getattr(err, "strerror", None) or str(err)
            return f"results cache: cannot write {where}: {why}; the result was kept but not cached"
        return None
