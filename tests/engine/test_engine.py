"""Engine on plain torch networks: plans, data, training, IIA by hand, caching, controls."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from abstract.engine.align import align_hypothesis
from abstract.engine.data import encode_pairs, make_splits
from abstract.engine.encoders import make_encoder
from abstract.engine.networks import load_network
from abstract.hypothesis.plan import InterventionPlan, TrainPlan, build_plan
from abstract.engine.train import (count_correct, make_intervention, predict, predict_uncached, prepare_site,
                                   train_intervention)
from abstract.language import compile_text, load_spec
from abstract.neural.runner import make_runner
from abstract.neural.sites import Site

HERE = Path(__file__).parent
ROOT = HERE.parent.parent

COPY = """
model Copy {
    input a, b : 0..1
    output y = a
}
network hand = torch "fixtures/hand_nets.py:copy_first"
network sharp = torch "fixtures/hand_nets.py:copy_first" { scale 6.0 }
network rnd = torch "fixtures/hand_nets.py:random_mlp" { width 12, depth 2 }
"""


def spec_of(body: str):
    return compile_text(COPY + body, str(HERE / "inline.causal"))


def test_plan_reads_options_and_defaults():
    spec = spec_of("""
hypothesis h : Copy ~ hand {
    align a to layer 0 via das(dim=2)
    search layer 0..0
    train samples 100, epochs 2, batch 10, lr 0.01, seeds 3
    data test 50
}""")
    plan = build_plan(spec.hypotheses[0], seed=5)
    assert plan.train.seeds == (5, 6, 7) and plan.train.lr == 0.01
    assert plan.data.test == 50 and plan.data.dev == 200
    assert plan.variables[0].intervention == InterventionPlan("das", 2)
    assert plan.search.layers == (0,)


# plan errors (unknown options, bad values, bad interventions): tests/hypothesis/test_plan.py


def test_iia_by_hand_with_neuron_interchange():
    """CopyFirst outputs a. Swapping neurons {0,1} (a's one-hot) moves a: IIA 1. Swapping {2,3}
    (b's) leaves the answer at the base's a: right exactly when base a == source a."""
    spec = spec_of("""
hypothesis on_a : Copy ~ hand {
    align a to layer 0 via neurons(0, 1)
    train samples 20, seeds 1
    data test 64, dev 16
}
hypothesis on_b : Copy ~ hand {
    align a to layer 0 via neurons(2, 3)
    train samples 20, seeds 1
    data test 64, dev 16
}""")
    good = align_hypothesis(spec, "on_a", progress=False, device="cpu")["variables"]["a"]
    bad = align_hypothesis(spec, "on_b", progress=False, device="cpu")["variables"]["a"]
    assert good["iia"]["correct"] == good["iia"]["n"] == 64
    test = make_splits(spec.models["Copy"], "a", 20, 16, 64, seed=0)["test"]
    by_hand = sum(ex.base["a"] == ex.sources["a"]["a"] for ex in test)
    assert bad["iia"]["correct"] == by_hand and bad["iia"]["n"] == 64
    assert good["intervention"] == {"kind": "neurons", "dim": 2, "neurons": [0, 1], "hidden": 4}


def _mlp_setup(samples=256, network="rnd"):
    spec = spec_of("")
    model = spec.models["Copy"]
    net = load_network(spec.networks[network], spec.path)
    enc = make_encoder(net, model)
    runner = make_runner(net.module)
    splits = {k: encode_pairs(v, "a", enc) for k, v in make_splits(model, "a", samples, 64, 64, 0).items()
              if k != "disjoint"}
    return net, enc, runner, splits


def test_training_decreases_loss():
    """DAS on the trained hierarchical-equality MLP (layer 1, left): the loss must fall a lot
    within one short epoch, and IIA must beat chance on held-out pairs."""
    spec = load_spec(ROOT / "specs" / "hierarchical_equality.causal")
    model = spec.models["HierarchicalEquality"]
    net = load_network(spec.networks["mlp"], spec.path)
    enc, runner = make_encoder(net, model), make_runner(net.module)
    raw = make_splits(model, "left", 2048, 200, 400, 0)
    site = Site(layer=1, position=None)
    sd = prepare_site(runner, site, encode_pairs(raw["train"], "left", enc))
    interv = make_intervention(InterventionPlan("das", 8), sd.hidden, seed=0)
    losses = train_intervention(runner, enc, sd, interv, TrainPlan(2048, 2, 64, 3e-3, (0,)), seed=0)
    assert len(losses) == 2 * 32
    assert sum(losses[-8:]) / 8 < 0.5 * sum(losses[:8]) / 8
    sd_test = prepare_site(runner, site, encode_pairs(raw["test"], "left", enc))
    correct, n = count_correct(predict(runner, enc, sd_test, interv), sd_test.label)
    assert correct / n > 0.7


def test_cached_and_uncached_paths_agree():
    net, enc, runner, splits = _mlp_setup()
    for layer in (0, 1):
        _check_cached_matches_hooked(runner, enc, splits["test"], Site(layer=layer, position=None))


def _check_cached_matches_hooked(runner, enc, pairs, site):
    sd = prepare_site(runner, site, pairs)
    assert sd.cache.cached, sd.cache.note
    interv = make_intervention(InterventionPlan("das", 3), sd.hidden, seed=1)
    cached = runner.run_from_site(sd.cache, lambda b: interv(b, sd.source))
    hooked = runner.run_with_hook(pairs.base_x, site, lambda b: interv(b, sd.source))
    assert torch.allclose(cached, hooked, atol=1e-6)
    assert torch.equal(predict(runner, enc, sd, interv), predict_uncached(runner, enc, pairs, site, interv))


def test_align_result_document_and_controls():
    spec = spec_of("""
hypothesis h : Copy ~ rnd {
    align a to layer 1 via das(dim=2)
    search layer 0..1
    train samples 64, epochs 1, batch 32, seeds 2
    data test 40, dev 40, min_accuracy 0
    control random_network, random_rotation
}""")  # rnd is untrained: the preflight's task-accuracy floor is waived
    r = align_hypothesis(spec, "h", progress=False, device="cpu")
    json.dumps(r)
    assert r["location"].split(":")[-2] == str(COPY.count("\n") + 2)
    assert r["train"] == {"samples": 64, "epochs": 1, "batch": 32, "lr": 0.001, "seeds": [0, 1]}
    assert r["dataset"]["test"] == 40 and r["dataset"]["train"] > 0
    v = r["variables"]["a"]
    assert v["site"] == {"layer": 1, "component": "resid_post", "position": None, "trivial": False}
    assert [s["seed"] for s in v["seeds"]] == [0, 1]
    assert v["iia"]["correct"] == max(s["correct"] for s in v["seeds"]) and v["iia"]["n"] == 40
    assert v["grid"]["layers"] == [0, 1] and v["grid"]["positions"] == [None]
    assert len(v["grid"]["iia_mean"]) == 2
    for c in ("random_network", "random_rotation"):
        assert v["controls"][c]["n"] == 40 and 0 <= v["controls"][c]["correct"] <= 40
    assert set(r["multi"]["cause"]) == {"a"} and r["multi"]["isolate"] == {}
    assert len(r["network_fingerprint"]) == 16


def test_hierarchical_equality_spec_runs_small():
    """The real spec, tiny sample counts: plumbing and the document shape, not accuracy."""
    spec = load_spec(ROOT / "specs" / "hierarchical_equality.causal")
    r = align_hypothesis(spec, "both_equalities", progress=False, device="cpu",
                         overrides={"samples": 256, "epochs": 1, "seeds": 1, "test": 100, "dev": 100})
    assert set(r["variables"]) == {"left", "right"}
    assert r["variables"]["left"]["grid"]["layers"] == [0, 1, 2, 3]
    assert set(r["multi"]["isolate"]) == {"left,right", "right,left"}
    assert r["variables"]["left"]["intervention"]["dim"] == 8


def test_isolate_pairs_leave_out_what_the_variable_was_trained_on():
    """isolate(A, B) is judged on held-out pairs too: an A-only pair A was trained on carries
    the same label, so it must not be scored again."""
    from abstract.engine.data import isolate_pairs, pair_key
    model = load_spec(ROOT / "specs" / "hierarchical_equality.causal").models["HierarchicalEquality"]
    first = isolate_pairs(model, "left", "right", 300, seed=7)
    assert first and all(set(ex.sources) == {"left"} for ex in first)
    for ex in first:  # a pair counts only when swapping right instead would predict otherwise
        assert model.interchange(ex.base, {"right": ex.sources["left"]}) != ex.counterfactual_output
    trained = {pair_key(ex) for ex in first[:150]}
    again = isolate_pairs(model, "left", "right", 300, seed=7, exclude=trained)
    assert len(again) == 300 and not trained & {pair_key(ex) for ex in again}


@pytest.mark.parametrize("informative, balance", [(True, None), (False, "left")])
def test_memoized_model_draws_exactly_the_same_pairs(informative, balance):
    """The engine draws data from a memoized view of the causal model (for speed); the pairs
    and labels must be exactly those of the plain model."""
    from abstract.engine.data import memoized
    model = load_spec(ROOT / "specs" / "hierarchical_equality.causal").models["HierarchicalEquality"]
    plain = make_splits(model, "left", 300, 50, 50, 2, balance, informative)
    fast = make_splits(memoized(model), "left", 300, 50, 50, 2, balance, informative)
    assert plain == fast
