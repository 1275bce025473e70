"""The alignment engine: spec hypothesis -> trained interventions -> measured IIA.

Entry point: :func:`abstract.engine.align.align_hypothesis` (imported lazily so that
``import abstract.engine`` does not load torch).
"""
from typing import Any

__all__ = ["align_hypothesis"]


def __getattr__(name: str) -> Any:
    if name == "align_hypothesis":
        from .align import align_hypothesis
        return align_hypothesis
    raise AttributeError(name)
