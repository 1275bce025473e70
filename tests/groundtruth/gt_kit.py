"""Shared helpers of the ground-truth suite: run a spec through the spec-level API and read
each hypothesis's verdict from the results document."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(file: str, name: str) -> ModuleType:
    """Import ``fixtures/<file>`` once, under ``name`` (the fixtures folder is no package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, FIXTURES / file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def verify(spec: str, hypotheses: list[str] | None = None) -> dict[str, Any]:
    """The results document of ``fixtures/<spec>``: CPU, seed 0, no results cache."""
    from abstract.verify.pipeline import verify_spec

    doc = verify_spec(FIXTURES / spec, hypotheses=hypotheses, device="cpu", progress=False, seed=0)
    assert doc["errors"] == [], doc["errors"]
    assert all(c["verdict"] == "proved" for c in doc["checks"]), [c for c in doc["checks"] if c["verdict"] != "proved"]
    return doc


def verdicts(doc: dict[str, Any]) -> dict[str, bool]:
    """Hypothesis name -> whether every one of its expectations held."""
    return {h["name"]: all(e["passed"] for e in h["expectations"]) for h in doc["hypotheses"]}


def hypothesis(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(h for h in doc["hypotheses"] if h["name"] == name)
