"""The train phase's cells, planned as data and handed to an executor (the driver's side).

Two waves, each one batch of independent tasks for the executor:

1. every variable's grid, row by row, with the first training seed; and the seeds of every
   variable whose ``align`` line names its site (known before any training);
2. the seeds of the variables whose site the grid chooses, at that site (``reported_site``).

Each task's cells land in the variable's ``VariableContext`` in task order, which is the
order the in-process path trains them in; ``run_variable`` then finds them trained and
only chooses, diagnoses and summarises. Jointly trained groups, the measurements and the
controls stay in the driver (they reuse the chosen cells). A task that failed twice is
recorded as a :class:`~abstract.engine.results.CellError` and its cells are left out.
"""
from __future__ import annotations

import functools
import uuid
from typing import TYPE_CHECKING, Any, Optional

import torch

from ..engine.results import CellError
from ..engine.search import VariableContext, prescreen, reported_site
from .base import Executor, Job
from .cache import CellCache
from .cells import CellOutcome, CellTask, ContextData, pack, train_cells, unpack
from .worker import WorkerConfig

if TYPE_CHECKING:
    from ..engine.run import HypothesisRun


def plan_grid(ctx: VariableContext, key: str, with_seeds: bool) -> list[CellTask]:
    """Wave 1 for one variable: its grid rows (first seed), then its seeds when its site is named."""
    sites, seeds = ctx.sites, ctx.plan.train.seeds
    screen = prescreen(ctx)  # `search ... prescreen K`: only the top K cells train (computed here, once)
    rows = [tuple(s for s in (sites.site(layer, p, head) for p in sites.positions)
                  if screen is None or s in screen.kept)
            for layer in sites.layers for head in sites.heads]  # a row: one layer (and head), every position
    tasks = [CellTask(key, ctx.name, row, seeds[0]) for row in rows if row]
    if with_seeds and sites.align_site is not None:
        tasks += plan_seeds(ctx, key, sites.align_site, tasks)
    return tasks


def plan_seeds(ctx: VariableContext, key: str, site: Any, planned: list[CellTask]) -> list[CellTask]:
    """Every training seed at ``site`` not already planned, trained or given up on."""
    done = {(s, t.seed) for t in planned for s in t.sites} | set(ctx.cells) | set(ctx.failed)
    return [CellTask(key, ctx.name, (site,), seed) for seed in ctx.plan.train.seeds if (site, seed) not in done]


class Sweep:
    """One hypothesis run's cells through one executor (with an optional cell cache)."""

    def __init__(self, run: "HypothesisRun", executor: Executor, cache: Optional[CellCache] = None):
        self.run, self.executor, self.cache = run, executor, cache
        token = uuid.uuid4().hex[:12]
        self.keys = {name: f"{run.h.name}/{name}/{token}" for name in run.contexts}
        self.by_key = {key: run.contexts[name] for name, key in self.keys.items()}
        self.errors: list[CellError] = []
        self._run_key: Optional[dict[str, Any]] = None

    def run_all(self) -> list[CellError]:
        run = self.run
        in_group = run.in_group
        wave = [t for name, ctx in run.contexts.items()
                for t in plan_grid(ctx, self.keys[name], with_seeds=name not in in_group)]
        self.execute(wave)
        wave = []
        for name, ctx in run.contexts.items():
            if name in in_group or ctx.sites.align_site is not None:
                continue
            site = reported_site(ctx)
            if site is not None:  # None: every grid cell failed; run_variable says so
                wave += plan_seeds(ctx, self.keys[name], site, [])
        self.execute(wave)
        return self.errors

    # ----------------------------------------------------------------------------------
    def execute(self, tasks: list[CellTask]) -> None:
        if not tasks:
            return
        outcomes: dict[int, CellOutcome] = {}
        todo = []
        for i, task in enumerate(tasks):
            found = self.cache.get(self.cache.key(self.run_key, task)) if self.cache is not None else None
            if found is not None:
                outcomes[i] = CellOutcome(task, found, None, 0, cached=True)
            else:
                todo.append(i)
        for i, outcome in zip(todo, self.executor.run([tasks[i] for i in todo], self.job())):
            outcomes[i] = outcome
        for i in range(len(tasks)):
            self._land(outcomes[i])

    def job(self) -> Job:
        """What the executor needs: the contexts' data (built only if asked), the in-process
        runner, the remote workers' config, the progress callback."""
        return Job(contexts={k: functools.partial(ContextData.of, c) for k, c in self.by_key.items()},
                   local=lambda task: train_cells(self.by_key[task.context], task),
                   remote=self.worker_config(), done=self._progress)

    def _land(self, outcome: CellOutcome) -> None:
        """Put a task's cells into its context, in site order (or record its failure)."""
        task, ctx = outcome.task, self.by_key[outcome.task.context]
        if not outcome.ok:
            for site in task.sites:
                ctx.cells.pop((site, task.seed), None)  # a row that failed half-way
                ctx.failed[(site, task.seed)] = outcome.exception or RuntimeError(outcome.error or "failed")
            self.errors.append(CellError(task.variable, tuple(s.label for s in task.sites), task.seed,
                                         outcome.error or "failed", outcome.attempts))
            return
        cells = outcome.live or [unpack(r, ctx) for r in outcome.records]
        for cell in cells:  # re-inserted: cells land in task order, whichever came from where first
            ctx.cells.pop((cell.site, cell.seed), None)
            ctx.cells[(cell.site, cell.seed)] = cell
            if not outcome.live:
                ctx.tick(f"{ctx.name} {cell.site.label} seed {cell.seed}: dev {cell.dev.value:.3f}")
        if self.cache is not None and not outcome.cached:
            self.cache.put(self.cache.key(self.run_key, task), outcome.records or [pack(c) for c in cells])

    def _progress(self, outcome: CellOutcome) -> None:
        if not outcome.ok:
            self.by_key[outcome.task.context].tick(f"{outcome.task.label}: failed")

    @property
    def run_key(self) -> dict[str, Any]:
        """The cell cache key's run parts: what the cells depend on besides the task."""
        if self._run_key is None:
            from ..verify.fingerprint import package_fingerprint
            run = self.run
            self._run_key = {"schema": "abstract.cells/1", "spec": run.spec.sha256, "network": run.net.fingerprint,
                             "hypothesis": run.h.name, "seed": run.seed, "device": str(run.dev),
                             "overrides": sorted((run.overrides or {}).items()), "code": package_fingerprint()}
        return self._run_key

    def worker_config(self) -> WorkerConfig:
        run = self.run
        return WorkerConfig(run.spec.text, run.spec.path, run.h.name, str(run.dev), run.net.fingerprint,
                            torch.get_num_threads(), getattr(run, "load_threads", torch.get_num_threads()), run.seed,
                            dict(run.overrides) if run.overrides else None, run.h.network, run.h.model)
