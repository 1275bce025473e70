"""A worker that holds its own copy of a frozen network and runs cell tasks on it.

Remote executors (``ray``) never pickle the network: each worker rebuilds it from the spec
(text and path: the builder is found relative to the path, as in the driver) with the
driver's own loading code (``HypothesisRun.load``), and checks that the weights it got are
the ones the driver loaded (the fingerprint) -- a builder that is not deterministic would
otherwise train every cell on a different network. It then keeps one ``VariableContext`` per
variable of the sweep (rebuilt from the shipped :class:`ContextData`) and runs tasks exactly
as the in-process path does (:func:`train_cells`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import torch

from .cells import CellRecord, CellTask, ContextData, pack, train_cells


class NetworkMismatch(RuntimeError):
    """The worker loaded other weights than the driver (a non-deterministic builder)."""


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a remote worker needs to load the network (picklable, small)."""

    spec_text: str
    spec_path: str
    hypothesis: str
    device: str
    fingerprint: str
    threads: int = 1  # torch threads while training (the driver's, for identical sums)
    load_threads: int = 1  # torch threads while building the network (the driver's: a builder that trains)
    seed: int = 0
    overrides: Optional[Mapping[str, Any]] = None
    network: str = ""  # the hypothesis's network and causal model: what a worker holds
    model: str = ""

    @property
    def pool_key(self) -> tuple[str, ...]:
        """Workers with equal keys hold the same network and encoder (hypotheses on the same
        network and model share them)."""
        import hashlib
        return (hashlib.sha256(self.spec_text.encode()).hexdigest(), self.network or self.hypothesis, self.model,
                self.device, self.fingerprint)

    def build(self) -> "NetworkWorker":
        return NetworkWorker(self)


class NetworkWorker:
    """Loads the network once; runs any number of tasks (see module docstring)."""

    def __init__(self, config: WorkerConfig):
        from ..engine.run import HypothesisRun
        from ..language import compile_text

        torch.set_num_threads(max(1, config.load_threads))
        spec = compile_text(config.spec_text, config.spec_path)
        run = HypothesisRun(spec, config.hypothesis, device=config.device, progress=False, seed=config.seed,
                            overrides=config.overrides)
        run.load()
        if run.net.fingerprint != config.fingerprint:
            raise NetworkMismatch(
                f"the worker loaded network {run.net.name} with fingerprint {run.net.fingerprint}, the driver "
                f"{config.fingerprint}: its builder does not return the same weights every time (seed it)")
        torch.set_num_threads(max(1, config.threads))
        self.runner, self.encoder = run.runner, run.encoder
        self._contexts: dict[str, Any] = {}

    def run(self, task: CellTask, data: ContextData | Callable[[], ContextData]) -> list[CellRecord]:
        """Train one task; ``data``: the variable's context data (or how to fetch it, called
        only the first time this worker sees the variable)."""
        for key, other in self._contexts.items():  # prefix caches of one variable at a time (LM caches are big)
            if key != task.context:
                other.keep_only(None, "")
        ctx = self._contexts.get(task.context)
        if ctx is None:
            found = data() if callable(data) else data
            ctx = self._contexts[task.context] = found.context(self.runner, self.encoder)
        cells = train_cells(ctx, task)
        for site in task.sites:  # the driver keeps the cells; this worker keeps only its prefix caches
            ctx.cells.pop((site, task.seed), None)
        return [pack(c) for c in cells]
