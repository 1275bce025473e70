"""The "illusion" controls, run with the same data and procedure as the real alignment.

* ``random_network``: the very module the builder returned, its weights re-initialised (an
  untrained network of the same shape, structural changes kept), the intervention trained
  exactly as for the real network (first seed only) at the same site -- one variable or a
  joint group alike. A real alignment must beat it: a rotation can find *some* subspace in
  anything.
* ``random_rotation``: an untrained, seeded random rotation with as many dims as the
  alignment, at the same site of the real network. It shows how much of the IIA a subspace
  swap gets without any search.
* ``noise`` (causal-tracing style): the site replaced by its base value plus Gaussian noise,
  per dimension ``NOISE_SCALE`` (3) times that dimension's standard deviation over the base
  activations of the test pairs, drawn from the run's ``control/noise`` seed stream. It shows
  what destroying (rather than interchanging) the site does: an alignment's effect sizes should
  stand out from it, and its IIA is what a corrupted site scores on the counterfactual labels.

Every control also reports its effect sizes (``effects.py``) on the same test pairs.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import torch

from ..artifacts import fit_with
from ..hypothesis.plan import InterventionPlan, TrainPlan
from ..neural.hold import holding
from ..neural.runner import make_runner
from ..neural.sites import Site
from .data import PairSet
from .networks import LoadedNetwork, reinitialized
from .effects import NewFor, class_scores, figures, intervened, scoring, source_log_probs
from .results import ControlResult, Count
from .train import Pairs, SiteData, Unit, count_correct, predict, prepare_site, random_rotation, train_intervention


NOISE_SCALE = 3.0  # noise std per dimension, in units of the dimension's spread over base activations
Source = tuple[torch.Tensor, torch.Tensor]  # the source run's class log-probs, the sources' own labels


def random_network_control(net: LoadedNetwork, encoder, unit: Unit, site: Site, train: Pairs,
                           tests: Mapping[str, PairSet], tp: TrainPlan, seed: int,
                           network_seed: int, source_labels: Optional[Mapping[str, torch.Tensor]] = None,
                           wrap=None, store: Optional[Any] = None,
                           holds: Sequence[Site] = ()) -> dict[str, ControlResult]:
    """Each of ``unit``'s variables scored on its ``tests`` pairs through the unit's
    intervention trained (seed ``seed``) on the network re-initialised with ``network_seed``
    (with the hypothesis's ``holds`` held at base there too); with ``source_labels`` (per
    variable) also its effect sizes (KL against the re-initialised network's own source run).
    ``wrap``: what the run does to a fresh runner (multi-token answers are scored through a
    wrapper, ``engine.answers``)."""
    runner = make_runner(reinitialized(net, seed=network_seed))
    if wrap is not None:
        runner = wrap(runner)
    runner = holding(runner, holds)
    sd_tests = {name: prepare_site(runner, site, tests[name]) for name in unit.names}
    interv = unit.build(next(iter(sd_tests.values())).hidden, seed)
    if unit.trainable:
        fit_with(store, "random_network:" + ",".join(unit.names), unit.names, site, seed, interv,
                 lambda: train_intervention(runner, encoder, prepare_site(runner, site, train), interv, tp, seed),
                 None if unit.joint else unit.variables[0].intervention, next(iter(sd_tests.values())).hidden)
    out = {}
    for name, sd in sd_tests.items():
        pred = predict(runner, encoder, sd, unit.view(interv, name))
        effects = None
        if source_labels is not None and name in source_labels:
            src = (source_log_probs(runner, encoder, tests[name]), source_labels[name])
            effects = _effects(runner, encoder, sd, intervened(sd, unit.view(interv, name)), tests[name], src)
        out[name] = ControlResult(*count_correct(pred, sd.label),
                                  cause=Count(*count_correct(pred, sd.label, tests[name].changed)), effects=effects)
    return out


def _effects(runner, encoder, sd: SiteData, new_for: NewFor, pairs: PairSet, src: Optional[Source]):
    s, lp = class_scores(runner, encoder, sd, new_for)
    src_lp, src_label = src if src is not None else (None, None)
    return figures(s, lp, pairs.label, pairs.base_label, src_lp, src_label, scored=scoring(encoder))


def random_rotation_result(runner, encoder, sd_test: SiteData, ip: InterventionPlan, seed: int,
                           changed: Optional[torch.Tensor] = None, pairs: Optional[PairSet] = None,
                           src: Optional[Source] = None) -> ControlResult:
    """The untrained rotation's IIA on ``sd_test``, and its cause score on the rows ``changed``
    marks (the pairs whose interchange changes the label) when given; its effect sizes when the
    test ``pairs`` are given (``src``: the source run, for KL)."""
    interv = random_rotation(ip, sd_test.hidden, seed=seed)
    pred = predict(runner, encoder, sd_test, interv)
    cause = Count(*count_correct(pred, sd_test.label, changed)) if changed is not None else None
    effects = _effects(runner, encoder, sd_test, intervened(sd_test, interv), pairs, src) if pairs is not None else None
    return ControlResult(*count_correct(pred, sd_test.label), cause=cause, effects=effects)


def site_noise(base_act: torch.Tensor, seed: int, scale: float = NOISE_SCALE) -> torch.Tensor:
    """Gaussian noise ``[N, hidden]`` (float32, CPU) with per-dimension std ``scale`` times that
    dimension's std over ``base_act``'s rows (0 for fewer than two rows), from ``seed``."""
    act = base_act.detach().float().cpu()
    spread = act.std(dim=0) if act.shape[0] > 1 else torch.zeros(act.shape[1:])
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(act.shape, generator=gen) * spread * scale


def noise_result(runner, encoder, sd_test: SiteData, pairs: PairSet, seed: int, src: Optional[Source] = None,
                 scale: float = NOISE_SCALE) -> ControlResult:
    """The `noise` control: the site set to its base value plus :func:`site_noise`, scored on the
    test pairs like an alignment (IIA and cause against the counterfactual labels, effect sizes)."""
    noise = site_noise(sd_test.cache.base_act, seed, scale)

    def new_for(i: torch.Tensor):
        rows = noise[i.cpu()]
        return lambda b: b + rows.to(b.device, b.dtype)

    scores, lp = class_scores(runner, encoder, sd_test, new_for)
    pred = scores.argmax(-1)
    src_lp, src_label = src if src is not None else (None, None)
    effects = figures(scores, lp, pairs.label, pairs.base_label, src_lp, src_label, scored=scoring(encoder))
    return ControlResult(*count_correct(pred, sd_test.label),
                         cause=Count(*count_correct(pred, sd_test.label, pairs.changed)), effects=effects)


CONTROL_NAMES: Sequence[str] = ("random_network", "random_rotation", "noise")
