"""Diagnostics of a failed alignment: per-seed loss curve, dev loss and train IIA, the
convergence warning, and a sample of failing test pairs -- checked against the hand-built
RotatedVars network (fixtures/hand_nets.py), recomputed here by the uncached reference path."""
from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch
from torch import nn

from abstract.engine.diagnostics import MAX_POINTS, Diagnostics, convergence, downsample, failing_pairs
from abstract.engine.run import HypothesisRun
from abstract.engine.train import predict_uncached
from abstract.language import load_spec
from abstract.verify.diagnostics import unconverged
from abstract.verify.shape import document_problems, hypothesis_result_problems

HERE = Path(__file__).parent
SPEC = HERE / "fixtures" / "diagnostics.causal"


# ----- the rule, on curves whose answer is known ---------------------------------------------
def test_downsample_keeps_short_curves_and_averages_long_ones():
    assert downsample([3.0, 2.0, 1.0]) == [3.0, 2.0, 1.0]
    long = [float(i) for i in range(1000)]
    out = downsample(long)
    assert len(out) == MAX_POINTS
    assert out[0] == pytest.approx(2.0) and out[-1] == pytest.approx(997.0)  # means of runs of 5 steps
    assert len(downsample([1.0] * 201)) == MAX_POINTS


def test_a_curve_that_flattened_out_has_converged_however_low():
    curve = [4.0 * math.exp(-i / 8) + 0.001 for i in range(200)]
    assert convergence(curve, 1.0, 0.01) == (True, None)


def test_a_curve_still_falling_at_the_end_has_not():
    ok, why = convergence([4.0 - 0.01 * i for i in range(300)], 0.95, 0.01)
    assert ok is False and "still falling" in why


def test_minibatch_noise_does_not_decide():
    rng = random.Random(0)
    noisy = lambda f: [f(i) + rng.gauss(0, 0.8) for i in range(400)]  # noqa: E731 -- per-batch noise
    plateau = noisy(lambda i: 12.0 * math.exp(-i / 30) + 0.5)  # flat for its last three quarters
    assert convergence(plateau, 0.99, 0.005) == (True, None)
    unfinished = noisy(lambda i: 12.0 * math.exp(-i / 300) + 0.5)  # still a third of the way from its floor
    ok, why = convergence(unfinished, 0.7, 0.005)
    assert ok is False and "still falling" in why


def test_a_stalled_curve_warns_only_when_the_optimiser_could_not_move():
    flat = [0.69 + 0.01 * (-1) ** i for i in range(10)]
    ok, why = convergence(flat, 0.5, 1e-5)  # 10 steps x 1e-5: nothing could have moved
    assert ok is False and "barely moved" in why
    assert convergence(flat, 0.5, 0.05) == (True, None)  # it could have: a failed alignment, not an unfinished one
    assert convergence(flat, 1.0, 1e-5) == (True, None)  # fits its pairs already


def test_too_short_or_untrained_cannot_be_judged_and_nan_has_not_converged():
    assert convergence([], None) == (None, None) and convergence([0.3], 1.0) == (None, None)
    assert convergence([1.0, float("nan")], 1.0)[0] is False
    doc = Diagnostics((1.0, float("inf")), float("nan"), 1.0).to_json()
    json.dumps(doc, allow_nan=False)  # non-finite figures become null
    assert doc["dev_loss"] is None and doc["loss"] == [1.0, None] and doc["converged"] is False


# ----- the engine, on the hand-built network -------------------------------------------------
@pytest.fixture(scope="module")
def runs():
    spec = load_spec(SPEC)
    out = {}
    for name in ("trained", "undertrained", "merged", "joint"):
        run = HypothesisRun(spec, name, progress=False, device="cpu")
        out[name] = (run, run.run().to_json())
    return out


def _dev_loss(run, name):
    """Mean cross-entropy of the judged seed on the dev pairs, by whole-network forwards with a hook."""
    ctx, cell = run.contexts[name], run.best[name]
    pairs = ctx.splits["dev"]
    source = run.runner.collect(pairs.source_x, cell.site)
    with torch.no_grad():
        out = run.runner.run_with_hook(pairs.base_x, cell.site, lambda b: cell.interv(b, source.to(b.device)),
                                       logit_positions=pairs.logit_pos)
        return float(nn.functional.cross_entropy(run.encoder.class_logits(out), pairs.label))


def test_every_reported_seed_has_its_diagnostics_and_they_are_right(runs):
    run, doc = runs["trained"]
    assert hypothesis_result_problems(doc, name="trained") == []
    json.dumps(doc, allow_nan=False)
    seeds = doc["variables"]["A"]["seeds"]
    assert [s["seed"] for s in seeds] == [0, 1]
    steps = 4 * math.ceil(400 / 32)
    ctx = run.contexts["A"]
    for s in seeds:
        d = s["diagnostics"]
        assert d["steps"] == steps and len(d["loss"]) == steps  # short enough to keep every step
        assert d["loss"][-1] < d["loss"][0] / 10
        assert d["converged"] is True and "why" not in d
    # the judged seed's train IIA and dev loss, recomputed by the uncached reference path
    cell = run.best["A"]
    judged = next(s for s in seeds if s["seed"] == cell.seed)["diagnostics"]
    train = ctx.splits["train"]
    hits = (predict_uncached(run.runner, run.encoder, train, cell.site, cell.interv) == train.label).float().mean()
    assert judged["train_iia"] == pytest.approx(round(float(hits), 4), abs=1e-4)
    assert judged["train_iia"] >= 0.95
    assert judged["dev_loss"] == pytest.approx(_dev_loss(run, "A"), rel=1e-3, abs=1e-4)
    assert unconverged(doc) == []


def test_an_undertrained_run_is_flagged(runs):
    _, doc = runs["undertrained"]
    (s,) = doc["variables"]["A"]["seeds"]
    d = s["diagnostics"]
    assert d["converged"] is False and "lr" in d["why"]
    assert d["train_iia"] < 0.9 and d["steps"] == math.ceil(200 / 32)
    (warning,) = unconverged(doc)
    assert warning.startswith("variable A seed 0: training has not converged")


def test_a_merged_variable_fails_without_a_convergence_warning(runs):
    _, doc = runs["merged"]
    d = doc["variables"]["A"]["seeds"][0]["diagnostics"]
    assert d["train_iia"] < 0.9 and d["converged"] is True  # trained enough to reach it: simply not there


def test_a_jointly_trained_group_has_diagnostics_per_seed(runs):
    run, doc = runs["joint"]
    (s,) = doc["multi"]["joint"]["x,z"]["seeds"]
    d = s["diagnostics"]
    n_train = doc["dataset"]["joint"]["x,z"]["train"]
    assert d["steps"] == 5 * math.ceil(n_train / 32) and len(d["loss"]) == min(d["steps"], MAX_POINTS)
    assert d["converged"] is True and d["train_iia"] >= 0.95 and 0 <= d["dev_loss"] < 0.5
    assert all("diagnostics" not in s for v in doc["variables"].values() for s in v["seeds"])  # one curve: the group's
    assert all(isinstance(v["failing_pairs"], list) for v in doc["variables"].values())
    assert hypothesis_result_problems(doc, name="joint") == []


@pytest.mark.parametrize("name", ["undertrained", "merged"])
def test_failing_pairs_are_the_first_wrong_test_pairs_as_model_values(runs, name):
    run, doc = runs[name]
    pairs = doc["variables"]["A"]["failing_pairs"]
    ctx, cell = run.contexts["A"], run.best["A"]
    test = ctx.splits["test"]
    pred = predict_uncached(run.runner, run.encoder, test, cell.site, cell.interv).tolist()
    wrong = [i for i, (p, y) in enumerate(zip(pred, test.label.tolist())) if p != y]
    assert len(pairs) == min(8, len(wrong)) and len(pairs) > 0
    for entry, i in zip(pairs, wrong):
        ex = test.examples[i]
        base, source = ex.base, ex.sources["A"]
        assert entry["base"] == base and entry["source"] == source
        # expected: y = (A != B) with A = (a == b) taken from the source, B = (c == d) from the base
        assert entry["expected"] == {"y": (source["a"] == source["b"]) != (base["c"] == base["d"])}
        assert entry["predicted"] == run.encoder.classes.as_dict(pred[i]) != entry["expected"]
        assert entry["changed"] == (ex.base_output != ex.counterfactual_output)


def test_a_perfect_alignment_lists_no_failing_pairs(runs):
    _, doc = runs["trained"]
    iia = doc["variables"]["A"]["iia"]
    assert iia["correct"] == iia["n"] and doc["variables"]["A"]["failing_pairs"] == []


def test_failing_pairs_sample_is_capped():
    class Ex:
        def __init__(self, i):
            self.base, self.sources = {"a": i}, {"v": {"a": i + 1}}
            self.base_output, self.counterfactual_output = {"y": 0}, {"y": 1}
    pairs = failing_pairs([Ex(i) for i in range(20)], "v", [{"y": 0}] * 20)
    assert len(pairs) == 8 and pairs[0] == {"base": {"a": 0}, "source": {"a": 1}, "expected": {"y": 1},
                                            "predicted": {"y": 0}, "changed": True}
    assert failing_pairs([Ex(0)], "v", [{"y": 1}]) == []


# ----- the document: warnings, shape -----------------------------------------------------------
def test_the_document_warns_on_the_console_and_in_warnings(tmp_path, capsys):
    from abstract.cli import main
    out = tmp_path / "results.json"
    code = main(["verify", str(SPEC), "--no-cache", "--quiet", "--device", "cpu", "--hypothesis", "trained",
                 "--hypothesis", "undertrained", "--json", str(out), "--html", str(tmp_path / "r.html")])
    assert code == 1  # undertrained fails its expectation
    doc = json.loads(out.read_text())
    assert document_problems(doc) == []
    assert [w for w in doc["warnings"] if "not converged" in w] == \
        [w for w in doc["warnings"] if w.startswith("hypothesis undertrained: variable A seed 0: training has not "
                                                    "converged")]
    assert len([w for w in doc["warnings"] if "not converged" in w]) == 1
    err = capsys.readouterr().err
    assert "warning: hypothesis undertrained: variable A seed 0: training has not converged" in err
    assert "hypothesis trained:" not in err
    html = (tmp_path / "r.html").read_text()
    assert html.count('<svg class="loss"') == 3 and "not converged" in html and "base inputs" in html


def test_the_shape_checker_refuses_malformed_diagnostics(runs):
    _, doc = runs["undertrained"]
    bad = json.loads(json.dumps(doc))
    bad["variables"]["A"]["seeds"][0]["diagnostics"]["loss"] = "falling"
    bad["variables"]["A"]["failing_pairs"][0]["base"] = 3
    problems = hypothesis_result_problems(bad, name="undertrained")
    assert any("diagnostics.loss" in p for p in problems) and any("failing_pairs[0].base" in p for p in problems)
