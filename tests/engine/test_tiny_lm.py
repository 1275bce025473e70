"""The shipped tiny-LM case: specs/tiny_lm.causal on the GPT-2 that specs/models/tiny_lm.py trains.

Fast tests check the plumbing with a barely trained model (``steps 2``): the builder's cache
(save_pretrained folder, reloaded through from_pretrained), the word-level tokenizer, that the
folder also loads as ``hf "<folder>"``, and that the spec compiles and aligns end to end with
tiny settings. The slow test runs the real spec (the model's training included, under a minute)
and checks the measured targets.
"""
from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest
import torch

from abstract.engine.align import align_hypothesis
from abstract.language import compile_text, load_spec
from abstract.verify.stats import judged_iia

ROOT = Path(__file__).resolve().parent.parent.parent
SPEC = ROOT / "specs" / "tiny_lm.causal"
BUILDER = ROOT / "specs" / "models" / "tiny_lm.py"
# the builder runs a couple of steps only: an untrained LM, so the preflight's task-accuracy floor is waived
TINY = dict(samples=32, epochs=1, batch=16, seeds=1, dev=16, test=24, search=False, min_accuracy=0)


def _builder():
    spec = importlib.util.spec_from_file_location("tiny_lm_builder_under_test", BUILDER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ABSTRACT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _spec_text(steps: int) -> str:
    """The shipped spec with the builder's training cut to ``steps`` (plumbing only)."""
    text = SPEC.read_text()
    assert "digits 5, layers 3" in text
    return text.replace("digits 5, layers 3", f"digits 5, layers 3, steps {steps}").replace(
        '"models/tiny_lm.py:build"', f'"{BUILDER}:build"')


def test_builder_caches_a_save_pretrained_folder(cache_dir):
    tl = _builder()
    model, tok = tl.build(steps=2)
    folders = list((cache_dir / "models").glob("tiny_lm-*"))
    assert len(folders) == 1 and (folders[0] / "config.json").is_file()
    assert (folders[0] / "tokenizer.json").is_file()
    assert model.config.model_type == "gpt2" and model.config.n_layer == 3
    assert model.config.abstract_training["steps"] == 2
    # word-level tokenizer: one token per digit, "=" its own token, answers " d" one token
    ids = tok("3 0 2 3 =")["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["3", "0", "2", "3", "="]
    assert tok(" 4", add_special_tokens=False)["input_ids"] == [tok.convert_tokens_to_ids("4")]
    t = time.time()
    again, _ = tl.build(steps=2)
    assert time.time() - t < 10
    for (n, p), (_, q) in zip(model.named_parameters(), again.named_parameters()):
        assert torch.equal(p, q), n


def test_cached_folder_loads_as_hf_network(cache_dir, tmp_path):
    tl = _builder()
    tl.build(steps=2)
    folder = next((cache_dir / "models").glob("tiny_lm-*"))
    text = _spec_text(2).split("# ---------------------------------------------------------------- the network")[0]
    text += f'network lm = hf "{folder}" {{ prompt "{{x}} {{y}} {{z}} {{w}} =", answer " {{out}}" }}\n'
    text += """hypothesis h : CarryThird ~ lm {
    align t to layer 0 position z via das(dim=2)
}
"""
    spec = compile_text(text, str(tmp_path / "hf.causal"))
    r = align_hypothesis(spec, "h", progress=False, device="cpu", overrides=TINY)
    assert r["variables"]["t"]["site"] == {"layer": 0, "component": "resid_post", "position": "z", "trivial": False}


def test_spec_compiles_and_aligns_with_tiny_settings(cache_dir, tmp_path):
    spec = compile_text(_spec_text(2), str(tmp_path / "tiny_lm.causal"))
    assert set(spec.models) == {"Select", "CarryThird"}
    assert [h.name for h in spec.hypotheses] == ["third_digit_read_at_its_token", "comparison_at_last_token"]
    r = align_hypothesis(spec, "comparison_at_last_token", progress=False, device="cpu",
                         overrides={**TINY, "search": True, "samples": 16, "dev": 8, "test": 8})
    v = r["variables"]["c"]
    g = v["grid"]
    assert g["layers"] == [0, 1, 2] and g["positions"] == ["x", "y", "z", "w", "last"]
    assert g["position_tokens"][-1] == "=" and all(tok.isdigit() for tok in g["position_tokens"][:4])
    assert v["site"] == {"layer": 1, "component": "resid_post", "position": "last", "trivial": False}
    assert set(v["controls"]) == {"random_network", "random_rotation"}


@pytest.mark.slow
def test_shipped_spec_targets():
    """The real spec (model trained here if not cached; about two minutes in all on 2 CPU cores).

    Measured (seeds 0-2, 1000 held-out informative pairs): t at resid_pre of layer 0 on the z
    token 1.000 on every seed, the same site one layer on (resid_pre of layer 1) about 0.6 -- on
    the networks of builder seeds 0 and 1 alike; c at layer 1 on the last token 0.05-0.08;
    controls 0.20-0.37 (untrained network: depending on its random draw it predicts one or two
    of the 5 digits whatever the input) and 0.01-0.10 (random rotation, below chance: on
    informative pairs doing nothing scores 0). The assertions are the
    ones any network that solves the task must satisfy."""
    spec = load_spec(SPEC)
    r = align_hypothesis(spec, "third_digit_read_at_its_token", progress=False, device="cpu")
    t = r["variables"]["t"]
    # trivial by construction (t = z read at z's own embedding), and flagged so
    assert t["site"] == {"layer": 0, "component": "resid_pre", "position": "z", "trivial": True}
    assert judged_iia(t["iia"]) >= 0.9, t["iia"]
    assert min(s["iia"] for s in t["seeds"]) >= 0.9, t["seeds"]
    assert t["controls"]["random_network"]["iia"] <= 0.5
    assert judged_iia(t["iia"]) >= t["controls"]["random_network"]["iia"] + 0.4
    assert t["controls"]["random_rotation"]["iia"] <= 0.2
    grid = t["grid"]
    z = grid["positions"].index("z")
    assert grid["component"] == "resid_pre" and grid["layers"] == [0, 1, 2]
    # the search skips trivial sites: it chooses the best non-trivial one, the z token one layer on
    assert grid["chosen_site"] == {"layer": 1, "component": "resid_pre", "position": "z", "trivial": False}, grid
    # before layer 0 the value is at its token and nowhere else; after it, no longer all there
    assert grid["iia_mean"][0][z] >= 0.95, grid
    assert all(grid["iia_mean"][0][i] < 0.2 for i in range(len(grid["positions"])) if i != z), grid
    assert grid["iia_mean"][1][z] < grid["iia_mean"][0][z] - 0.1, grid

    r = align_hypothesis(spec, "comparison_at_last_token", progress=False, device="cpu")
    c = r["variables"]["c"]
    assert max(s["iia"] for s in c["seeds"]) <= 0.2, c["seeds"]
    assert max(max(x for x in row if x is not None) for row in c["grid"]["iia_mean"]) < 0.7, c["grid"]
