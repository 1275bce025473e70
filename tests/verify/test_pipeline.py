"""The verify pipeline: expectations judged on counts, cache hits, exit codes, the plugin's view.

The alignment engine is replaced by a fake that returns fixed counts, so these tests are
about the judging and plumbing, not about training."""
from __future__ import annotations

import json

import pytest

from abstract.verify import pipeline
from abstract.verify.cache import ResultsCache

SPEC = """
model Eq {
    input a, b, c, d : 0..3
    left = a == b
    right = c == d
    output label = left == right
}
network net = torch "net.py:build"
hypothesis good : Eq ~ net {
    align left to layer 1 via das(dim=2)
    align right to layer 1 via das(dim=2)
    expect iia(left) >= 0.9, iia(right) >= 0.9
    expect isolate(left, right) >= 0.8
}
hypothesis bad : Eq ~ net {
    align left to layer 1 via das(dim=2)
    expect iia(left) <= 0.6
}
"""


def fake_result(name: str, correct: int, n: int) -> dict:
    var = {"iia": {"mean": correct / n, "max": correct / n, "best_seed": 0, "correct": correct, "n": n},
           "seeds": [{"seed": 0, "iia": correct / n, "correct": correct, "n": n}],
           "site": {"layer": 1, "component": "resid_post", "position": None},
           "intervention": {"kind": "das", "dim": 2}, "controls": {}}
    return {"name": name, "model": "Eq", "network": "net", "variables": {"left": var, "right": var},
            "multi": {"cause": {}, "isolate": {"left,right": {"value": 0.95, "correct": 950, "n": 1000}}}}


@pytest.fixture
def spec_file(tmp_path):
    (tmp_path / "net.py").write_text("def build():\n    raise RuntimeError('not used')\n")
    path = tmp_path / "eq.causal"
    path.write_text(SPEC)
    return path


@pytest.fixture
def fake_engine(monkeypatch):
    calls = []

    def fake_align(spec, name, **kw):
        calls.append(name)
        return fake_result(name, 970, 1000) if name == "good" else fake_result(name, 700, 1000)

    monkeypatch.setattr(pipeline, "_align", fake_align)
    return calls


def test_expectations_judged_with_confidence_bounds(spec_file, fake_engine):
    doc = pipeline.verify_spec(spec_file, progress=False)
    good, bad = doc["hypotheses"]
    assert [e["passed"] for e in good["expectations"]] == [True, True, True]
    assert good["expectations"][0]["ci_low"] > 0.9 and good["expectations"][0]["n"] == 1000
    assert bad["expectations"][0]["passed"] is False  # 0.70 is not <= 0.6
    assert doc["passed"] is False and pipeline.exit_code(doc) == 1
    assert all(c["verdict"] == "proved" for c in doc["checks"])
    json.dumps(doc)  # the document is JSON-able


def test_small_sample_cannot_pass_on_luck(spec_file, monkeypatch):
    # 10/10 correct is IIA 1.0, but the 95% lower bound (~0.72) does not clear 0.9.
    monkeypatch.setattr(pipeline, "_align", lambda spec, name, **kw: fake_result(name, 10, 10))
    doc = pipeline.verify_spec(spec_file, hypotheses=["good"], progress=False)
    e = doc["hypotheses"][0]["expectations"][0]
    assert e["value"] == 1.0 and e["passed"] is False and e["ci_low"] < 0.9


def test_cache_skips_retraining_until_spec_changes(spec_file, fake_engine, tmp_path):
    cache = ResultsCache(tmp_path / "cache")
    first = pipeline.verify_spec(spec_file, cache=cache, progress=False)
    assert fake_engine == ["good", "bad"] and first["run"]["cached"] is False
    second = pipeline.verify_spec(spec_file, cache=cache, progress=False)
    assert fake_engine == ["good", "bad"] and second["run"]["cached"] is True
    assert second["hypotheses"][0]["expectations"] == first["hypotheses"][0]["expectations"]
    spec_file.write_text(SPEC.replace("0.9,", "0.95,"))
    pipeline.verify_spec(spec_file, cache=cache, progress=False)
    assert fake_engine == ["good", "bad", "good", "bad"]


def test_runtime_failure_of_one_hypothesis_is_recorded(spec_file, monkeypatch):
    def flaky(spec, name, **kw):
        if name == "bad":
            raise RuntimeError("network exploded")
        return fake_result(name, 970, 1000)

    monkeypatch.setattr(pipeline, "_align", flaky)
    doc = pipeline.verify_spec(spec_file, progress=False)
    assert [h["name"] for h in doc["hypotheses"]] == ["good"]
    assert doc["errors"][0]["hypothesis"] == "bad" and "network exploded" in doc["errors"][0]["message"]
    assert pipeline.exit_code(doc) == 2


def test_unknown_hypothesis_is_a_spec_error(spec_file, fake_engine):
    from abstract.language import SpecError
    with pytest.raises(SpecError, match="no hypothesis named nope"):
        pipeline.verify_spec(spec_file, hypotheses=["nope"], progress=False)
