"""The "illusion" controls, run with the same data and procedure as the real alignment.

* ``random_network``: the very module the builder returned, its weights re-initialised (an
  untrained network of the same shape, structural changes kept), the intervention trained
  exactly as for the real network (first seed only) at the same site -- one variable or a
  joint group alike. A real alignment must beat it: a rotation can find *some* subspace in
  anything.
* ``random_rotation``: an untrained, seeded random rotation with as many dims as the
  alignment, at the same site of the real network. It shows how much of the IIA a subspace
  swap gets without any search.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import torch

from ..hypothesis.plan import InterventionPlan, TrainPlan
from ..neural.hold import holding
from ..neural.runner import make_runner
from ..neural.sites import Site
from .data import PairSet
from .networks import LoadedNetwork, reinitialized
from .results import ControlResult, Count
from .train import Pairs, SiteData, Unit, count_correct, predict, prepare_site, random_rotation, train_intervention


def random_network_control(net: LoadedNetwork, encoder, unit: Unit, site: Site, train: Pairs,
                           tests: Mapping[str, PairSet], tp: TrainPlan, seed: int,
                           network_seed: int, holds: Sequence[Site] = ()) -> dict[str, ControlResult]:
    """Each of ``unit``'s variables scored on its ``tests`` pairs through the unit's
    intervention trained (seed ``seed``) on the network re-initialised with ``network_seed``
    (with the hypothesis's ``holds`` held at base there too)."""
    runner = holding(make_runner(reinitialized(net, seed=network_seed)), holds)
    sd_tests = {name: prepare_site(runner, site, tests[name]) for name in unit.names}
    interv = unit.build(next(iter(sd_tests.values())).hidden, seed)
    if unit.trainable:
        train_intervention(runner, encoder, prepare_site(runner, site, train), interv, tp, seed)
    out = {}
    for name, sd in sd_tests.items():
        pred = predict(runner, encoder, sd, unit.view(interv, name))
        out[name] = ControlResult(*count_correct(pred, sd.label),
                                  cause=Count(*count_correct(pred, sd.label, tests[name].changed)))
    return out


def random_rotation_result(runner, encoder, sd_test: SiteData, ip: InterventionPlan, seed: int,
                           changed: Optional[torch.Tensor] = None) -> ControlResult:
    """The untrained rotation's IIA on ``sd_test``, and its cause score on the rows ``changed``
    marks (the pairs whose interchange changes the label) when given."""
    interv = random_rotation(ip, sd_test.hidden, seed=seed)
    pred = predict(runner, encoder, sd_test, interv)
    cause = Count(*count_correct(pred, sd_test.label, changed)) if changed is not None else None
    return ControlResult(*count_correct(pred, sd_test.label), cause=cause)
