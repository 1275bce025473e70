"""Site search for one variable: a grid of layers x positions, then all seeds at one site.

Each grid cell is trained with the first seed. The site with the best *dev* IIA is the
chosen site; the reported site is the `align` line's site when it names a layer (the grid is
then evidence around it), else the chosen one. All seeds are trained at the reported site and
scored on the *test* split. Grid values are test IIA (mean/max over the seeds trained there).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch

from ..neural.sites import SLOT_PREFIX, Site
from .data import PairSet
from .metrics import best_seed_index, iia_summary, rate, seed_entry
from ..hypothesis.plan import TRAINED, Plan, VariablePlan
from .batched import MAX_STACK, train_stacked
from .train import (SiteData, count_correct, describe, make_intervention, predict, prepare_site, prepare_sites,
                    train_intervention)

STACKABLE = ("das", "lowrank")  # rotations: one module per position, stacked in one pass

DEFAULT_COMPONENT = "resid_post"


@dataclass
class Cell:
    site: Site
    seed: int
    interv: Any
    dev: tuple[int, int]
    test: tuple[int, int]
    losses: list[float]
    test_pred: torch.Tensor


@dataclass
class VariableContext:
    """What one variable's search needs: network runner, encoder, encoded splits, plan."""

    runner: Any
    encoder: Any
    n_layers: int
    splits: dict[str, PairSet]
    plan: Plan
    var: VariablePlan
    sample_inputs: list
    tick: Callable[[str], None] = lambda msg: None
    step: Optional[Callable[[float], None]] = None
    cells: dict = field(default_factory=dict)
    _site_data: dict = field(default_factory=dict)

    def site(self, layer: int, component: str, position: Any) -> Site:
        if not self.encoder.uses_positions:
            return Site(layer=layer, component=component, position=None)
        return Site(layer=layer, component=component,
                    position=self.encoder.site_position(position, self.sample_inputs))

    def data(self, site: Site, split: str) -> SiteData:
        """Prefix caches of the current site only (LM caches are big; sites come in order)."""
        if any(k[0] != site for k in self._site_data):
            self._site_data.clear()
        key = (site, split)
        if key not in self._site_data:
            self._site_data[key] = prepare_site(self.runner, site, self.splits[split])
        return self._site_data[key]

    def train_row(self, sites: list[Site], seed: int) -> None:
        """Train the not-yet-trained cells at ``sites`` (one layer, several positions) together,
        in stacked passes (``batched.py``); :meth:`cell` then finds them done. Only rotations
        (das/lowrank) on language models, where positions share the suffix."""
        ip = self.var.intervention
        todo = list(dict.fromkeys(s for s in sites if (s, seed) not in self.cells))
        if len(todo) < 2 or ip.kind not in STACKABLE or not self.encoder.uses_positions:
            return
        for start in range(0, len(todo), MAX_STACK):
            group = todo[start:start + MAX_STACK]
            self._site_data.clear()  # one row's prefix in memory at a time
            train = prepare_sites(self.runner, group, self.splits["train"])
            intervs = [make_intervention(ip, train[0].hidden, seed) for _ in group]
            losses = train_stacked(self.runner, self.encoder, train, intervs, self.plan.train, seed, self.step)
            del train
            for site, interv, site_losses in zip(group, intervs, losses):
                self._finish(site, seed, interv, site_losses)

    def _finish(self, site: Site, seed: int, interv: Any, losses: list[float]) -> Cell:
        """Score a trained intervention on dev and test and remember the cell."""
        sd_test = self.data(site, "test")
        dev = count_correct(predict(self.runner, self.encoder, self.data(site, "dev"), interv),
                            self.data(site, "dev").label)
        test_pred = predict(self.runner, self.encoder, sd_test, interv)
        cell = Cell(site, seed, interv, dev, count_correct(test_pred, sd_test.label), losses, test_pred)
        self.cells[(site, seed)] = cell
        self.tick(f"{self.var.name} {site.label} seed {seed}: dev {rate(*dev):.3f}")
        return cell

    def cell(self, site: Site, seed: int) -> Cell:
        key = (site, seed)
        if key not in self.cells:
            ip = self.var.intervention
            interv = make_intervention(ip, self.data(site, "test").hidden, seed)
            losses = []
            if ip.kind in TRAINED:
                losses = train_intervention(self.runner, self.encoder, self.data(site, "train"), interv,
                                            self.plan.train, seed, self.step)
            self._finish(site, seed, interv, losses)
        return self.cells[key]


def grid_axes(ctx: VariableContext) -> tuple[list[int], list[Any], str]:
    """Layers, positions (spec spelling) and component of the grid; empty when no search."""
    s, v = ctx.plan.search, ctx.var
    component = s.component or v.component or DEFAULT_COMPONENT
    layers = s.layers
    if layers is None and v.layer is None:
        layers = "*"  # no site given and no grid: search every layer
    if layers is None:
        return [], [], component
    layers = list(range(ctx.n_layers)) if layers == "*" else list(layers)
    for layer in layers:
        if not -ctx.n_layers <= layer < ctx.n_layers:
            raise ValueError(f"search layer {layer} is out of range: the network has {ctx.n_layers} layers")
    if not ctx.encoder.uses_positions:
        positions: list[Any] = [None]
    elif s.positions == "*":
        lengths = ctx.encoder.encode(ctx.sample_inputs)["attention_mask"].sum(dim=1)
        if int(lengths.min()) != int(lengths.max()):
            raise ValueError(f"`position *` needs prompts of one length, but they have {int(lengths.min())} to "
                             f"{int(lengths.max())} tokens: list the positions instead (template slots, last, "
                             "first, or indices)")
        positions = list(range(int(lengths[0])))
    else:
        positions = list(s.positions or [v.position or "last"])
    return layers, positions, component


def align_site(ctx: VariableContext) -> tuple[Site, Any]:
    """The site an `align ... to layer L` line names (resolved) and its position as spelled."""
    v = ctx.var
    _, positions, component = grid_axes(ctx)
    pos = v.position if v.position is not None else (positions[0] if positions else "last")
    return ctx.site(v.layer, v.component or component, pos), pos


def run_variable(ctx: VariableContext, train_seeds: bool = True) -> dict[str, Any]:
    """The VARIABLE entry of the results document (see docs/results-schema.md).

    ``train_seeds=False`` (joint alignment trains the site itself): only ``grid`` and ``site``."""
    v, seeds = ctx.var, ctx.plan.train.seeds
    layers, positions, component = grid_axes(ctx)
    grid = None
    chosen: Optional[Site] = None
    if layers:
        best = None
        for layer in layers:
            ctx.train_row([ctx.site(layer, component, p) for p in positions], seeds[0])
            for p in positions:
                cell = ctx.cell(ctx.site(layer, component, p), seeds[0])
                score = rate(*cell.dev)
                if best is None or score > best[0]:
                    best, chosen = (score, (layer, p)), cell.site
    if v.layer is not None:
        site, pos = align_site(ctx)
        spec_pos = pos if ctx.encoder.uses_positions else None
    else:
        site = chosen
        spec_pos = best[1][1] if ctx.encoder.uses_positions else None
    seed_cells = [ctx.cell(site, s) for s in seeds] if train_seeds else []
    seed_results = [seed_entry(c.seed, *c.test, dev=c.dev) for c in seed_cells]
    if layers:
        example = ctx.sample_inputs[0] if ctx.sample_inputs else None
        mean, mx = [], []
        for layer in layers:
            row_mean, row_max = [], []
            for p in positions:
                s = ctx.site(layer, component, p)
                scores = [rate(*c.test) for (cs, _), c in ctx.cells.items() if cs == s]
                row_mean.append(round(sum(scores) / len(scores), 4) if scores else None)
                row_max.append(max(scores) if scores else None)
            mean.append(row_mean)
            mx.append(row_max)
        grid = {"layers": layers, "positions": positions,
                "position_tokens": [ctx.encoder.position_token(p, example) if ctx.encoder.uses_positions
                                    else "(whole vector)" for p in positions],
                "component": component, "iia_mean": mean, "iia_max": mx, "selected_by": "dev",
                "chosen_site": _site_json(chosen, None)}
    site_entry = {"layer": site.layer, "component": site.component, "position": spec_pos,
                  **({"token_index": site.position} if isinstance(site.position, int) and site.position != spec_pos
                     else {})}
    if not train_seeds:
        return {"grid": grid, "site": site_entry}
    best_cell = seed_cells[best_seed_index(seed_results)]
    return {
        "intervention": describe(v.intervention, best_cell.interv, ctx.data(site, "test").hidden),
        "grid": grid,
        "site": site_entry,
        "seeds": seed_results,
        "iia": iia_summary(seed_results),
        "_best_cell": best_cell,
    }


def _site_json(site: Optional[Site], spec_pos: Any) -> Optional[dict]:
    if site is None:
        return None
    return {"layer": site.layer, "component": site.component, "position": spelled(site.position)}


def spelled(position: Any) -> Any:
    """A runner position as the spec writes it (``slot:z`` -> ``z``)."""
    if isinstance(position, str) and position.startswith(SLOT_PREFIX):
        return position[len(SLOT_PREFIX):]
    return position
