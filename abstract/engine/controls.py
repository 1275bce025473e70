"""The "illusion" controls, run with the same data and procedure as the real alignment.

* ``random_network``: the same architecture with fresh random weights (an untrained network),
  the intervention trained exactly as for the real network (first seed only) at the same
  site. A real alignment must beat it: a rotation can find *some* subspace in anything.
* ``random_rotation``: an untrained, seeded random rotation with as many dims as the
  alignment, at the same site of the real network. It shows how much of the IIA a subspace
  swap gets without any search.
"""
from __future__ import annotations

from typing import Any

from ..neural.runner import make_runner
from .data import PairSet
from .networks import LoadedNetwork, reinitialized
from ..hypothesis.plan import TRAINED, InterventionPlan, TrainPlan
from .train import (count_correct, make_intervention, predict, prepare_site, random_rotation,
                    train_intervention)


def random_network_control(net: LoadedNetwork, encoder, site, train: PairSet, test: PairSet,
                           ip: InterventionPlan, tp: TrainPlan, seed: int, on_step=None) -> dict[str, Any]:
    fresh = reinitialized(net, seed=10_000 + seed)
    runner = make_runner(fresh)
    sd_test = prepare_site(runner, site, test)
    interv = make_intervention(ip, sd_test.hidden, seed)
    if ip.kind in TRAINED:
        train_intervention(runner, encoder, prepare_site(runner, site, train), interv, tp, seed, on_step)
    correct, n = count_correct(predict(runner, encoder, sd_test, interv), sd_test.label)
    return {"iia": round(correct / n, 4) if n else 0.0, "correct": correct, "n": n}


def random_rotation_result(runner, encoder, sd_test, ip: InterventionPlan, seed: int) -> dict[str, Any]:
    interv = random_rotation(ip, sd_test.hidden, seed=20_000 + seed)
    correct, n = count_correct(predict(runner, encoder, sd_test, interv), sd_test.label)
    return {"iia": round(correct / n, 4) if n else 0.0, "correct": correct, "n": n}
