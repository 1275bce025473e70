"""Train one intervention at one site on a frozen network, and evaluate it.

One path for one variable and for several: a :class:`SiteData` holds a source per
interchanged variable (one for ordinary pairs; one per variable, with the rows where each is
active, for the multi-source pairs of joint training), and :func:`train_intervention` /
:func:`predict` drive a single-source intervention or a :class:`MultiVariableDAS` alike.

Why it is cheap: the network never changes, so the source activations at the site and the
base forward up to the site are computed once per (site, split) (:func:`prepare_site`,
:func:`prepare_sites`) and every training step runs only the part of the network after the
site (``runner.run_from_site``). Loss: cross-entropy of the intervened network's class scores
(classes = the output domain) against the causal model's counterfactual label, plus whatever
the intervention adds (:meth:`~abstract.neural.interventions.InterventionModule.penalty`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import torch
from torch import nn

from ..hypothesis.plan import InterventionPlan, TrainPlan, VariablePlan
from ..language import ast
from ..neural.cache import BaseCache
from ..neural.featurizers import Configured, FeaturizerError, NeuronMask, PCASubspace, SAEFeatures
from ..neural.interventions import (Intervention, InterventionModule, MultiVariableDAS, intervention_class,
                                    random_rotation_control)
from ..neural.sites import Site
from .data import PairSet, minibatches
from .errors import AlignmentError
from .joint_data import JointPairSet
from .results import InterventionInfo

EVAL_BATCH = 1024
Pairs = Union[PairSet, JointPairSet]


def make_intervention(ip: InterventionPlan, hidden: int, seed: int, pos: Optional[ast.Pos] = None) -> Intervention:
    """A fresh intervention module of the planned kind (seeded initialisation); an
    :class:`AlignmentError` (at ``pos``, the align line) when it cannot fit the site."""
    cls = intervention_class(ip.kind)
    if issubclass(cls, Configured):  # sae, mask: built from their options (an SAE file is read here)
        return configure(cls, ip, hidden, seed, pos)
    problem = cls.misfit(hidden, dim=ip.dim, neurons=ip.neurons)
    if problem is not None:
        raise AlignmentError(problem, pos)
    return cls.build(hidden, dim=ip.dim, neurons=ip.neurons, seed=seed)


def configure(cls: type[Configured], ip: InterventionPlan, hidden: int, seed: int,
              pos: Optional[ast.Pos] = None) -> Intervention:
    """A featurizer built from its options; what the spec got wrong (a missing or misshapen SAE
    file, a feature out of range) is an :class:`AlignmentError` at the `via` clause."""
    where = ip.pos if ip.pos.line > 0 else pos
    spec_dir = Path(where.file).parent if where is not None and where.line > 0 else None
    try:
        return cls.configure(hidden, dict(ip.options), dim=ip.dim, seed=seed, spec_dir=spec_dir)
    except FeaturizerError as e:
        raise AlignmentError(str(e), where) from None


@dataclass(frozen=True)
class Unit:
    """What one trained intervention aligns: one variable (an intervention of its planned
    kind) or a joint group at one site (a :class:`MultiVariableDAS`, a block per variable)."""

    variables: tuple[VariablePlan, ...]
    joint: bool = False

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variables]

    @property
    def dims(self) -> dict[str, int]:
        return {v.name: int(v.intervention.dim or 1) for v in self.variables}

    @property
    def trainable(self) -> bool:
        return self.joint or intervention_class(self.variables[0].intervention.kind).trainable

    def build(self, hidden: int, seed: int) -> InterventionModule:
        if not self.joint:
            vp = self.variables[0]
            return make_intervention(vp.intervention, hidden, seed, vp.pos)
        need = sum(self.dims.values())
        if need > hidden:
            raise AlignmentError(f"joint blocks of {', '.join(self.names)} need {need} dims but the site has "
                                 f"{hidden}", self.variables[0].pos)
        return MultiVariableDAS(hidden, self.dims, seed=seed)

    def view(self, interv: InterventionModule, name: str) -> Intervention:
        """The (base, source) intervention that moves only ``name``."""
        if isinstance(interv, MultiVariableDAS):
            return interv.restricted(name)
        assert isinstance(interv, Intervention)
        return interv


def random_rotation(ip: InterventionPlan, hidden: int, seed: int) -> Intervention:
    """The `random_rotation` control: an untrained rotation with as many dims as the alignment."""
    k = min(ip.dim or max(1, hidden // 2), hidden)
    return random_rotation_control(hidden, k, seed=seed)


def describe(ip: InterventionPlan, interv: Intervention, hidden: int) -> InterventionInfo:
    """The intervention entry of a variable: the planned kind and dim, the site width, and
    (for subspace swaps) how it was built and how big the swapped subspace is. A learned size
    (boundless: the sum of the soft mask) is also shown as ``dim`` (kept for older readers)."""
    neurons = tuple(ip.neurons) if ip.kind == "neurons" else None
    if interv.parametrization is None:
        return InterventionInfo(ip.kind, ip.dim, hidden, neurons)
    eff = interv.effective_dim
    if isinstance(eff, float):
        eff = round(eff, 2)
    dim = eff if ip.dim is None else ip.dim
    return InterventionInfo(ip.kind, dim, hidden, neurons, interv.parametrization, eff, **featurizer_facts(interv))


def featurizer_facts(interv: Intervention) -> dict[str, Any]:
    """What the report says about a featurizer beyond its size: a mask's open units, an SAE's
    interchanged features, the share of variance a PCA basis explains."""
    if isinstance(interv, NeuronMask):
        return {"open_units": interv.open_units}
    if isinstance(interv, SAEFeatures):
        return {"features": interv.features}
    if isinstance(interv, PCASubspace):
        return {"explained_variance": round(float(interv.explained), 4)}
    return {}


class Unchanged(InterventionModule):
    """Leaves the site as the base has it: what doing nothing scores on the same pairs (the
    baseline every figure is reported and judged beside)."""

    def forward(self, base: torch.Tensor, source: Any) -> torch.Tensor:
        return base


@dataclass
class SiteData:
    """Everything fixed about one split at one site: the base prefix cache and the source
    activations, one per interchanged variable. Multi-source pairs (joint training) also say
    per variable in which rows it is interchanged (``active``; elsewhere it takes the base)."""

    site: Site
    cache: BaseCache
    sources: dict[str, torch.Tensor]  # variable -> [N, hidden]
    label: torch.Tensor
    logit_pos: Optional[torch.Tensor]
    active: Optional[dict[str, torch.Tensor]] = None  # variable -> bool[N], multi-source only

    @property
    def source(self) -> torch.Tensor:
        """The source activations of single-source pairs."""
        if self.active is not None or len(self.sources) != 1:
            raise TypeError("multi-source site data has one source per variable: use .sources")
        return next(iter(self.sources.values()))

    @property
    def hidden(self) -> int:
        return int(next(iter(self.sources.values())).shape[1])

    @property
    def device(self) -> torch.device:
        return self.label.device

    def __len__(self) -> int:
        return int(self.label.shape[0])


def prepare_site(runner, site: Site, pairs: Pairs) -> SiteData:
    """One forward of the bases (kept as a prefix cache) and one of the sources (activations)."""
    return prepare_sites(runner, [site], pairs)[0]


def prepare_sites(runner, sites: Sequence[Site], pairs: Pairs) -> list[SiteData]:
    """SiteData for several sites from one base forward and one forward per source set; sites
    at one layer share the prefix tensors (one copy in memory, not one per position)."""
    caches = runner.prepare_many(pairs.base_x, sites)
    if isinstance(pairs, JointPairSet):
        source_x, active = dict(pairs.sources_x), dict(pairs.active)
    else:
        source_x, active = {pairs.source_vars[0]: pairs.source_x}, None
    sources = {v: runner.collect_many(x, sites) for v, x in source_x.items()}
    out = []
    for s in sites:
        dev = caches[s].base_act.device
        lp = pairs.logit_pos.to(dev) if pairs.logit_pos is not None else None
        act = {v: a.to(dev) for v, a in active.items()} if active is not None else None
        out.append(SiteData(s, caches[s], {v: by_site[s] for v, by_site in sources.items()}, pairs.label.to(dev),
                            lp, act))
    return out


def _logits(runner, encoder, sd: SiteData, interv: InterventionModule, idx: torch.Tensor) -> torch.Tensor:
    return encoder.class_logits(site_outputs(runner, sd, interv, idx))


def site_outputs(runner, sd: SiteData, interv: InterventionModule, idx: torch.Tensor) -> Any:
    """The network's raw outputs on the pairs ``idx`` with the site set by ``interv`` (the
    encoder reads class scores or log-probabilities from them)."""
    i = idx.to(sd.device)
    cache = sd.cache.select(i)
    lp = sd.logit_pos[i] if sd.logit_pos is not None else None
    if sd.active is None:
        src = sd.source[i]

        def new(b: torch.Tensor) -> torch.Tensor:
            return interv(b, src)
    else:
        srcs = {v: s[i] for v, s in sd.sources.items()}
        act = {v: a[i].unsqueeze(-1) for v, a in sd.active.items()}

        def new(b: torch.Tensor) -> torch.Tensor:
            # a variable not interchanged in a row takes the base as source: exactly no change
            return interv(b, {v: torch.where(act[v], s.to(b.dtype), b) for v, s in srcs.items()})

    return runner.run_from_site(cache, new, logit_positions=lp)


def fit(params: Sequence[torch.Tensor], n: int, loss_of: Callable[[torch.Tensor, int], torch.Tensor], tp: TrainPlan,
        seed: int, on_step: Optional[Callable[[float], None]] = None) -> list[float]:
    """Adam over ``tp.epochs`` seeded shuffles of ``range(n)``; ``loss_of(batch_idx, step)``.

    Shared by separate, joint and stacked training so all see the same optimisation recipe."""
    opt = torch.optim.Adam(params, lr=tp.lr)
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    for _ in range(tp.epochs):
        for idx in minibatches(n, tp.batch, gen):
            loss = loss_of(idx, len(losses))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(losses[-1])
    return losses


def train_intervention(runner, encoder, sd: SiteData, interv: InterventionModule, tp: TrainPlan, seed: int,
                       on_step: Optional[Callable[[float], None]] = None) -> list[float]:
    """Adam on the intervention's parameters; returns the loss of every step."""
    if interv.fits_data:  # a closed-form basis (pca): fitted on the training split's base activations
        try:
            interv.fit_data(sd.cache.base_act)
        except FeaturizerError as e:
            raise AlignmentError(f"{e} at {sd.site.label}", hint="raise `train samples`") from None
    params = [p for p in interv.parameters() if p.requires_grad]
    if not params:
        return []
    interv.to(sd.device).train()
    n = len(sd)
    steps = tp.epochs * -(-n // tp.batch)
    loss_fn = nn.CrossEntropyLoss()

    def loss_of(idx: torch.Tensor, step: int) -> torch.Tensor:
        interv.schedule(step, steps)
        loss = loss_fn(_logits(runner, encoder, sd, interv, idx), sd.label[idx.to(sd.device)])
        extra = interv.penalty()
        return loss if extra is None else loss + extra

    losses = fit(params, n, loss_of, tp, seed, on_step)
    interv.eval()
    return losses


@torch.no_grad()
def predict(runner, encoder, sd: SiteData, interv: InterventionModule, batch: int = EVAL_BATCH) -> torch.Tensor:
    """Predicted class of the intervened network for every pair (cached path)."""
    return evaluate(runner, encoder, sd, interv, batch)[0]


@torch.no_grad()
def evaluate(runner, encoder, sd: SiteData, interv: InterventionModule,
             batch: int = EVAL_BATCH) -> tuple[torch.Tensor, float]:
    """Predicted classes and the mean cross-entropy against the counterfactual labels, in one
    pass (the dev loss of a seed's diagnostics; ``nan`` when there are no pairs)."""
    interv.to(sd.device).eval()
    if getattr(encoder, "multi_token", False):  # every pair runs as one row per class
        batch = max(1, batch // len(encoder.classes))
    preds, total = [], 0.0
    for start in range(0, len(sd), batch):
        idx = torch.arange(start, min(start + batch, len(sd)))
        logits = _logits(runner, encoder, sd, interv, idx)
        preds.append(logits.argmax(-1))
        total += float(nn.functional.cross_entropy(logits.float(), sd.label[idx.to(sd.device)], reduction="sum"))
    if not preds:
        return torch.zeros(0, dtype=torch.long), float("nan")
    return torch.cat(preds), total / len(sd)


def count_correct(pred: torch.Tensor, label: torch.Tensor, mask: Optional[torch.Tensor] = None) -> tuple[int, int]:
    """(correct, n), optionally only over rows where ``mask`` is true."""
    hit = pred.to(label.device) == label
    if mask is not None:
        hit = hit[mask.to(hit.device)]
    return int(hit.sum()), int(hit.numel())


@torch.no_grad()
def predict_uncached(runner, encoder, pairs: PairSet, site: Site, interv: Intervention) -> torch.Tensor:
    """Reference path: whole-model forwards with a replacing hook (tests compare the two)."""
    source = runner.collect(pairs.source_x, site)
    out = runner.run_with_hook(pairs.base_x, site, lambda b: interv(b, source.to(b.device)),
                               logit_positions=pairs.logit_pos)
    return encoder.class_logits(out).argmax(-1)
