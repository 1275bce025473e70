"""The engine's language-model path on tiny code-built models (no downloads).

The copy task (``y = a``) makes the expected IIA known by construction: a full-vector
interchange of the residual stream entering layer 0 at the token of slot ``{a}`` is the same as
running the network on the prompt with ``a`` replaced, so IIA equals the trained network's
task accuracy (1.0). The same interchange at the ``{b}`` slot leaves the answer at the base's
``a``, so it scores near chance (1/6): the test cannot pass by accident.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from lm_kit import COPY_MODEL, tiny_lm, train_copy, word_tokenizer  # noqa: E402

from abstract.engine.align import align_hypothesis  # noqa: E402
from abstract.engine.data import encode_pairs, make_splits  # noqa: E402
from abstract.engine.encoders import make_encoder  # noqa: E402
from abstract.engine.networks import LoadedNetwork  # noqa: E402
from abstract.language.errors import SpecError  # noqa: E402
from abstract.engine.train import predict, predict_uncached, prepare_site  # noqa: E402
from abstract.language import compile_text  # noqa: E402
from abstract.neural.interventions import VectorInterchange  # noqa: E402
from abstract.neural.runner import make_runner  # noqa: E402
from abstract.neural.sites import Site  # noqa: E402

NET = '{ prompt "{a} {b} =", answer " {y}" }'


@pytest.fixture(scope="module")
def copy_lm_dir(tmp_path_factory):
    """A tiny GPT-2 trained on the copy task, saved with save_pretrained (loaded by `hf "dir"`)."""
    tok = word_tokenizer()
    model = tiny_lm("gpt2")
    assert train_copy(model, tok, steps=200) == 1.0
    out = tmp_path_factory.mktemp("lm") / "copy-gpt2"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _spec(tmp_path, lm_dir, body: str):
    text = COPY_MODEL + f'network lm = hf "{lm_dir}" {NET}\n' + body
    return compile_text(text, str(tmp_path / "copy.causal"))


def test_full_interchange_at_slot_is_exact(tmp_path, copy_lm_dir):
    spec = _spec(tmp_path, copy_lm_dir, """
hypothesis at_a : Copy ~ lm {
    align a to layer 0 component resid_pre position a via full()
    train samples 40, epochs 1, batch 16, seeds 1
    data test 300, dev 40
}
hypothesis at_b : Copy ~ lm {
    align a to layer 0 component resid_pre position b via full()
    train samples 40, epochs 1, batch 16, seeds 1
    data test 300, dev 40
}
""")
    right = align_hypothesis(spec, "at_a", progress=False, device="cpu")
    wrong = align_hypothesis(spec, "at_b", progress=False, device="cpu")
    r, w = right["variables"]["a"], wrong["variables"]["a"]
    assert r["iia"]["correct"] == r["iia"]["n"] == 300
    assert w["iia"]["max"] < 0.4
    # found per prompt; a's own token before layer 0 realises a by construction: flagged trivial
    assert r["site"] == {"layer": 0, "component": "resid_pre", "position": "a", "trivial": True}
    assert w["site"]["position"] == "b"


def test_das_search_over_layers_and_positions(tmp_path, copy_lm_dir):
    spec = _spec(tmp_path, copy_lm_dir, """
hypothesis das_a : Copy ~ lm {
    align a via das(dim=4)
    search layer 0..1, position [a, last], component resid_pre
    train samples 64, epochs 1, batch 32, seeds 2
    data test 60, dev 60
    control random_rotation, random_network
}
""")
    res = align_hypothesis(spec, "das_a", progress=False, device="cpu")
    v = res["variables"]["a"]
    g = v["grid"]
    assert g["layers"] == [0, 1] and g["positions"] == ["a", "last"]
    assert g["position_tokens"][1] == "="
    assert len(g["iia_mean"]) == 2 and all(len(row) == 2 for row in g["iia_mean"])
    assert v["site"]["position"] in ("a", "last") and len(v["seeds"]) == 2
    assert set(v["controls"]) == {"random_rotation", "random_network"}
    assert v["intervention"]["kind"] == "das" and v["intervention"]["dim"] == 4


@pytest.mark.parametrize("family", ["gpt2", "gpt_neox", "llama", "qwen2"])
def test_interchange_equals_counterfactual_prompt(family):
    """On untrained models of each family: the engine's full interchange at resid_pre 0 on the
    {a} token gives the same class scores as running the prompt with a replaced, cached and
    uncached alike."""
    from abstract.language import compile_text as ct
    model = ct(COPY_MODEL).models["Copy"]
    tok = word_tokenizer()
    lm = tiny_lm(family, seed=1).requires_grad_(False)
    net = LoadedNetwork("lm", "lm", lm, {"prompt": "{a} {b} =", "answer": " {y}"}, tokenizer=tok)
    enc = make_encoder(net, model)
    runner = make_runner(lm)
    examples = make_splits(model, "a", 8, 8, 24, seed=3)["test"]
    pairs = encode_pairs(examples, "a", enc)
    site = Site(layer=0, component="resid_pre", position=enc.site_position("a", examples[0:1] and [examples[0].base]))
    sd = prepare_site(runner, site, pairs)
    interv = VectorInterchange()
    out = runner.run_from_site(sd.cache, lambda b: interv(b, sd.source), logit_positions=sd.logit_pos)
    cached = enc.class_logits(out)
    cf_inputs = [{"a": ex.sources["a"]["a"], "b": ex.base["b"]} for ex in examples]
    cf = enc.encode(cf_inputs)
    ref = enc.class_logits(runner.logits(cf, enc.logit_positions(cf)))
    assert torch.allclose(cached, ref, atol=1e-4)
    assert torch.equal(predict(runner, enc, sd, interv), predict_uncached(runner, enc, pairs, site, interv))


@pytest.mark.parametrize("family, component", [("gpt2", "resid_post"), ("llama", "mlp_out"), ("gpt_neox", "attn_out")])
def test_stacked_row_training_equals_training_each_position(family, component):
    """A grid row trained in one stacked pass (batched.py) takes the same Adam steps as
    training each position on its own: same losses and same rotations, to float tolerance."""
    from abstract.engine.batched import train_stacked
    from abstract.hypothesis.plan import InterventionPlan, TrainPlan
    from abstract.engine.train import make_intervention, prepare_sites, train_intervention
    from abstract.language import compile_text as ct
    model = ct(COPY_MODEL).models["Copy"]
    lm = tiny_lm(family, seed=2).requires_grad_(False)
    net = LoadedNetwork("lm", "lm", lm, {"prompt": "{a} {b} =", "answer": " {y}"}, tokenizer=word_tokenizer())
    enc, runner = make_encoder(net, model), make_runner(lm)
    pairs = encode_pairs(make_splits(model, "a", 48, 8, 8, seed=1)["train"], "a", enc)
    sites = [Site(layer=0, component=component, position=enc.site_position(p)) for p in ("a", "b", "last")]
    tp, ip = TrainPlan(samples=48, epochs=2, batch=16, lr=0.01), InterventionPlan("das", 3)
    stacked = [make_intervention(ip, 32, seed=5) for _ in sites]
    losses = train_stacked(runner, enc, prepare_sites(runner, sites, pairs), stacked, tp, seed=5)
    for site, interv, site_losses in zip(sites, stacked, losses):
        alone = make_intervention(ip, 32, seed=5)
        alone_losses = train_intervention(runner, enc, prepare_site(runner, site, pairs), alone, tp, seed=5)
        assert len(site_losses) == len(alone_losses) == 6
        assert site_losses == pytest.approx(alone_losses, abs=1e-5)
        assert torch.allclose(interv.basis, alone.basis, atol=1e-5)
        assert not torch.allclose(interv.basis, make_intervention(ip, 32, seed=5).basis, atol=1e-3)  # it trained


def test_joint_alignment_on_a_language_model(tmp_path, copy_lm_dir):
    """`train ... joint true` with explicit sites on an LM (it used to crash encoding the empty
    per-variable training set): one shared basis at the last token, multi-source pairs, the
    document shape of the joint path, and a's block carries a (the network copies a)."""
    spec = _spec(tmp_path, copy_lm_dir, """
hypothesis joint_ab : Copy ~ lm {
    align a to layer 1 position last via das(dim=4)
    align b to layer 1 position -1 via das(dim=2)
    train samples 192, epochs 4, batch 32, lr 0.01, seeds 1, joint true
    data test 60, dev 30
    control random_network
}
""")
    r = align_hypothesis(spec, "joint_ab", progress=False, device="cpu")
    assert r["train"]["joint"] is True and r["dataset"]["joint"]["a,b"]["test"] == 60
    assert r["dataset"]["train"] == r["dataset"]["joint"]["a,b"]["train"] > 0
    for v, block in (("a", [0, 4]), ("b", [4, 6])):
        e = r["variables"][v]
        assert e["joint"] == {"group": ["a", "b"], "block": block, "training": "multi_source"}
        assert e["site"]["layer"] == 1 and e["intervention"]["parametrization"] == "multi_variable"
        assert e["iia"]["n"] == 60 and e["controls"]["random_network"]["n"] == 60
    j = r["multi"]["joint"]["a,b"]
    assert j["n"] == 60 and j["site"] == {"layer": 1, "component": "resid_post", "position": "last"}
    assert r["variables"]["a"]["iia"]["max"] >= 0.5, r["variables"]["a"]  # chance is 1/6


@pytest.mark.parametrize("line, needle, fragment", [
    ("align a to layer 0 position c", "position c", "position `c` is not `last`, `first` or a slot"),
    ("align a to layer 0 position 4", "position 4", "position 4 is outside the prompt: the shortest prompt has 3"),
    ("align a to layer 0\n    search layer 0..1, position [a, -5]", "position [a, -5]", "position -5 is outside"),
    ("align a to layer 2", "layer 2", "layer 2 is out of range: the network has 2 layers"),
])
def test_lm_site_problems_are_located_before_any_training(tmp_path, line, needle, fragment):
    """An unknown slot is a compile error of the plan; the rest need the loaded network (AlignmentError)."""
    lm = tiny_lm("gpt2", seed=1).requires_grad_(False)
    net = LoadedNetwork("lm", "lm", lm, {"prompt": "{a} {b} =", "answer": " {y}"}, tokenizer=word_tokenizer())
    head = COPY_MODEL + f'network lm = hf "unused" {NET}\n'
    text = head + f"hypothesis h : Copy ~ lm {{\n    {line}\n    train samples 16, seeds 1\n}}\n"
    with pytest.raises(SpecError) as err:
        spec = compile_text(text, str(tmp_path / "copy.causal"))
        align_hypothesis(spec, "h", progress=False, device="cpu", network=net)
    assert fragment in err.value.message
    before = text[:text.index(needle)]
    assert (err.value.pos.line, err.value.pos.column) == (before.count("\n") + 1, len(before) - before.rfind("\n"))


def test_a_grid_without_positions_searches_the_align_lines_position(tmp_path):
    """`position 0` on the align line is the first token, not "no position" (it was read as `last`)."""
    from abstract.engine.run import HypothesisRun
    lm = tiny_lm("gpt2", seed=1).requires_grad_(False)
    net = LoadedNetwork("lm", "lm", lm, {"prompt": "{a} {b} =", "answer": " {y}"}, tokenizer=word_tokenizer())
    text = COPY_MODEL + f'network lm = hf "unused" {NET}\n' + """
hypothesis h : Copy ~ lm {
    align a to layer 0 position 0
    search layer 0..1
}
"""
    run = HypothesisRun(compile_text(text, str(tmp_path / "copy.causal")), "h", progress=False, device="cpu",
                        network=net)
    run.load()
    run.resolve_sites()
    assert run.sites["a"].positions == (0,) and run.sites["a"].layers == (0, 1)
    assert run.sites["a"].align_site.position == 0
