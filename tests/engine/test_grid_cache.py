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
