"""The attribution pre-screen against explicit gradients on tiny networks, and end to end."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from abstract.engine.align import align_hypothesis
from abstract.engine.data import PairSet
from abstract.engine.prescreen import attribution_scores, runner_positions, top_cells
from abstract.language import compile_text
from abstract.neural.runner import make_runner
from abstract.neural.sites import Site

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "neural"))
from neural_testkit import build_lm, make_batch  # noqa: E402


class Classes:
    """An encoder stand-in: class scores are the outputs at fixed indices."""

    def __init__(self, idx):
        self.idx = torch.tensor(idx)

    def class_logits(self, out):
        out = out.logits if hasattr(out, "logits") else out
        return out[..., self.idx].float()


def _pairs(base_x, source_x, label, logit_pos=None):
    return PairSet([None] * int(label.shape[0]), base_x, source_x, label, label, logit_pos, ("v",))


def test_mlp_scores_equal_explicit_gradients_and_finite_differences():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    net.requires_grad_(False)
    runner = make_runner(net)
    enc = Classes([0, 1, 2])
    n = 10
    base, source = torch.randn(n, 5, dtype=torch.float64), torch.randn(n, 5, dtype=torch.float64)
    label = torch.randint(0, 3, (n,))
    sites = [Site(layer=i, component="resid_post", position=None) for i in range(runner.n_layers)]
    got = attribution_scores(runner, enc, _pairs(base, source, label), sites, batch=4)

    def loss_from(layer: int, act: torch.Tensor) -> torch.Tensor:  # the network run by hand from `layer` on
        h = act
        for m in list(net)[int(runner.site_path(sites[layer])) + 1:]:
            h = m(h)
        return nn.functional.cross_entropy(h, label, reduction="sum")

    for i, s in enumerate(sites):
        b, a = runner.collect(base, s), runner.collect(source, s)
        act = b.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(loss_from(i, act), act)
        explicit = float(-((a - b) * g).sum()) / n
        assert got[s] == pytest.approx(explicit, rel=1e-6, abs=1e-9)  # class scores in float32
        eps = 1e-6  # central difference of the loss along the interchange direction
        fd = (float(loss_from(i, b + eps * (a - b))) - float(loss_from(i, b - eps * (a - b)))) / (2 * eps)
        assert got[s] == pytest.approx(-fd / n, rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_lm_scores_equal_the_derivative_of_the_cached_interchange(family):
    runner = make_runner(build_lm(family))
    enc = Classes([3, 5, 7, 9])
    base, _ = make_batch("right", seed=0)
    source, _ = make_batch("right", seed=1)
    label = torch.tensor([0, 3, 1])
    lp = torch.tensor([5, 4, 3])  # the last real token of each base (right padding, lengths 6, 5, 4)
    sites = [Site(layer, comp, pos) for layer in (0, 2) for comp in ("resid_pre", "resid_post", "mlp_out")
             for pos in ("last", 1)]
    got = attribution_scores(runner, enc, _pairs(base, source, label, lp), sites, batch=2,
                             site_positions=runner_positions(runner))
    for s in sites:
        cache, a = runner.prepare(base, s), runner.collect(source, s)
        t = torch.zeros((), requires_grad=True)
        with torch.enable_grad():
            out = runner.run_from_site(cache, lambda b, t=t, a=a: b + t * (a - b), logit_positions=lp)
            loss = nn.functional.cross_entropy(enc.class_logits(out), label, reduction="sum")
            (dt,) = torch.autograd.grad(loss, t)
        assert got[s] == pytest.approx(-float(dt) / 3, rel=1e-4, abs=1e-6), s


def test_top_cells_prefers_non_trivial_then_score():
    a, b, c = (Site(i, "resid_post", None) for i in range(3))
    assert top_cells({a: 3.0, b: 2.0, c: 1.0}, 2, {a: True}) == [b, c]
    assert top_cells({a: 3.0, b: 2.0, c: 2.0}, 3, {}) == [a, b, c]


def test_prescreen_trains_only_the_top_cells_and_records_scores(tmp_path, monkeypatch):
    monkeypatch.setenv("ABSTRACT_CACHE_DIR", str(tmp_path / "cache"))
    builder = ROOT / "specs" / "models" / "tiny_lm.py"
    text = (ROOT / "specs" / "tiny_lm.causal").read_text().replace("digits 5, layers 3", "digits 5, layers 3, steps 2")
    text = text.replace('"models/tiny_lm.py:build"', f'"{builder}:build"').replace(
        "search layer *, position [x, y, z, w, last]", "search layer *, position [x, y, z, w, last], prescreen 4")
    spec = compile_text(text, str(tmp_path / "tiny.causal"))
    r = align_hypothesis(spec, "comparison_at_last_token", progress=False, device="cpu",
                         overrides=dict(samples=24, epochs=1, batch=8, seeds=1, dev=12, test=12, min_accuracy=0))
    grid = r["variables"]["c"]["grid"]
    screen = grid["prescreen"]
    assert screen["top"] == 4 and screen["pairs"] == 24
    assert len(screen["score"]) == 3 and all(len(row) == 5 and all(isinstance(x, float) for x in row)
                                             for row in screen["score"])
    trained = [(i, j) for i, row in enumerate(screen["trained"]) for j, x in enumerate(row) if x]
    assert len(trained) == 4
    # no trivial cells in this grid; ties (the last layer's other tokens cannot reach the answer: 0) in grid order
    flat = sorted(((-x, (i, j)) for i, row in enumerate(screen["score"]) for j, x in enumerate(row)))
    assert {ij for _, ij in flat[:4]} == set(trained)
    assert screen["score"][2][:4] == [0.0] * 4
    for i, row in enumerate(grid["iia_mean"]):
        for j, x in enumerate(row):
            named = (grid["layers"][i], grid["positions"][j]) == (1, "last")  # the align site: trained by its seeds
            assert (x is not None) == ((i, j) in trained or named)
    chosen = grid["chosen_site"]
    assert (grid["layers"].index(chosen["layer"]), grid["positions"].index(chosen["position"])) in trained
