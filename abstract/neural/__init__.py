"""Neural side of `abstract`: sites, interventions and cached runners.

Sub-modules are imported lazily (``abstract.neural.Site`` works) so that importing the
package does not pull in torch or transformers.
"""
from importlib import import_module
from typing import Any

_EXPORTS = {
    "Site": "sites", "SiteError": "sites", "resolve_positions": "sites",
    "ArchSpec": "architectures", "detect_architecture": "architectures",
    "UnsupportedModelError": "architectures", "torch_layer_paths": "architectures",
    "Intervention": "interventions", "VectorInterchange": "interventions",
    "NeuronInterchange": "interventions", "DAS": "interventions", "LowRankRotation": "interventions",
    "BoundlessDAS": "interventions", "MultiVariableDAS": "interventions",
    "random_rotation_control": "interventions", "temperature_schedule": "interventions",
    "BaseCache": "cache", "LMRunner": "lm_runner", "TorchRunner": "torch_runner",
    "make_runner": "runner", "Runner": "runner", "Hooks": "hooks",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
