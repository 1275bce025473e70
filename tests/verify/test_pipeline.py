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


# A real (tiny) network: the pipeline loads it to fingerprint its weights for the cache.
# It reads its weights from w.pt when that file exists, as a checkpoint loader would.
NET = """
import os, torch
def build():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(16, 4), torch.nn.Linear(4, 2))
    here = os.path.dirname(__file__)
    if os.path.exists(os.path.join(here, "w.pt")):
        net.load_state_dict(torch.load(os.path.join(here, "w.pt")))
    return net
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
    (tmp_path / "net.py").write_text(NET)
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
    assert "RuntimeError: network exploded" in doc["errors"][0]["traceback"]
    assert pipeline.exit_code(doc) == 2


def test_unknown_hypothesis_is_a_spec_error(spec_file, fake_engine):
    from abstract.language import SpecError
    with pytest.raises(SpecError, match="no hypothesis named nope"):
        pipeline.verify_spec(spec_file, hypotheses=["nope"], progress=False)


def test_cache_misses_when_the_weights_change_behind_an_unchanged_spec(spec_file, fake_engine, tmp_path):
    """The builder file and the spec stay the same; the checkpoint it loads changes."""
    import torch
    cache = ResultsCache(tmp_path / "cache")
    pipeline.verify_spec(spec_file, cache=cache, progress=False)
    pipeline.verify_spec(spec_file, cache=cache, progress=False)
    assert fake_engine == ["good", "bad"]
    torch.manual_seed(1)
    torch.save(torch.nn.Sequential(torch.nn.Linear(16, 4), torch.nn.Linear(4, 2)).state_dict(),
               spec_file.parent / "w.pt")
    doc = pipeline.verify_spec(spec_file, cache=cache, progress=False)
    assert fake_engine == ["good", "bad", "good", "bad"] and doc["run"]["cached"] is False


def test_a_network_that_cannot_load_fails_only_its_hypotheses(spec_file, fake_engine):
    """A missing builder is reported (with the spec line and a caret) for the hypothesis that
    uses it; a hypothesis on another network still runs."""
    spec_file.write_text(SPEC.replace('network net = torch "net.py:build"',
                                      'network net = torch "net.py:build"\nnetwork gone = torch "missing.py:build"')
                         .replace("hypothesis bad : Eq ~ net", "hypothesis bad : Eq ~ gone"))
    doc = pipeline.verify_spec(spec_file, progress=False)
    assert [h["name"] for h in doc["hypotheses"]] == ["good"] and fake_engine == ["good"]
    (err,) = doc["errors"]
    assert err["hypothesis"] == "bad" and err["location"].endswith("eq.causal:9:9")
    assert "cannot find missing.py" in err["message"] and "^" in err["message"]
    assert pipeline.exit_code(doc) == 2


def test_an_unreadable_spec_still_gives_a_document(tmp_path):
    from abstract.language import SpecError
    bad = tmp_path / "broken.causal"
    bad.write_text("model M {\n    input a : 0..3\n    output y = a ==\n}\n")
    with pytest.raises(SpecError) as info:
        pipeline.verify_spec(bad, progress=False)
    doc = pipeline.error_document(bad, info.value)
    assert pipeline.exit_code(doc) == 2 and doc["passed"] is False
    assert doc["errors"][0]["location"].startswith(str(bad) + ":4:1")
    json.dumps(doc)


def test_joint_expectation_reads_the_group_in_any_order(spec_file, monkeypatch):
    spec_file.write_text(SPEC.replace("expect isolate(left, right) >= 0.8",
                                      "expect isolate(left, right) >= 0.8, joint(right, left) >= 0.9"))

    def joint_result(spec, name, **kw):
        r = fake_result(name, 970, 1000)
        r["multi"]["joint"] = {"left,right": {"value": 0.96, "correct": 960, "n": 1000, "mean": 0.95}}
        return r

    monkeypatch.setattr(pipeline, "_align", joint_result)
    doc = pipeline.verify_spec(spec_file, hypotheses=["good"], progress=False)
    e = doc["hypotheses"][0]["expectations"][-1]
    assert e["metric"] == "joint" and e["n"] == 1000 and e["passed"] is True
    # trained separately: no joint entry, and the reason says what is missing
    monkeypatch.setattr(pipeline, "_align", lambda spec, name, **kw: fake_result(name, 970, 1000))
    e = pipeline.verify_spec(spec_file, hypotheses=["good"], progress=False)["hypotheses"][0]["expectations"][-1]
    assert e["passed"] is False and "train ... joint true" in e["reason"]


def test_expectations_on_overlapping_pairs_carry_a_warning(spec_file, monkeypatch):
    from abstract.verify.summary import format_summary

    def small_space(spec, name, **kw):
        r = fake_result(name, 970, 1000)
        r["dataset"] = {"train": 16, "dev": 16, "test": 16, "informativeness": 0.5, "held_out": False}
        return r

    monkeypatch.setattr(pipeline, "_align", small_space)
    doc = pipeline.verify_spec(spec_file, hypotheses=["good"], progress=False)
    e = doc["hypotheses"][0]["expectations"][0]
    assert e["held_out"] is False and "overlap" in e["reason"]
    assert "WARNING: test pairs overlap the training pairs" in format_summary(doc, unicode=False)
