"""The shipped tiny IOI case: specs/ioi_tiny.causal on the GPT-2 that specs/models/ioi_lm.py trains.

Fast tests check the plumbing with a barely trained model (``steps 2``): the prompts and their
answers, the word-level tokenizer (one token per name, the template's slots where the spec
expects them), the builder's cache, and that the spec compiles and aligns end to end with tiny
settings. The slow test runs the real spec (the model's training included) and checks the
measured figures.
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
SPEC = ROOT / "specs" / "ioi_tiny.causal"
BUILDER = ROOT / "specs" / "models" / "ioi_lm.py"
OPTIONS = "names 16, layers 3"
TINY = dict(samples=32, epochs=1, batch=16, seeds=1, dev=16, test=24, search=False, min_accuracy=0)


def _builder():
    spec = importlib.util.spec_from_file_location("ioi_lm_builder_under_test", BUILDER)
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
    assert OPTIONS in text
    return text.replace(OPTIONS, f"{OPTIONS}, steps {steps}").replace(
        '"models/ioi_lm.py:build"', f'"{BUILDER}:build"')


def test_prompts_answer_the_name_that_is_not_repeated():
    ioi = _builder()
    rows = ioi.prompts(names=3, templates=[0])
    assert len(rows) == 3 * 3 * 2
    assert ("When Alice and Bob went to the store, Bob gave a drink to", "Alice") in rows
    assert ("When Alice and Bob went to the store, Alice gave a drink to", "Bob") in rows
    assert ("When Carol and Carol went to the store, Carol gave a drink to", "Carol") in rows
    for prompt, answer in ioi.prompts(names=4):
        a, b, s = [w for w in ioi.words(prompt) if w in ioi.NAMES]
        assert s in (a, b) and answer in (a, b)
        assert answer != s or a == b
    # the spec renders the builder's first template, with the same names in the same order
    text = SPEC.read_text()
    assert ioi.TEMPLATES[0].format(a="{name_a}", b="{name_b}", s="{subject}") in text
    assert "{ 0: Alice, 1: Bob, 2: Carol, 3: Dave, 4: Eve, 5: Frank, 6: Grace, 7: Heidi }" in text
    assert ioi.NAMES[:8] == ["Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Heidi"]


def test_tokenizer_is_word_level_with_one_token_per_name():
    ioi = _builder()
    tok = ioi.make_tokenizer(16)
    prompt = "When Alice and Bob went to the store, Bob gave a drink to"
    assert tok.convert_ids_to_tokens(tok(prompt)["input_ids"]) == [
        "When", "Alice", "and", "Bob", "went", "to", "the", "store", ",", "Bob", "gave", "a", "drink", "to"]
    for name in ioi.NAMES:
        assert tok(" " + name, add_special_tokens=False)["input_ids"] == [tok.convert_tokens_to_ids(name)]
    assert tok.unk_token_id not in tok(" ".join(t.format(a="Eve", b="Wendy", s="Eve") for t in ioi.TEMPLATES))[
        "input_ids"]


def test_builder_caches_a_save_pretrained_folder(cache_dir):
    ioi = _builder()
    model, tok = ioi.build(steps=2)
    folders = list((cache_dir / "models").glob("ioi_lm-*"))
    assert len(folders) == 1 and (folders[0] / "config.json").is_file()
    assert (folders[0] / "tokenizer.json").is_file()
    assert model.config.model_type == "gpt2" and model.config.n_layer == 3 and model.config.n_head == 4
    assert model.config.abstract_training["steps"] == 2
    t = time.time()
    again, _ = ioi.build(steps=2)
    assert time.time() - t < 10
    for (n, p), (_, q) in zip(model.named_parameters(), again.named_parameters()):
        assert torch.equal(p, q), n
    with pytest.raises(ValueError, match="names"):
        ioi.build(names=1, steps=2)


def test_spec_compiles_and_aligns_with_tiny_settings(cache_dir, tmp_path):
    spec = compile_text(_spec_text(2), str(tmp_path / "ioi_tiny.causal"))
    assert set(spec.models) == {"IOI"}
    names = [h.name for h in spec.hypotheses]
    assert "answer_at_second_name" in names
    r = align_hypothesis(spec, "answer_at_second_name", progress=False, device="cpu", overrides=TINY)
    v = r["variables"]["io"]
    assert v["site"] == {"layer": 2, "component": "resid_pre", "position": "name_b", "trivial": False}
    assert set(v["controls"]) == {"random_rotation"}


@pytest.mark.slow
def test_shipped_spec_targets():
    """The real spec (the model trained here if not cached, about a minute; the whole test a few
    minutes on 2 CPU cores).

    Measured (seeds 0-1, 1000 held-out informative pairs, builder seed 0): io at the last
    token after layer 2 0.999 / 1.000; the grid after layer 0 / 1 / 2 at the last token 0.30 /
    0.72 / 1.00, at the name tokens at most 0.06; untrained-network control 0.126, random
    rotation 0.001. At the second name's token (it has not seen the repeated name) 0.012."""
    spec = load_spec(SPEC)
    r = align_hypothesis(spec, "answer_by_the_last_layer", progress=False, device="cpu")
    io = r["variables"]["io"]
    assert io["site"] == {"layer": 2, "component": "resid_post", "position": "last", "trivial": False}
    assert judged_iia(io["iia"]) >= 0.95 and min(s["iia"] for s in io["seeds"]) >= 0.95, io["seeds"]
    assert io["controls"]["random_network"]["iia"] <= 0.4
    assert io["controls"]["random_rotation"]["iia"] <= 0.1
    grid = io["grid"]
    assert grid["positions"] == ["name_a", "name_b", "subject", "last"] and grid["layers"] == [0, 1, 2]
    last = grid["positions"].index("last")
    column = [row[last] for row in grid["iia_mean"]]
    assert column[0] < column[1] < column[2], grid  # assembled at the last token, layer by layer
    assert column[0] <= 0.6 and column[2] >= 0.95, grid
    assert all(row[i] <= 0.2 for row in grid["iia_mean"] for i in range(last)), grid  # never at the names

    r = align_hypothesis(spec, "answer_at_second_name", progress=False, device="cpu")
    assert max(s["iia"] for s in r["variables"]["io"]["seeds"]) <= 0.1


@pytest.mark.slow
def test_shipped_head_hypotheses():
    """Measured (seeds 0-1, 1000 held-out informative pairs): the nine heads [0.0-0.3, 1.0, 1.1,
    2.0, 2.1, 2.3] at the last token 1.000 / 1.000 (untrained network 0.133, random rotation
    0.000); every head alone at most 0.066 (the layer x head grid); the five name movers alone
    0.349 / 0.359."""
    spec = load_spec(SPEC)
    r = align_hypothesis(spec, "names_and_movers", progress=False, device="cpu")
    io = r["variables"]["io"]
    assert io["site"]["heads"] == [[0, 0], [0, 1], [0, 2], [0, 3], [1, 0], [1, 1], [2, 0], [2, 1], [2, 3]]
    assert min(s["iia"] for s in io["seeds"]) >= 0.95, io["seeds"]
    assert io["controls"]["random_network"]["iia"] <= 0.4 and io["controls"]["random_rotation"]["iia"] <= 0.1
    grid = io["grid"]
    assert grid["component"] == "head_out" and grid["layers"] == [0, 1, 2] and grid["heads"] == [0, 1, 2, 3]
    assert max(max(row) for row in grid["iia_mean"]) <= 0.3, grid  # no head carries the answer alone

    r = align_hypothesis(spec, "name_movers_alone", progress=False, device="cpu")
    seeds = [s["iia"] for s in r["variables"]["io"]["seeds"]]
    assert 0.1 <= min(seeds) and max(seeds) <= 0.6, seeds

    r = align_hypothesis(spec, "heads_without_last_mlp", progress=False, device="cpu")
    held = r["variables"]["io"]
    assert r["holds"][0]["text"] == "hold component mlp_out, layer 2"
    assert min(s["iia"] for s in held["seeds"]) >= 0.95, held["seeds"]  # measured 1.000 / 1.000
