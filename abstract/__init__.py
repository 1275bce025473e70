"""abstract: state a causal-abstraction hypothesis in a spec file and verify it against a network.

Layout: `language/` (grammar -> AST -> compiled models), `causal/` (the high-level causal model),
`solver/` (z3 checks), `neural/` (sites, interventions, DAS training), `verify/` (expectations,
CI outputs), `report/` (HTML), `cli.py` (the `abstract` command), `api.py` (the Python API:
`abstract.load(path).verify()`, docs/api.md).
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# The Python API (abstract/api.py), imported on first use so that `import abstract` stays light
# (no lark, z3 or torch until a spec is loaded).
_API = ("load", "load_results", "Spec", "Check", "Checks", "Results", "HypothesisResult", "Expectation",
        "Variable", "Control", "SpecError")


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'abstract' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
