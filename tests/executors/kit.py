"""Shared by the executor tests: run a hypothesis of sweep.causal through an executor, compare
runs figure by figure and cell by cell, and inject failing cells (in-process and on Ray workers,
counted in files so that a retry on another worker process still counts)."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Optional

import torch

from abstract.engine.run import HypothesisRun
from abstract.executors import Sweep, WorkerConfig
from abstract.executors.cells import CellTask
from abstract.language import load_spec

HERE = Path(__file__).resolve().parent
SPEC = HERE / "sweep.causal"


def run(hypothesis: str, executor: Any = None, cell_cache: Any = None, legacy: bool = False,
        monkeypatch: Any = None) -> HypothesisRun:
    """One run of ``hypothesis``; ``legacy``: the engine's path before executors (no cells planned:
    run_variable trains every cell itself, as it always did)."""
    spec = load_spec(SPEC)
    r = HypothesisRun(spec, hypothesis, device="cpu", progress=False, executor=executor, cell_cache=cell_cache)
    if legacy:
        r.execute_cells = lambda: None  # type: ignore[method-assign]
    r.result_doc = r.run().to_json()  # type: ignore[attr-defined]
    return r


def figures(r: HypothesisRun) -> dict:
    doc = dict(r.result_doc)  # type: ignore[attr-defined]
    doc.pop("timing")
    doc.pop("seconds")
    return doc


def cells(r: HypothesisRun) -> dict:
    """Every trained cell: its weights, losses, scores and predictions, by (variable, site, seed)."""
    out = {}
    for name, ctx in r.contexts.items():
        for (site, seed), c in ctx.cells.items():
            out[(name, site.label, seed)] = (
                {k: v.detach().cpu() for k, v in c.interv.state_dict().items()}, tuple(c.losses),
                (c.dev.correct, c.dev.n), (c.test.correct, c.test.n), c.test_pred.cpu(), c.dev_loss)
    return out


def assert_same_cells(a: dict, b: dict) -> None:
    assert list(a) == list(b)  # the same cells, landed in the same order
    for key in a:
        sa, sb = a[key][0], b[key][0]
        assert sa.keys() == sb.keys(), key
        for k in sa:
            assert torch.equal(sa[k], sb[k]), (key, k)
        assert a[key][1:4] == b[key][1:4], key
        assert torch.equal(a[key][4], b[key][4]), key
        assert a[key][5] == b[key][5] or (a[key][5] != a[key][5] and b[key][5] != b[key][5]), key


class Faults:
    """Make the tasks holding ``site_label`` (of ``variable``, training seed ``seed``, or any of
    ``seed`` when it is a tuple) fail their first ``times`` attempts (``times`` large: always);
    ``how``: ``raise`` or ``die`` (the worker process exits, as an out-of-memory kill would end it)."""

    def __init__(self, folder: Path, variable: str, site_label: str, seed: Any, times: int = 99,
                 how: str = "raise"):
        self.folder, self.variable, self.site_label, self.seed = str(folder), variable, site_label, seed
        self.times, self.how = times, how

    def hits(self, task: CellTask) -> bool:
        seeds = self.seed if isinstance(self.seed, tuple) else (self.seed,)
        return task.variable == self.variable and task.seed in seeds and \
            any(s.label == self.site_label for s in task.sites)

    def maybe_fail(self, task: CellTask) -> None:
        if not self.hits(task):
            return
        n = len(os.listdir(self.folder))
        Path(self.folder, f"attempt-{n}").touch()
        if n < self.times:
            if self.how == "die":
                os._exit(3)
            raise RuntimeError(f"injected failure {n + 1} at {self.site_label}")

    @property
    def attempts(self) -> int:
        return len(os.listdir(self.folder))


@dataclasses.dataclass(frozen=True)
class FaultyConfig(WorkerConfig):
    faults: Optional[Faults] = None

    @property
    def pool_key(self) -> tuple[str, ...]:  # workers with other faults (or none) are not these
        return super().pool_key + (self.faults.folder if self.faults else "",)

    def build(self) -> Any:
        worker = super().build()
        faults, run = self.faults, worker.run

        def faulty(task, data):
            assert faults is not None
            faults.maybe_fail(task)
            return run(task, data)
        worker.run = faulty  # type: ignore[method-assign]
        return worker


def inject(monkeypatch: Any, faults: Faults) -> None:
    """Every sweep from now on runs its tasks through ``faults`` (in-process and remote)."""
    plain = Sweep.job

    def job(self: Sweep):
        j = plain(self)
        local = j.local

        def faulty_local(task):
            faults.maybe_fail(task)
            return local(task)
        remote = FaultyConfig(**{f.name: getattr(j.remote, f.name) for f in dataclasses.fields(WorkerConfig)},
                              faults=faults)
        return dataclasses.replace(j, local=faulty_local, remote=remote)
    monkeypatch.setattr(Sweep, "job", job)
