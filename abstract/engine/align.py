"""Align one hypothesis: the entry point the verifier calls.

:class:`~abstract.engine.run.HypothesisRun` does the work, phase by phase, into a typed
:class:`~abstract.engine.results.HypothesisResult`; this returns its HYPOTHESIS entry of the
results document (docs/results-schema.md), JSON-able, with correct/n counts.

Variables are aligned *separately* (each its own intervention, own data, own site search)
unless ``train joint true`` groups those at one site (``joint.py``: one shared basis,
multi-source data); cause/isolate then combine the trained alignments (a joint variable's
block). Progress goes to stderr (tqdm).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from ..language import Spec
from .networks import LoadedNetwork
from .run import HypothesisRun


def align_hypothesis(spec: Spec, hypothesis_name: str, *, device: Optional[str] = None, progress: bool = True,
                     seed: int = 0, overrides: Optional[Mapping[str, Any]] = None,
                     network: Optional[LoadedNetwork] = None, save_interventions: Optional[str] = None,
                     load_interventions: Optional[str] = None, executor: Any = None,
                     cell_cache: Any = None) -> dict[str, Any]:
    """Run every alignment of one hypothesis (see module docstring).

    ``seed`` shifts data and training seeds; ``overrides`` replaces train/data options
    (e.g. ``{"samples": 200, "epochs": 1, "seeds": 1}``; ``"search": False`` drops the grid).
    ``network``: the hypothesis's network already loaded on ``device`` (the verify pipeline
    loads it once to fingerprint it for the results cache); loaded here when omitted.
    ``save_interventions`` / ``load_interventions``: a folder to write every trained
    intervention to, or to load them from instead of training (``abstract.artifacts``).
    ``executor``: where the search's cells train (``abstract.executors``; default in-process),
    ``cell_cache``: a ``CellCache`` keeping finished cells (an interrupted sweep resumes).
    Raises SpecError for problems in the spec (bad options, unknown positions, sites the
    network does not have)."""
    run = HypothesisRun(spec, hypothesis_name, device=device, progress=progress, seed=seed, overrides=overrides,
                        network=network, save_interventions=save_interventions,
                        load_interventions=load_interventions, executor=executor, cell_cache=cell_cache)
    return run.run().to_json()
