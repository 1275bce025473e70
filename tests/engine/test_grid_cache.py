"""Grid-wide prefix caches: results bit-identical to per-site preparation, far fewer forwards."""
from __future__ import annotations

from pathlib import Path

import pytest

from abstract.engine import search
from abstract.engine.align import align_hypothesis
from abstract.engine.grid_cache import GridCache, chunk_layers
from abstract.engine.train import prepare_site
from abstract.language import compile_text

ROOT = Path(__file__).resolve().parent.parent.parent
SPEC = ROOT / "specs" / "tiny_lm.causal"
BUILDER = ROOT / "specs" / "models" / "tiny_lm.py"
SMALL = dict(samples=24, epochs=1, batch=8, seeds=2, dev=12, test=12, min_accuracy=0)


def test_chunk_layers_fits_the_budget():
    assert chunk_layers([2, 0, 1, 1], per_layer=0, budget=10) == [(0, 1, 2)]
    assert chunk_layers(range(5), per_layer=4, budget=8) == [(0, 1), (2, 3), (4,)]
    assert chunk_layers([0, 1], per_layer=100, budget=8) == [(0,), (1,)]  # one layer even when over budget


def _spec(tmp_path):
    text = SPEC.read_text().replace("digits 5, layers 3", "digits 5, layers 3, steps 2").replace(
        '"models/tiny_lm.py:build"', f'"{BUILDER}:build"')
    return compile_text(text, str(tmp_path / "tiny_lm.causal"))


def _strip(doc):
    """The result without wall-clock figures."""
    if isinstance(doc, dict):
        return {k: _strip(v) for k, v in doc.items() if k not in ("timing", "seconds")}
    if isinstance(doc, list):
        return [_strip(v) for v in doc]
    return doc


@pytest.mark.parametrize("hypothesis", ["comparison_at_last_token", "third_digit_read_at_its_token"])
def test_grid_cache_results_equal_per_site_preparation(tmp_path, monkeypatch, hypothesis):
    monkeypatch.setenv("ABSTRACT_CACHE_DIR", str(tmp_path / "cache"))
    spec = _spec(tmp_path)
    made: list[GridCache] = []
    real = search.VariableContext.grid_cache

    def spy(self):
        grid = real(self)
        if grid not in made:
            made.append(grid)
        return grid

    monkeypatch.setattr(search.VariableContext, "grid_cache", spy)
    cached = align_hypothesis(spec, hypothesis, progress=False, device="cpu", overrides=SMALL)
    assert made and sum(g.forwards for g in made) <= 6  # train, dev, test (plus kept sites), not 3 per cell
    monkeypatch.setattr(search.VariableContext, "data",
                        lambda self, site, split: prepare_site(self.runner, site, self.splits[split]))
    monkeypatch.setattr(search.VariableContext, "keep_only", lambda self, site, split: None)
    per_site = align_hypothesis(spec, hypothesis, progress=False, device="cpu", overrides=SMALL)
    assert _strip(cached) == _strip(per_site)


def test_a_small_budget_prepares_a_chunk_of_layers_at_a_time():
    import sys
    import torch
    from abstract.engine.data import PairSet
    from abstract.neural.runner import make_runner
    from abstract.neural.sites import Site
    sys.path.insert(0, str(ROOT / "tests" / "engine"))
    from lm_kit import tiny_lm
    runner = make_runner(tiny_lm("gpt2", layers=3).eval())
    g = torch.Generator().manual_seed(0)
    n, seq = 6, 5

    def ids():
        x = torch.randint(3, 16, (n, seq), generator=g)
        return {"input_ids": x, "attention_mask": torch.ones_like(x)}

    label = torch.randint(0, 4, (n,), generator=g)
    pairs = PairSet([None] * n, ids(), ids(), label, label, torch.full((n,), seq - 1), ("v",))
    sites = [Site(layer, "resid_post", p) for layer in range(3) for p in ("last", 1)]
    per_layer = n * seq * 32 * 4
    grid = GridCache(runner, {"train": pairs}, sites, budget=2 * per_layer)  # two layers per chunk
    for s in sites:
        got, alone = grid.get(s, "train"), prepare_site(runner, s, pairs)
        assert torch.equal(got.cache.base_act, alone.cache.base_act) and torch.equal(got.source, alone.source)
        assert torch.equal(got.cache.hidden, alone.cache.hidden)
    assert grid.forwards == 2  # layers (0, 1), then (2,)
    grid.keep_only(sites[-1], "train")
    assert grid.get(sites[-1], "train") is not None and grid.forwards == 2
