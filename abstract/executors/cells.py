"""The cells of a sweep, as data an executor can ship anywhere.

A *cell task* is one variable trained at the sites of one grid row (one layer: its positions,
trained together in stacked passes where the network allows, see ``engine/batched.py``) with
one training seed; a row is never split, so whichever worker runs it keeps the stacked path.
Its result is one :class:`~abstract.engine.search.Cell` per site. On the wire a cell is a
:class:`CellRecord`: the trained intervention as its ``state_dict`` (torch cannot pickle the
orthogonal parametrisation of a rotation), its scores and its test predictions, all on CPU;
:func:`unpack` rebuilds it around the receiving process's context exactly (the module is
rebuilt with the same seed, then the trained state is loaded).

:class:`ContextData` is what a remote worker needs to rebuild a variable's
``VariableContext`` around its own copy of the network: the context itself, less the driver's
runner and encoder (the plan, the resolved sites, the encoded train/dev/test splits).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from ..engine.results import Count
from ..engine.search import Cell, VariableContext
from ..neural.sites import Site


@dataclass(frozen=True)
class CellTask:
    """Train ``variable`` at ``sites`` (one row of one layer) with training seed ``seed``.

    ``context``: the key of the variable's :class:`ContextData` in the sweep (unique per run)."""

    context: str
    variable: str
    sites: tuple[Site, ...]
    seed: int

    @property
    def label(self) -> str:
        where = self.sites[0].label if len(self.sites) == 1 else \
            f"{self.sites[0].label}..{self.sites[-1].label} ({len(self.sites)} sites)"
        return f"{self.variable} {where} seed {self.seed}"

    def key_parts(self) -> dict[str, Any]:
        """What identifies the task's work (with the run's own key parts: the cell cache key)."""
        return {"variable": self.variable, "sites": [dataclasses.astuple(s) for s in self.sites], "seed": self.seed}


@dataclass
class CellRecord:
    """One trained cell, picklable and device-free (see module docstring)."""

    site: Site
    seed: int
    hidden: int
    state: dict[str, torch.Tensor]
    dev: tuple[int, int]
    test: tuple[int, int]
    losses: list[float]
    test_pred: torch.Tensor
    dev_loss: Optional[float]


def pack(cell: Cell) -> CellRecord:
    state = {k: v.detach().cpu().clone() for k, v in cell.interv.state_dict().items()}
    return CellRecord(cell.site, cell.seed, cell.hidden, state, (cell.dev.correct, cell.dev.n),
                      (cell.test.correct, cell.test.n), list(cell.losses), cell.test_pred.detach().cpu().clone(),
                      cell.dev_loss)


def unpack(record: CellRecord, ctx: VariableContext) -> Cell:
    """The cell in ``ctx``'s process: the intervention rebuilt (same seed), its trained state
    loaded, on the device the local path leaves it on (the runner's), in eval mode."""
    interv = ctx.new_intervention(record.hidden, record.seed)
    interv.load_state_dict(record.state)
    device = ctx.runner.device
    interv.to(device).eval()
    return Cell(record.site, record.seed, interv, Count(*record.dev), Count(*record.test), list(record.losses),
                record.test_pred.to(device), record.hidden, record.dev_loss)


@dataclass
class ContextData:
    """A variable's ``VariableContext`` detached from the driver's network: every field travels
    (the plan, the sites, the encoded train/dev/test splits, and whatever a context gains later)
    except the runner and encoder, the trained cells and the prefix caches."""

    ctx: VariableContext

    @staticmethod
    def of(ctx: VariableContext) -> "ContextData":
        splits = {k: v for k, v in ctx.splits.items() if k in ("train", "dev", "test")}
        return ContextData(dataclasses.replace(ctx, runner=None, encoder=None, tick=_quiet, step=None, cells={},
                                               failed={}, grid=None, screened=[], splits=splits,
                                               sites=dataclasses.replace(ctx.sites, encoder=None)))

    def context(self, runner: Any, encoder: Any) -> VariableContext:
        c = self.ctx
        return dataclasses.replace(c, runner=runner, encoder=encoder, cells={}, failed={}, grid=None, screened=[],
                                   splits=dict(c.splits), sites=dataclasses.replace(c.sites, encoder=encoder))


def _quiet(msg: str) -> None:
    """A worker's progress goes nowhere (the driver ticks as results arrive)."""


@dataclass
class CellOutcome:
    """What became of one task: its cells (in ``task.sites`` order), or the error that remained
    after the retry. ``attempts``: tries made (0 when served from the cell cache)."""

    task: CellTask
    records: list[CellRecord]
    error: Optional[str] = None
    attempts: int = 1
    cached: bool = False
    live: list[Cell] = field(default_factory=list)  # in-process executors: the cells themselves
    exception: Optional[BaseException] = None  # what the last try raised (raised as itself if nothing is left)

    @property
    def ok(self) -> bool:
        return self.error is None


def train_cells(ctx: VariableContext, task: CellTask) -> list[Cell]:
    """Run one task in ``ctx``: the row in stacked passes where possible, then every site's
    cell (``VariableContext.cell`` finds the stacked ones done) -- exactly today's path."""
    sites = list(task.sites)
    ctx.train_row(sites, task.seed)
    return [ctx.cell(site, task.seed) for site in sites]
