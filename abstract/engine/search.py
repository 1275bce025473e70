"""Site search for one variable: a grid of layers x positions, then all seeds at one site.

Each grid cell is trained with the first seed. The chosen site is the cell with the best *dev*
IIA among the *non-trivial* cells (``trivial.py``: a site where swapping the variable's input
ancestors realises it says nothing; only when every cell is trivial is one of them chosen,
and it stays flagged). Ties (equal dev IIA) go to the lowest layer, then to the position
listed first. The reported site is the `align` line's site when it names a layer (the grid is
then evidence around it, and ``better_site`` names the grid's chosen site when its test IIA
beats the named site's beyond both intervals), else the chosen one. All seeds are trained at
the reported site and scored on the *test* split. Grid values are test IIA (mean/max over the
seeds trained there).
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch

from ..artifacts import fit_with
from ..hypothesis.plan import Plan
from ..neural.interventions import Intervention, intervention_class
from ..neural.sites import Site
from .batched import MAX_STACK, train_stacked
from .data import PairSet
from .results import Count, GridResult, SeedScore, SiteRef, best_seed_index
from .sites import VariableSites, site_ref
from .diagnostics import Diagnostics
from .grid_cache import GridCache
from .prescreen import MAX_PAIRS, attribution_scores, runner_positions, top_cells
from .train import SiteData, Unit, count_correct, evaluate, make_intervention, predict, train_intervention


@dataclass
class Cell:
    """One trained intervention (or a joint one's block) at one site, scored on dev and test."""

    site: Site
    seed: int
    interv: Intervention
    dev: Count
    test: Count
    losses: list[float]
    test_pred: torch.Tensor
    hidden: int
    dev_loss: Optional[float] = None
    train: Optional[Count] = None  # IIA on its own training pairs, once diagnosed
    diagnosed: bool = False  # a reported seed: its score carries its diagnostics
    lr: Optional[float] = None

    @property
    def diagnostics(self) -> Diagnostics:
        return Diagnostics(tuple(self.losses), self.dev_loss, self.train.value if self.train is not None else None,
                           self.lr)

    @property
    def score(self) -> SeedScore:
        return SeedScore(self.seed, self.test, self.dev, self.diagnostics if self.diagnosed else None)


@dataclass
class VariableContext:
    """One variable's search: the network, its encoded splits, its sites, the cells trained."""

    runner: Any
    encoder: Any
    plan: Plan
    sites: VariableSites
    splits: dict[str, PairSet]
    tick: Callable[[str], None] = lambda msg: None
    step: Optional[Callable[[float], None]] = None
    cells: dict[tuple[Site, int], Cell] = field(default_factory=dict)
    trivial: dict[Site, bool] = field(default_factory=dict)  # filled by the run's sites phase
    store: Optional[Any] = None  # abstract.artifacts.InterventionStore: save or load what is trained
    failed: dict[tuple[Site, int], BaseException] = field(default_factory=dict)  # cells an executor gave up on
    grid: Optional[GridCache] = None  # every grid site's prefix caches (``grid_cache.py``), made on first use
    screened: list[Optional["Screen"]] = field(default_factory=list)  # the pre-screen, once computed

    @property
    def name(self) -> str:
        return self.sites.var.name

    @property
    def unit(self) -> Unit:
        return Unit((self.sites.var,))

    def new_intervention(self, hidden: int, seed: int) -> Intervention:
        var = self.sites.var
        return make_intervention(var.intervention, hidden, seed, var.pos)

    def grid_cache(self) -> GridCache:
        """The prefix caches of every site this variable may be trained at (grid and align site)."""
        if self.grid is None:
            s = self.sites
            sites = s.grid_sites()  # every (layer, head, position) cell
            self.grid = GridCache(self.runner, self.splits, sites + ([s.align_site] if s.align_site else []))
        return self.grid

    def data(self, site: Site, split: str) -> SiteData:
        """Prefix caches of ``site``: one forward per split prepares the grid (a chunk of its layers)."""
        return self.grid_cache().get(site, split)

    def keep_only(self, site: Optional[Site], split: str) -> None:
        """Drop the prefix caches this variable no longer needs (memory, for LMs)."""
        self.grid_cache().keep_only(site, split)

    def train_row(self, sites: list[Site], seed: int) -> None:
        """Train the not-yet-trained cells at ``sites`` (one layer, several positions) together,
        in stacked passes (``batched.py``); :meth:`cell` then finds them done. Only stackable
        kinds on language models, where positions share the suffix."""
        ip = self.sites.var.intervention
        todo = list(dict.fromkeys(s for s in sites if (s, seed) not in self.cells and (s, seed) not in self.failed))
        if len(todo) < 2 or not intervention_class(ip.kind).stackable or not self.encoder.uses_positions:
            return
        if self.store is not None and self.store.loading:
            return  # each cell loads its saved weights instead (:meth:`cell`)
        for start in range(0, len(todo), MAX_STACK):
            group = todo[start:start + MAX_STACK]
            train = [self.data(s, "train") for s in group]
            intervs = [self.new_intervention(train[0].hidden, seed) for _ in group]
            losses = train_stacked(self.runner, self.encoder, train, intervs, self.plan.train, seed, self.step)
            del train
            for site, interv, site_losses in zip(group, intervs, losses):
                if self.store is not None:
                    fit_with(self.store, self.name, [self.name], site, seed, interv,
                             functools.partial(list, site_losses), ip, self.data(site, "test").hidden)
                self.score(site, seed, interv, site_losses, record=True)

    def score(self, site: Site, seed: int, interv: Intervention, losses: list[float], record: bool = False) -> Cell:
        """Score a trained intervention on this variable's dev and test pairs at ``site``;
        ``record``: remember it as this variable's own cell (and tick the progress bar)."""
        sd_dev, sd_test = self.data(site, "dev"), self.data(site, "test")
        dev_pred, dev_loss = evaluate(self.runner, self.encoder, sd_dev, interv)
        dev = Count(*count_correct(dev_pred, sd_dev.label))
        test_pred = predict(self.runner, self.encoder, sd_test, interv)
        cell = Cell(site, seed, interv, dev, Count(*count_correct(test_pred, sd_test.label)), losses, test_pred,
                    sd_test.hidden, dev_loss)
        if record:
            self.cells[(site, seed)] = cell
            self.tick(f"{self.name} {site.label} seed {seed}: dev {dev.value:.3f}")
        return cell

    def diagnose(self, cell: Cell) -> Cell:
        """Mark a reported seed's cell for diagnostics and score it on its own training pairs."""
        if "train" in self.splits:
            sd = self.data(cell.site, "train")
            cell.train = Count(*count_correct(predict(self.runner, self.encoder, sd, cell.interv), sd.label))
        cell.diagnosed, cell.lr = True, self.plan.train.lr
        return cell

    def cell(self, site: Site, seed: int) -> Cell:
        key = (site, seed)
        if key not in self.cells:
            interv = self.new_intervention(self.data(site, "test").hidden, seed)
            losses: list[float] = []
            if interv.trainable:
                losses = fit_with(self.store, self.name, [self.name], site, seed, interv,
                                  lambda: train_intervention(self.runner, self.encoder, self.data(site, "train"),
                                                             interv, self.plan.train, seed, self.step),
                                  self.sites.var.intervention, self.data(site, "test").hidden)
            self.score(site, seed, interv, losses, record=True)
        return self.cells[key]


@dataclass
class SearchOutcome:
    """Where a variable is reported, the grid around it, and the seeds trained there (none when
    the variable is trained jointly: its group trains the site itself)."""

    site: Site
    site_ref: SiteRef
    grid: Optional[GridResult]
    cells: list[Cell]
    better_site: Optional[dict[str, Any]] = None


def choose_site(candidates: list[tuple[int, int, Cell]], trivial: dict[Site, bool]) -> Optional[Cell]:
    """The grid cell to report: best dev IIA among non-trivial cells (all cells when every one
    is trivial); ties go to the lowest layer, then the position listed first.
    ``candidates``: (layer, index of the position in the grid, cell)."""
    pool = [c for c in candidates if not trivial.get(c[2].site, False)] or candidates
    if not pool:
        return None
    return max(pool, key=lambda c: (c[2].dev.value, -c[0], -c[1]))[2]


def run_variable(ctx: VariableContext, train_seeds: bool = True) -> SearchOutcome:
    """Search the grid (first seed), then train every seed at the reported site."""
    sites, seeds = ctx.sites, ctx.plan.train.seeds
    candidates: list[tuple[int, int, Cell]] = []
    columns = sites.columns  # (head, position); head is None unless the grid searches heads
    screen = prescreen(ctx)  # None: train every cell
    for layer in sites.layers:
        for head in sites.heads:
            row = [sites.site(layer, p, head) for p in sites.positions]
            ctx.train_row([s for s in row if screen is None or s in screen.kept], seeds[0])
        for i, (head, p) in enumerate(columns):
            cell_site = sites.site(layer, p, head)
            if (cell_site, seeds[0]) in ctx.failed or (screen is not None and cell_site not in screen.kept):
                continue
            candidates.append((layer, i, ctx.cell(cell_site, seeds[0])))
    chosen_cell = choose_site(candidates, ctx.trivial)
    chosen = chosen_cell.site if chosen_cell is not None else None
    chosen_pos = next((columns[i][1] for _, i, c in candidates if c is chosen_cell), None)
    if sites.align_site is not None:
        site, spec_pos = sites.align_site, sites.align_position
    else:
        if chosen is None:
            raise _all_failed(ctx, "grid cell")
        site, spec_pos = chosen, (chosen_pos if sites.uses_positions else None)
    cells = [ctx.diagnose(ctx.cell(site, s)) for s in seeds if (site, s) not in ctx.failed] if train_seeds else []
    if train_seeds and not cells:
        raise _all_failed(ctx, f"seed at {site.label}")
    grid = None
    if sites.layers:
        mean, mx, flags = [], [], []
        for layer in sites.layers:
            row_mean: list[Optional[float]] = []
            row_max: list[Optional[float]] = []
            row_flags: list[bool] = []
            for head, p in columns:
                s = sites.site(layer, p, head)
                scores = [c.test.value for (cs, _), c in ctx.cells.items() if cs == s]
                row_mean.append(round(sum(scores) / len(scores), 4) if scores else None)
                row_max.append(max(scores) if scores else None)
                row_flags.append(bool(ctx.trivial.get(s, False)))
            mean.append(row_mean)
            mx.append(row_max)
            flags.append(row_flags)
        chosen_ref = None
        if chosen is not None:
            chosen_ref = dataclasses.replace(site_ref(chosen, spelling=True),
                                             trivial=bool(ctx.trivial.get(chosen, False)))
        head_grid = sites.heads != (None,)
        tokens = sites.position_tokens() * len(sites.heads)
        grid = GridResult(list(sites.layers), [p for _, p in columns], tokens, sites.component,
                          mean, mx, chosen_ref, trivial=flags if ctx.trivial else None,
                          heads=[int(h) for h, _ in columns if h is not None] if head_grid else None,
                          prescreen=screen.to_json(sites) if screen is not None else None)
    ref = dataclasses.replace(site_ref(site, spec_pos), trivial=bool(ctx.trivial.get(site, False)))
    return SearchOutcome(site, ref, grid, cells, _better_site(chosen_cell, chosen_pos, site, cells))


def reported_site(ctx: VariableContext) -> Optional[Site]:
    """The site :func:`run_variable` reports, once the grid's first-seed cells are in
    ``ctx.cells`` (an executor planning the seeds asks before run_variable runs);
    None when every grid cell failed."""
    sites = ctx.sites
    if sites.align_site is not None:
        return sites.align_site
    seed = ctx.plan.train.seeds[0]
    candidates = [(layer, i, ctx.cells[(sites.site(layer, p, hd), seed)]) for layer in sites.layers
                  for i, (hd, p) in enumerate(sites.columns) if (sites.site(layer, p, hd), seed) in ctx.cells]
    chosen = choose_site(candidates, ctx.trivial)
    return chosen.site if chosen is not None else None


def _all_failed(ctx: VariableContext, what: str) -> BaseException:
    """Nothing of the variable is left to report: the first cell's own error, raised as itself
    (a failure that hits every cell is a bug or a resource problem, not a finding at the spec line)."""
    first = next(iter(ctx.failed.values()), None)
    return first if first is not None else RuntimeError(f"every {what} of {ctx.name} failed")


@dataclass
class Screen:
    """The attribution pre-screen of a grid (``prescreen.py``): every cell's score and the cells kept."""

    scores: dict[Site, float]
    kept: list[Site]
    pairs: int

    def to_json(self, sites: VariableSites) -> dict[str, Any]:
        grid = [[self.scores.get(sites.site(layer, p, hd)) for hd, p in sites.columns] for layer in sites.layers]
        trained = [[sites.site(layer, p, hd) in self.kept for hd, p in sites.columns] for layer in sites.layers]
        return {"score": [[None if v is None else float(f"{v:.6g}") for v in row] for row in grid],
                "trained": trained, "top": len(self.kept), "pairs": self.pairs}


def prescreen(ctx: VariableContext) -> Optional[Screen]:
    """Score every grid cell by attribution and keep the top K (``search ... prescreen K``), or None.
    Computed once per variable (an executor planning the grid's cells asks before run_variable)."""
    if ctx.screened:
        return ctx.screened[0]
    k = getattr(ctx.plan.search, "prescreen", None)
    sites = ctx.sites
    if not k or not sites.layers:
        return None
    grid = sites.grid_sites()
    pairs = ctx.splits["train"]
    scores = attribution_scores(ctx.runner, ctx.encoder, pairs, grid, batch=ctx.plan.train.batch,
                                site_positions=runner_positions(ctx.runner))
    ctx.tick(f"{ctx.name} pre-screen: {len(grid)} cells scored, training the top {min(k, len(grid))}")
    screen = Screen(scores, top_cells(scores, k, ctx.trivial), min(len(pairs), MAX_PAIRS))
    ctx.screened.append(screen)
    return screen


def _better_site(chosen: Optional[Cell], chosen_pos: Any, site: Site, cells: list[Cell]) -> Optional[dict[str, Any]]:
    """The grid's chosen site, when the align line named another and the grid's test IIA there
    clears the named site's (judged seed) beyond both 95% intervals."""
    if chosen is None or not cells or chosen.site == site:
        return None
    from ..verify.stats import wilson_interval
    named = cells[best_seed_index([c.score for c in cells])].test
    low, _ = wilson_interval(chosen.test.correct, chosen.test.n)
    _, named_high = wilson_interval(named.correct, named.n)
    if low <= named_high:
        return None
    return {**site_ref(chosen.site, chosen_pos).to_json(), "iia": chosen.test.value, "ci_low": round(low, 4),
            "named_iia": named.value, "named_ci_high": round(named_high, 4)}


def best_cell(cells: list[Cell]) -> Cell:
    """The cell of the seed chosen on dev."""
    return cells[best_seed_index([c.score for c in cells])]
