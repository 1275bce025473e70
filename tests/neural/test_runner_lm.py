"""Cached run-from-site on tiny random HF LMs vs the model itself, hooks and hand-written passes."""
import pytest
import torch
import torch.nn.functional as F

from abstract.neural.interventions import DAS, BoundlessDAS, LowRankRotation
from abstract.neural.runner import LMRunner, make_runner
from abstract.neural.sites import Site, gather_positions

from neural_testkit import HIDDEN, build_lm, make_batch

COMPONENTS = ["resid_pre", "resid_post", "attn_out", "mlp_out"]
LAYERS = [1, 2]  # a middle and the last of 3 blocks
ATOL = 1e-5


@pytest.fixture(scope="module")
def batches():
    return {pad: (make_batch(pad, seed=0)[0], make_batch(pad, seed=1)[0]) for pad in ("right", "left")}


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("component", COMPONENTS)
def test_cached_identity_reproduces_logits(lm, component, layer, batches):
    runner = make_runner(lm)
    assert isinstance(runner, LMRunner)
    base, _ = batches["right"]
    site = Site(layer, component, "last")
    cache = runner.prepare(base, site)
    with torch.no_grad():
        ref = runner.logits(base)
        assert torch.allclose(runner.run_from_site(cache, cache.base_act), ref, atol=ATOL)
        assert torch.allclose(runner.run_from_site(cache, lambda b: b), ref, atol=ATOL)
        # only the head at chosen positions: same numbers
        at_last = runner.run_from_site(cache, cache.base_act, logit_positions=cache.positions)
        assert torch.allclose(at_last, gather_positions(ref, cache.positions), atol=ATOL)


@pytest.mark.parametrize("padding", ["right", "left"])
@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("component", COMPONENTS)
def test_cached_matches_hook_with_das(lm, component, layer, padding, batches):
    runner = make_runner(lm)
    base, source = batches[padding]
    site = Site(layer, component, "last")
    das = DAS(HIDDEN, 6, seed=0)
    with torch.no_grad():
        src = runner.collect(source, site)
        cached = runner.run_from_site(runner.prepare(base, site), lambda b: das(b, src))
        hooked = runner.run_with_hook(base, site, lambda b: das(b, src))
        plain = runner.logits(base)
    assert torch.allclose(cached, hooked, atol=ATOL)
    assert not torch.allclose(cached, plain, atol=1e-3)  # the intervention did something


@pytest.mark.parametrize("make", [lambda: DAS(HIDDEN, 5, seed=1), lambda: LowRankRotation(HIDDEN, 3, seed=1),
                                  lambda: BoundlessDAS(HIDDEN, seed=1)])
def test_source_equal_base_leaves_logits(make, batches):
    runner = make_runner(build_lm("llama"))
    base, _ = batches["right"]
    iv = make()
    for comp in COMPONENTS:
        site = Site(1, comp, 2)
        cache = runner.prepare(base, site)
        src = runner.collect(base, site)
        with torch.no_grad():
            got = runner.run_from_site(cache, lambda b, src=src: iv(b, src))
        assert torch.allclose(got, runner.logits(base), atol=ATOL)


@pytest.mark.parametrize("padding", ["right", "left"])
def test_last_position_selects_last_real_token(lm, padding):
    runner = make_runner(lm)
    inputs, lengths = make_batch(padding, seed=3)
    seq = inputs["input_ids"].shape[1]
    expected = [n - 1 for n in lengths] if padding == "right" else [seq - 1] * len(lengths)
    with torch.no_grad():
        hs = lm(**inputs, output_hidden_states=True, use_cache=False).hidden_states
    for layer in (0, 2):
        site = Site(layer, "resid_pre", "last")
        assert runner.prepare(inputs, site).positions.tolist() == expected
        got = runner.collect(inputs, site)
        want = torch.stack([hs[layer][i, p] for i, p in enumerate(expected)])
        assert torch.allclose(got, want, atol=ATOL)
    first = runner.prepare(inputs, Site(0, "resid_pre", 0)).positions.tolist()
    assert first == ([0] * 3 if padding == "right" else [seq - n for n in lengths])


def test_collect_many_and_select(batches):
    runner = make_runner(build_lm("gpt2"))
    base, source = batches["left"]
    sites = [Site(layer, c, "last") for layer in (0, 2) for c in COMPONENTS]
    many = runner.collect_many(source, sites)
    for s in sites:
        assert torch.equal(many[s], runner.collect(source, s))
    site = Site(1, "mlp_out", -2)
    cache = runner.prepare(base, site)
    src = runner.collect(source, site)
    idx = torch.tensor([2, 0])
    with torch.no_grad():
        full = runner.run_from_site(cache, src)
        part = runner.run_from_site(cache.select(idx), src[idx])
    assert torch.allclose(part, full[idx], atol=ATOL)


def test_gradient_reaches_rotation_not_model(batches):
    lm = build_lm("qwen2")
    runner = make_runner(lm)
    base, source = batches["right"]
    site = Site(1, "resid_post", "last")
    cache, src = runner.prepare(base, site), runner.collect(source, site)
    das = LowRankRotation(HIDDEN, 4, seed=0)
    logits = runner.run_from_site(cache, lambda b: das(b, src), logit_positions=cache.positions)
    F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long)).backward()
    assert das.rotation.parametrizations.weight.original.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in lm.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_cached_matches_hook(batches):
    runner = make_runner(build_lm("llama").cuda())
    base, source = batches["left"]
    site = Site(1, "attn_out", "last")
    das = DAS(HIDDEN, 6, seed=0).cuda()
    with torch.no_grad():
        src = runner.collect(source, site)
        a = runner.run_from_site(runner.prepare(base, site), lambda b: das(b, src))
        b = runner.run_with_hook(base, site, lambda b: das(b, src))
    assert a.is_cuda and torch.allclose(a, b, atol=1e-4)
