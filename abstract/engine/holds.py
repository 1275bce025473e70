"""The held sites of a hypothesis (path patching), resolved against the loaded network.

`check` has already read every `hold` line (``hypothesis/holds.py``); what needs the network
is checked here, each as an :class:`AlignmentError` at the option that asked for it: a layer
past the network's depth, a component or position this runner cannot hold, a held site that
is not after every *resolved* site (grids are known only now when a run drops its search).
The result is the list of :class:`~abstract.neural.sites.Site` that
:func:`abstract.neural.hold.holding` wraps the runner with, so training, measuring and the
controls all see the same held network.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..hypothesis.holds import HOLD_COMPONENTS_BY_KIND, HoldPlan, first_clash
from ..hypothesis.options import LM, TORCH
from ..hypothesis.plan import Plan
from ..neural.lm_runner import LMRunner
from ..neural.sites import Site
from .errors import AlignmentError
from .sites import VariableSites


def runner_kind(runner: Any) -> str:
    """LM for the runner of a Hugging Face decoder (token positions, sub-modules), else TORCH."""
    return LM if isinstance(getattr(runner, "inner", runner), LMRunner) else TORCH


def resolve_holds(plan: Plan, runner: Any, encoder: Any, sites: Mapping[str, VariableSites]) -> list[Site]:
    """Every held site of ``plan``, checked against ``runner`` and the resolved ``sites``."""
    out: list[Site] = []
    kind = runner_kind(runner)
    n_layers = int(runner.n_layers)
    if not plan.holds:
        return out
    every = [s for vs in sites.values() for s in _candidates(vs)]
    members = [(layer, s.component) for s in every for layer in (s.layers if s.heads else (int(s.layer or 0),))]
    for hp in plan.holds:
        _check(hp, kind, n_layers)
        clash = first_clash(hp, dict.fromkeys((layer % max(n_layers, 1), c) for layer, c in members))
        if clash is not None:
            raise AlignmentError(clash.message, clash.pos, hint=clash.hint)
        for layer, component, position in hp.sites():
            where = None if position is None or kind == TORCH else encoder.site_position(position)
            out.append(Site(layer=layer, component=component, position=where))
    return list(dict.fromkeys(out))


def _candidates(vs: VariableSites) -> list[Site]:
    grid = vs.grid_sites()  # every (layer, head, position) cell; a head group's members are in its layers
    return grid + ([vs.align_site] if vs.align_site is not None else [])


def _check(hp: HoldPlan, kind: str, n_layers: int) -> None:
    allowed = HOLD_COMPONENTS_BY_KIND[kind]
    for c in hp.components:
        if c not in allowed:
            what = "this language model" if kind == LM else "this network (a plain torch module: only layer outputs)"
            raise AlignmentError(f"component `{c}` cannot be held on {what}", hp.at("component"),
                                 hint=f"hold {' or '.join(allowed)}")
    if kind == TORCH and hp.positions:
        raise AlignmentError("this network has no token positions to hold", hp.at("position"),
                             hint="leave `position` out: a plain torch network's layer output is held whole")
    if n_layers == 0:
        raise AlignmentError("this network has no layers the engine can address, so nothing can be held", hp.pos,
                             hint="a torch network needs an nn.Sequential or a `layers` list of modules")
    for layer in hp.layers:
        if not 0 <= layer < n_layers:
            raise AlignmentError(f"hold layer {layer} is out of range: the network has {n_layers} layers",
                                 hp.at("layer"), hint=f"layers are numbered 0..{n_layers - 1}")
