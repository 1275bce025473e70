"""The base prefix forward stops at the deepest needed block; caches stay bit-identical; devices are followed."""
import pytest
import torch

from abstract.neural.prefix import last_computed_block, to_device
from abstract.neural.runner import LMRunner
from abstract.neural.sites import Site

from neural_testkit import build_lm, make_batch

FAMILIES = ["gpt2", "gemma2", "llama"]  # gemma2: per-layer sliding-window masks the suffix must replay


@pytest.fixture(scope="module", params=FAMILIES)
def runner(request):
    return LMRunner(build_lm(request.param))


def _grid(layers, components=("resid_pre", "resid_post", "attn_out", "mlp_out"), positions=("last", 0, 2)):
    return [Site(layer, c, p) for layer in layers for c in components for p in positions]


def test_last_computed_block():
    assert last_computed_block([Site(0, "resid_pre", "last")], 3) == 0  # block 0 always runs
    assert last_computed_block([Site(2, "resid_pre", "last")], 3) == 1
    assert last_computed_block([Site(1, "resid_post", 0), Site(0, "mlp_out", 0)], 3) == 1
    assert last_computed_block([Site(-1, "attn_out", 0)], 3) == 2


def test_shallow_prefix_runs_no_later_block_and_no_head(runner):
    base, _ = make_batch("right", seed=0)
    counts = {"mlp": [0] * runner.n_layers, "head": 0}
    handles = [runner.module_for(Site(i, "mlp_out", 0)).register_forward_hook(
        lambda m, a, o, i=i: counts["mlp"].__setitem__(i, counts["mlp"][i] + 1)) for i in range(runner.n_layers)]
    handles.append(runner.head.register_forward_hook(lambda m, a, o: counts.__setitem__("head", counts["head"] + 1)))
    try:
        caches = runner.prepare_many(base, [Site(0, "resid_post", "last")])
    finally:
        for h in handles:
            h.remove()
    assert counts == {"mlp": [1, 0, 0], "head": 0}
    assert all("forward" not in b.__dict__ for b in runner.blocks)  # the pass-through is undone
    # the later blocks' call arguments were still recorded: the suffix reproduces the model's logits
    cache = caches[Site(0, "resid_post", "last")]
    with torch.no_grad():
        assert torch.allclose(runner.run_from_site(cache, cache.base_act), runner.logits(base), atol=1e-5)


def test_one_grid_forward_is_bit_identical_to_one_forward_per_site(runner):
    base, _ = make_batch("left", seed=3)
    sites = _grid(range(runner.n_layers))
    together = runner.prepare_many(base, sites)
    new = torch.randn(3, together[sites[0]].base_act.shape[1], generator=torch.Generator().manual_seed(0))
    for site in sites:
        alone = runner.prepare(base, site)
        got = together[site]
        assert (got.start, got.site) == (alone.start, alone.site)
        assert torch.equal(got.base_act, alone.base_act) and torch.equal(got.hidden, alone.hidden)
        with torch.no_grad():
            assert torch.equal(runner.run_from_site(got, new), runner.run_from_site(alone, new))
    sources = runner.collect_many(base, sites)
    for site in sites:
        assert torch.equal(sources[site], together[site].base_act)


def test_to_device_walks_nested_values():
    x = {"a": (torch.ones(2), [torch.zeros(1), 3]), "b": None}
    moved = to_device(x, torch.device("cpu"))
    assert moved["a"][0] is x["a"][0] and moved["a"][1][1] == 3 and moved["b"] is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device to split a model across devices")
def test_blocks_moved_by_hand_across_devices_are_followed():
    model = build_lm("gpt2")
    ref_runner = LMRunner(model)
    base, _ = make_batch("right", seed=0)
    site = Site(0, "resid_post", "last")
    with torch.no_grad():
        ref = ref_runner.logits(base)
    model.transformer.h[1:].to("cuda")
    model.transformer.ln_f.to("cuda")
    runner = LMRunner(model)
    cache = runner.prepare(base, site)
    with torch.no_grad():
        out = runner.run_from_site(cache, cache.base_act)
    assert torch.allclose(out.cpu(), ref, atol=1e-4)  # blocks 1-2 and ln_f ran on cuda, the tied head on cpu
