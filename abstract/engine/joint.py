"""Joint (MDAS-style) alignment: several variables at one site, one shared basis.

Why: separately trained subspaces may overlap, so "swap A's subspace" can also move B. A
:class:`~abstract.neural.interventions.MultiVariableDAS` gives each variable a disjoint
block of one orthonormal basis and is trained on multi-source examples (see
``joint_data.py``), so each block must carry exactly its variable's effect. Training and
scoring go through the same path as a single variable (``train.py``): only the unit trained
(:class:`~abstract.engine.train.Unit` with ``joint``) and the pairs differ.

Measured per seed, on held-out pairs:
* each variable's IIA on its own *single-variable* test/dev pairs, intervening only on its
  block (comparable with the separate path); the judged seed is chosen per variable on dev;
* the group's joint IIA on pairs interchanging every variable from its own source
  (``multi.joint``, seed chosen on the joint dev split), with each seed's diagnostics (the
  shared loss curve, the joint dev loss, IIA on the joint training pairs; ``diagnostics.py``).
cause/isolate then use each variable's block of its chosen seed.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..artifacts import fit_with
from ..hypothesis.plan import Plan, VariablePlan
from ..neural.interventions import MultiVariableDAS, intervention_class
from ..neural.sites import Site
from .diagnostics import Diagnostics
from .joint_data import JointPairSet
from .results import Count, JointResult, SeedScore
from .search import Cell, VariableContext
from .sites import VariableSites, site_ref
from .train import Unit, count_correct, evaluate, predict, prepare_site, train_intervention


@dataclass(frozen=True)
class JointGroup:
    """Variables aligned jointly at one site; ``key`` is their names joined by commas."""

    site: Site
    variables: tuple[VariablePlan, ...]

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variables]

    @property
    def key(self) -> str:
        return ",".join(self.names)

    @property
    def unit(self) -> Unit:
        return Unit(self.variables, joint=True)


def joint_groups(plan: Plan, sites: dict[str, VariableSites]) -> list[JointGroup]:
    """With ``train joint true``: groups of >= 2 variables whose kinds can share a basis and
    whose align line names the same site (resolved, so `last` and `-1` agree). Empty otherwise."""
    if not plan.train.joint:
        return []
    by_site: dict[Site, list[tuple[Site, VariablePlan]]] = {}
    for vp in plan.variables:
        site = sites[vp.name].align_site
        if site is not None and intervention_class(vp.intervention.kind).shares_basis:
            by_site.setdefault(_same_token(site), []).append((site, vp))
    return [JointGroup(members[0][0], tuple(vp for _, vp in members))
            for members in by_site.values() if len(members) >= 2]


def _same_token(site: Site) -> Site:
    """``-1`` is the last real token and ``0`` the first, in every prompt."""
    named = {-1: "last", 0: "first"}
    if isinstance(site.position, int) and site.position in named:
        return dataclasses.replace(site, position=named[site.position])
    return site


@dataclass
class GroupOutcome:
    """Per variable, its block's cell for every seed and its block of the shared basis; the
    group's own joint scores."""

    cells: dict[str, list[Cell]]
    blocks: dict[str, tuple[int, int]]
    joint: JointResult


def train_group(group: JointGroup, runner, encoder, pairs: dict[str, JointPairSet],
                contexts: dict[str, VariableContext], plan: Plan,
                tick: Callable[[str], None] = lambda msg: None, store: Optional[Any] = None) -> GroupOutcome:
    """Train one MultiVariableDAS per seed on the group's multi-source pairs; score every
    variable's block on its own pairs and the whole on the joint dev/test pairs."""
    site, unit = group.site, group.unit
    sd = {split: prepare_site(runner, site, pairs[split]) for split in ("train", "dev", "test")}
    cells: dict[str, list[Cell]] = {v: [] for v in group.names}
    joint_seeds: list[SeedScore] = []
    blocks: dict[str, tuple[int, int]] = {}
    for seed in plan.train.seeds:
        mdas = unit.build(sd["test"].hidden, seed)
        assert isinstance(mdas, MultiVariableDAS)
        blocks = {v: (sl.start, sl.stop) for v, sl in mdas.slices.items()}
        losses = fit_with(store, group.key, group.names, site, seed, mdas,
                          functools.partial(train_intervention, runner, encoder, sd["train"], mdas, plan.train,
                                            seed),
                          hidden=sd["test"].hidden, blocks=blocks)
        for name in group.names:
            cells[name].append(contexts[name].score(site, seed, unit.view(mdas, name), losses))
        dev_pred, dev_loss = evaluate(runner, encoder, sd["dev"], mdas)
        jdev = Count(*count_correct(dev_pred, sd["dev"].label))
        jtest = Count(*count_correct(predict(runner, encoder, sd["test"], mdas), sd["test"].label))
        jtrain = Count(*count_correct(predict(runner, encoder, sd["train"], mdas), sd["train"].label))
        joint_seeds.append(SeedScore(seed, jtest, jdev, Diagnostics(tuple(losses), dev_loss, jtrain.value,
                                                                          plan.train.lr)))
        tick(f"{group.key} {site.label} seed {seed}: joint dev {jdev.value:.3f}")
    return GroupOutcome(cells, blocks, JointResult(joint_seeds, site_ref(site, spelling=True)))
