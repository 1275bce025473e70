"""Joint (MDAS-style) alignment: several variables at one site, one shared basis.

Why: separately trained subspaces may overlap, so "swap A's subspace" can also move B. A
:class:`~abstract.neural.interventions.MultiVariableDAS` gives each variable a disjoint
block of one orthonormal basis and is trained on multi-source examples (see
``joint_data.py``), so each block must carry exactly its variable's effect.

Measured per seed, on held-out pairs:
* each variable's IIA on its own *single-variable* test/dev pairs, intervening only on its
  block (comparable with the separate path); the judged seed is chosen per variable on dev;
* the group's joint IIA on pairs interchanging every variable from its own source
  (``multi.joint``, seed chosen on the joint dev split).
cause/isolate then use each variable's block of its chosen seed (``align._multi``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import nn

from ..neural.cache import BaseCache
from ..neural.interventions import MultiVariableDAS
from ..neural.runner import make_runner
from ..neural.sites import Site
from .joint_data import JointPairSet
from .metrics import best_seed_index, iia_summary, metric_entry, rate, seed_entry
from .networks import reinitialized
from ..hypothesis.plan import Plan, TrainPlan, VariablePlan
from .search import Cell, VariableContext, spelled
from .train import EVAL_BATCH, count_correct, fit, predict, prepare_site

JOINT_KINDS = ("das", "lowrank")  # rotation subspaces: what MultiVariableDAS can share


@dataclass
class JointSiteData:
    """A joint split at one site: base prefix cache, per-variable source activations and masks."""

    site: Site
    cache: BaseCache
    sources: dict[str, torch.Tensor]  # variable -> [N, hidden]
    active: dict[str, torch.Tensor]  # variable -> bool[N]
    label: torch.Tensor
    logit_pos: Optional[torch.Tensor]

    def __len__(self) -> int:
        return int(self.label.shape[0])


@dataclass
class JointGroup:
    """Variables aligned jointly at one site; ``key`` is their names joined by commas."""

    site: Site
    variables: list[VariablePlan]
    contexts: dict[str, VariableContext]

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variables]

    @property
    def key(self) -> str:
        return ",".join(self.names)

    @property
    def dims(self) -> dict[str, int]:
        return {v.name: int(v.intervention.dim or 1) for v in self.variables}


def joint_groups(plan: Plan, contexts: dict[str, VariableContext],
                 site_of: Callable[[VariablePlan], Site]) -> list[JointGroup]:
    """With ``train joint true``: groups of >= 2 das/lowrank variables whose align line names the
    same site (resolved, so `last` and `-1` agree). Empty otherwise."""
    if not plan.train.joint:
        return []
    by_site: dict[Site, list[VariablePlan]] = {}
    for vp in plan.variables:
        if vp.layer is not None and vp.intervention.kind in JOINT_KINDS:
            by_site.setdefault(site_of(vp), []).append(vp)
    return [JointGroup(site, vps, {v.name: contexts[v.name] for v in vps})
            for site, vps in by_site.items() if len(vps) >= 2]


def prepare_joint(runner, site: Site, pairs: JointPairSet) -> JointSiteData:
    """One forward of the bases (prefix cache) and one of each variable's sources."""
    cache = runner.prepare(pairs.base_x, site)
    dev = cache.base_act.device
    sources = {v: runner.collect(x, site) for v, x in pairs.sources_x.items()}
    active = {v: a.to(dev) for v, a in pairs.active.items()}
    lp = pairs.logit_pos.to(dev) if pairs.logit_pos is not None else None
    return JointSiteData(site, cache, sources, active, pairs.label.to(dev), lp)


def _joint_logits(runner, encoder, sd: JointSiteData, mdas: MultiVariableDAS,
                  idx: Optional[torch.Tensor]) -> torch.Tensor:
    if idx is None:
        idx = torch.arange(len(sd))
    i = idx.to(sd.label.device)
    cache = sd.cache.select(i)
    srcs = {v: s[i] for v, s in sd.sources.items()}
    act = {v: a[i].unsqueeze(-1) for v, a in sd.active.items()}
    lp = sd.logit_pos[i] if sd.logit_pos is not None else None

    def new(b: torch.Tensor) -> torch.Tensor:
        # inactive variables take the base as source: exactly no change to their block
        return mdas(b, {v: torch.where(act[v], s.to(b.dtype), b) for v, s in srcs.items()})

    return encoder.class_logits(runner.run_from_site(cache, new, logit_positions=lp))


def train_joint(runner, encoder, sd: JointSiteData, mdas: MultiVariableDAS, tp: TrainPlan, seed: int,
                on_step: Optional[Callable[[float], None]] = None) -> list[float]:
    """Cross-entropy against the multi-source counterfactual labels, same recipe as ``train.fit``."""
    mdas.to(sd.label.device).train()
    loss_fn = nn.CrossEntropyLoss()
    losses = fit([p for p in mdas.parameters() if p.requires_grad], len(sd),
                 lambda idx, step: loss_fn(_joint_logits(runner, encoder, sd, mdas, idx),
                                           sd.label[idx.to(sd.label.device)]), tp, seed, on_step)
    mdas.eval()
    return losses


@torch.no_grad()
def predict_joint(runner, encoder, sd: JointSiteData, mdas: MultiVariableDAS) -> torch.Tensor:
    mdas.to(sd.label.device).eval()
    preds = [_joint_logits(runner, encoder, sd, mdas, torch.arange(s, min(s + EVAL_BATCH, len(sd)))).argmax(-1)
             for s in range(0, len(sd), EVAL_BATCH)]
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)


def run_group(group: JointGroup, runner, encoder, joint: dict[str, JointPairSet], plan: Plan,
              tick: Callable[[str], None] = lambda msg: None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train one MultiVariableDAS per seed; return (per-variable entries, the ``multi.joint`` entry).

    Variable entries carry ``_best_cell`` (the variable's block of its dev-chosen seed)."""
    site = group.site
    sd = {split: prepare_joint(runner, site, joint[split]) for split in ("train", "dev", "test")}
    hidden = int(sd["test"].cache.base_act.shape[-1])
    if sum(group.dims.values()) > hidden:
        raise ValueError(f"joint blocks need {sum(group.dims.values())} dims but the site has {hidden}")
    per_var: dict[str, list] = {v: [] for v in group.names}
    joint_seeds, modules = [], {}
    for seed in plan.train.seeds:
        mdas = MultiVariableDAS(hidden, group.dims, seed=seed)
        losses = train_joint(runner, encoder, sd["train"], mdas, plan.train, seed)
        modules[seed] = mdas
        for name, ctx in group.contexts.items():
            block = mdas.restricted(name)
            dev = count_correct(predict(runner, encoder, ctx.data(site, "dev"), block), ctx.data(site, "dev").label)
            test_pred = predict(runner, encoder, ctx.data(site, "test"), block)
            test = count_correct(test_pred, ctx.data(site, "test").label)
            per_var[name].append(Cell(site, seed, block, dev, test, losses, test_pred))
        jdev = count_correct(predict_joint(runner, encoder, sd["dev"], mdas), sd["dev"].label)
        jtest = count_correct(predict_joint(runner, encoder, sd["test"], mdas), sd["test"].label)
        joint_seeds.append(seed_entry(seed, *jtest, dev=jdev))
        tick(f"{group.key} {site.label} seed {seed}: joint dev {rate(*jdev):.3f}")
    entries = {}
    for vp in group.variables:
        cells = per_var[vp.name]
        seeds = [seed_entry(c.seed, *c.test, dev=c.dev) for c in cells]
        best = cells[best_seed_index(seeds)]
        sl = modules[best.seed].slices[vp.name]
        entries[vp.name] = {
            "intervention": {**vp.intervention.to_json(), "hidden": hidden, "parametrization": "multi_variable",
                             "effective_dim": sl.stop - sl.start},
            "seeds": seeds, "iia": iia_summary(seeds),
            "joint": {"group": group.names, "block": [sl.start, sl.stop], "training": "multi_source"},
            "_best_cell": best,
        }
    summary = iia_summary(joint_seeds)
    best_joint = joint_seeds[best_seed_index(joint_seeds)]
    multi = {**metric_entry(best_joint["correct"], best_joint["n"]), "mean": summary["mean"],
             "best_seed": summary["best_seed"], "selected_by": "dev", "seeds": joint_seeds,
             "site": {"layer": site.layer, "component": site.component, "position": spelled(site.position)}}
    return entries, multi


def random_network_joint(net, encoder, group: JointGroup, train: JointPairSet, tp: TrainPlan,
                         seed: int) -> dict[str, dict[str, Any]]:
    """The random_network control for a group: the same joint training on an untrained copy."""
    fresh_runner = make_runner(reinitialized(net, seed=10_000 + seed))
    sd_train = prepare_joint(fresh_runner, group.site, train)
    hidden = int(sd_train.cache.base_act.shape[-1])
    mdas = MultiVariableDAS(hidden, group.dims, seed=seed)
    train_joint(fresh_runner, encoder, sd_train, mdas, tp, seed)
    out = {}
    for name, ctx in group.contexts.items():
        sd_test = prepare_site(fresh_runner, group.site, ctx.splits["test"])
        correct, n = count_correct(predict(fresh_runner, encoder, sd_test, mdas.restricted(name)), sd_test.label)
        out[name] = {"iia": rate(correct, n), "correct": correct, "n": n}
    return out
