"""Effect sizes and the noise control: figures checked against a hand computation on the
class scores, through a whole run (torch MLP and a multi-token LM), and judged by `expect`."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from abstract.engine.controls import NOISE_SCALE, site_noise
from abstract.engine.effects import figures
from abstract.engine.run import HypothesisRun
from abstract.language import compile_text
from abstract.verify.expectations import judge_expectations
from abstract.verify.stats import mean_interval, t_quantile

HERE = Path(__file__).parent

TWO = """
model Two {
    input a, b : 0..2
    x = a
    z = b
    output y = 3 * x + z
}
network rnd = torch "fixtures/hand_nets.py:random_mlp" { width 12, depth 2, inputs 6, classes 9 }
"""


def test_figures_match_a_hand_computation():
    torch.manual_seed(0)
    scores = torch.randn(6, 3)
    logp = scores.log_softmax(-1)
    label, base = torch.tensor([0, 1, 2, 2, 0, 1]), torch.tensor([1, 1, 0, 2, 2, 0])
    src_lp, src_label = torch.randn(6, 3).log_softmax(-1), torch.tensor([0, 2, 2, 1, 0, 1])
    eff = figures(scores, logp, label, base, src_lp, src_label)
    changed = [i for i in range(6) if label[i] != base[i]]
    diffs = [float(scores[i, label[i]] - scores[i, base[i]]) for i in changed]
    assert eff.logit_diff.n == 4 and math.isclose(eff.logit_diff.value, sum(diffs) / 4, abs_tol=1e-5)
    probs = [math.exp(float(logp[i, label[i]])) for i in changed]
    assert math.isclose(eff.prob.value, sum(probs) / 4, abs_tol=1e-5)
    kl_rows = [i for i in range(6) if label[i] == src_label[i]]
    kls = [float((src_lp[i].exp() * (src_lp[i] - logp[i])).sum()) for i in kl_rows]
    assert eff.kl is not None and eff.kl.n == len(kl_rows)
    assert math.isclose(eff.kl.value, sum(kls) / len(kls), abs_tol=1e-5)
    mean, low, high = mean_interval(diffs)
    assert low is not None and high is not None and eff.logit_diff.ci_low == pytest.approx(low, abs=1e-5)
    assert high - mean == pytest.approx(mean - low)


def test_t_quantile_matches_tables():
    assert t_quantile(0.95, 1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile(0.95, 5) == pytest.approx(2.571, abs=1e-3)
    assert t_quantile(0.95, 30) == pytest.approx(2.042, abs=1e-3)
    assert t_quantile(0.95, 1000) == pytest.approx(1.962, abs=1e-3)


def test_noise_is_seeded_and_scaled_to_each_dimension():
    base = torch.randn(500, 4) * torch.tensor([0.1, 1.0, 5.0, 0.0])
    a, b = site_noise(base, seed=3), site_noise(base, seed=3)
    assert torch.equal(a, b) and not torch.equal(a, site_noise(base, seed=4))
    ratio = a.std(0)[:3] / (base.std(0)[:3] * NOISE_SCALE)
    assert torch.allclose(ratio, torch.ones(3), atol=0.1) and bool((a[:, 3] == 0).all())


SMALL = """
hypothesis h : Two ~ rnd {
    align x to layer 1 via das(dim=2)
    train samples 64, epochs 1, batch 32, seeds 1
    data test 60, dev 20, min_accuracy 0
    expect logit_diff(x) >= 50, prob(x) <= 1, kl(x) >= 0, logit_diff(x) >= control(noise) + 0.1,
           prob(x) >= do_nothing
    control random_rotation, noise
}"""


@pytest.fixture(scope="module")
def small_run():
    spec = compile_text(TWO + SMALL, str(HERE / "inline.causal"))
    result = HypothesisRun(spec, "h", progress=False, device="cpu").run().to_json()
    return spec, result


def test_a_run_reports_effects_beside_doing_nothing_and_controls(small_run):
    _, doc = small_run
    eff = doc["variables"]["x"]["effects"]
    assert eff["scored"] == "logit"
    for k in ("logit_diff", "prob", "kl"):
        fig = eff[k]
        assert fig["n"] > 1 and fig["ci_low"] <= fig["value"] <= fig["ci_high"]
        assert "do_nothing" in fig
    assert 0 <= eff["prob"]["ci_low"] and eff["prob"]["ci_high"] <= 1
    for c in ("random_rotation", "noise"):
        control = doc["variables"]["x"]["controls"][c]
        assert control["n"] == 60 and set(control["effects"]) >= {"logit_diff", "prob"}


def test_effect_expectations_are_judged_on_their_intervals(small_run):
    spec, doc = small_run
    verdicts = judge_expectations(spec.hypotheses[0], doc)
    by = {v["text"]: v for v in verdicts}
    first = verdicts[0]
    assert first["metric"] == "logit_diff" and first["passed"] is False and "lower bound" in first["reason"]
    assert verdicts[1]["passed"] is True  # prob <= 1: upper bound under 1
    assert verdicts[3]["against"]["kind"] == "control" and verdicts[3]["against"]["n"] == \
        doc["variables"]["x"]["controls"]["noise"]["effects"]["logit_diff"]["n"]
    assert verdicts[4]["against"]["kind"] == "do_nothing" and len(by) == 5


def test_do_nothing_rule_holds_for_effect_sizes():
    from abstract.language import ast
    from abstract.verify.effects import judge_effect
    e = ast.Expectation("logit_diff", ("x",), ">=", 1.0)
    result = {"name": "h", "variables": {"x": {"effects": {"logit_diff": {
        "value": 3.0, "ci_low": 2.0, "ci_high": 4.0, "n": 50,
        "do_nothing": {"value": 2.5, "ci_low": 1.5, "ci_high": 3.5, "n": 50}}}}}}
    v = judge_effect(e, result)
    assert v["passed"] is False and "doing nothing" in v["reason"]
    result["variables"]["x"]["effects"]["logit_diff"]["do_nothing"].update(ci_high=1.9)
    assert judge_effect(e, result)["passed"] is True


def test_effect_metrics_compile_with_unbounded_thresholds_and_reject_mixing():
    from abstract.language import SpecError
    ok = SMALL.replace("logit_diff(x) >= 50", "logit_diff(x) >= 2.5")
    compile_text(TWO + ok, "t.causal")
    bad = SMALL.replace("prob(x) >= do_nothing", "prob(x) >= iia(x)")
    with pytest.raises(SpecError, match="effect size is compared only with the same effect size"):
        compile_text(TWO + bad, "t.causal")
    with pytest.raises(SpecError, match="threshold 2.5 is not between 0 and 1"):
        compile_text(TWO + SMALL.replace("prob(x) <= 1", "prob(x) <= 2.5"), "t.causal")


MULTI = """
model Copy {
    domain Color = {red, dark_red, blue, light_blue}
    input a, b : Color
    x = a
    output y : Color = x
}
network lm = torch "fixtures/split_lm.py:build" {
    prompt "{a} {b} =",
    answer " {y}"
}
hypothesis h : Copy ~ lm {
    align x to layer 1 position last via das(dim=4)
    train samples 16, epochs 1, batch 16, seeds 1
    data test 16, dev 8, min_accuracy 0
    control noise
}
"""


def test_a_multi_token_run_scores_whole_answers():
    spec = compile_text(MULTI, str(HERE / "multi.causal"))
    run = HypothesisRun(spec, "h", progress=False, device="cpu")
    doc = run.run().to_json()
    assert run.encoder.multi_token
    eff = doc["variables"]["x"]["effects"]
    assert eff["scored"] == "logprob_sum" and eff["prob"]["n"] > 0
    assert doc["variables"]["x"]["controls"]["noise"]["n"] == 16


TRAINED = MULTI.replace('"fixtures/split_lm.py:build"', '"fixtures/split_lm.py:trained"').replace(
    """    align x to layer 1 position last via das(dim=4)
    train samples 16, epochs 1, batch 16, seeds 1
    data test 16, dev 8, min_accuracy 0
    control noise""", """    align x to layer 1 component resid_post position last via full
    data test 200, dev 50, informative true
    expect iia(x) >= do_nothing + 0.5, logit_diff(x) >= 2.0, logit_diff(x) >= control(noise) + 1.0
    control noise""")


@pytest.mark.slow
def test_a_trained_lm_with_multi_token_answers_aligns_with_large_effects():
    """The copy task's answer is carried by the last prompt token's final residual, but the
    later tokens of a multi-token answer also read the prompt directly: scored over the whole
    answer, the full interchange there reaches IIA ~0.8 (not 1.0), with a large logit diff."""
    spec = compile_text(TRAINED, str(HERE / "multi.causal"))
    doc = HypothesisRun(spec, "h", progress=False, device="cpu").run().to_json()
    verdicts = judge_expectations(spec.hypotheses[0], doc)
    assert all(v["passed"] for v in verdicts), [v["reason"] for v in verdicts]
