"""Head, q/k/v and resid_mid sites on every supported family, checked by identities that hold
whatever the family's block looks like (the hand-written comparisons are in
test_heads_handwritten.py):

* base and source differ only in their last token, so after setting ``resid_mid`` at the last
  token to the source's, everything the last token computes from there on is the source's:
  the last-token logits must equal the source run's;
* all heads of a layer as one group are the attention output projection's whole input, so
  interchanging that group equals interchanging ``attn_out`` at the same token;
* a query of zero attends uniformly: with every query head of a layer set to zero at the last
  token, each head's output there is the mean of its (key-value) head's values over the prompt,
  which checks the q, v and head_out slices and the GQA head mapping of every family;
* the cached path equals the hook path for every component, with DAS, low-rank, neuron and
  full interventions on a head's vector, and gradients reach the intervention.
"""
import pytest
import torch

from abstract.neural.interventions import DAS, LowRankRotation, NeuronInterchange, VectorInterchange
from abstract.neural.runner import make_runner
from abstract.neural.sites import Site

from neural_testkit import VOCAB

PARALLEL = {"gpt_neox"}  # the testkit's NeoX uses a parallel residual: no resid_mid
INTERVENED = {"gpt2", "llama"}  # fused q/k/v and separate projections with GQA


def _pair(seed: int = 0, batch: int = 3, seq: int = 5):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (batch, seq), generator=g)
    other = ids.clone()
    other[:, -1] = (ids[:, -1] + 7) % (VOCAB - 3) + 3
    mask = torch.ones(batch, seq, dtype=torch.long)
    return {"input_ids": ids, "attention_mask": mask}, {"input_ids": other, "attention_mask": mask.clone()}


def test_resid_mid_at_last_token_carries_the_whole_last_token(lm):
    if lm.config.model_type in PARALLEL:
        pytest.skip("parallel residual: resid_mid is refused (tested in test_heads_handwritten)")
    runner = make_runner(lm)
    base, source = _pair()
    with torch.no_grad():
        want = runner.logits(source)[:, -1]
        for layer in (0, runner.n_layers - 1):
            site = Site(layer, "resid_mid", "last")
            src = runner.collect(source, site)
            got = runner.run_from_site(runner.prepare(base, site), src)[:, -1]
            assert torch.allclose(got, want, atol=1e-5), (layer, float((got - want).abs().max()))
        assert not torch.allclose(runner.logits(base)[:, -1], want, atol=1e-3)


def test_all_heads_of_a_layer_equal_attn_out(lm):
    runner = make_runner(lm)
    base, source = _pair(seed=1)
    n_heads = lm.config.num_attention_heads
    group = Site(component="head_out", position="last", heads=tuple((1, h) for h in range(n_heads)))
    attn = Site(1, "attn_out", "last")
    with torch.no_grad():
        got = runner.run_from_site(runner.prepare(base, group), runner.collect(source, group))
        want = runner.run_from_site(runner.prepare(base, attn), runner.collect(source, attn))
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(got, runner.logits(base), atol=1e-3)


@pytest.mark.parametrize("make", [lambda d: DAS(d, 2, seed=0), lambda d: LowRankRotation(d, 2, seed=0),
                                  lambda d: NeuronInterchange(d, [0, 2]), lambda d: VectorInterchange()],
                         ids=["das", "lowrank", "neurons", "full"])
def test_interventions_on_a_head_cached_equals_hooked_with_grads(lm, make):
    if lm.config.model_type not in INTERVENED:
        pytest.skip("GPT-2 (fused) and Llama (separate, GQA) here; every layout in the identities above")
    runner = make_runner(lm)
    base, source = _pair(seed=2)
    for comp in ("head_out", "q", "k", "v") + (() if lm.config.model_type in PARALLEL else ("resid_mid",)):
        site = Site(1, comp, "last", head=None if comp == "resid_mid" else 1)
        src = runner.collect(source, site)
        interv = make(src.shape[-1])
        cache = runner.prepare(base, site)
        def new(b, interv=interv, src=src):
            return interv(b, src)
        cached = runner.run_from_site(cache, new, logit_positions=cache.positions)
        hooked = runner.run_with_hook(base, site, new, logit_positions=cache.positions)
        assert torch.allclose(cached, hooked, atol=1e-5), comp
        params = [p for p in interv.parameters() if p.requires_grad]
        if params:
            cached.sum().backward()
            assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in params), comp


def test_zero_queries_attend_uniformly_to_the_values(lm):
    runner = make_runner(lm)
    cfg = lm.config
    n_heads = cfg.num_attention_heads
    n_kv = getattr(cfg, "num_key_value_heads", None) or n_heads
    seq, layer = 4, 1  # within every sliding window of the testkit (4)
    batch, _ = _pair(seed=3, seq=seq)
    queries = Site(component="q", position="last", heads=tuple((layer, h) for h in range(n_heads)))
    values = [runner.collect(batch, Site(component="v", position=p, heads=tuple((layer, h) for h in range(n_kv))))
              for p in range(seq)]
    out_proj = runner.module_for(Site(layer, "head_out", "last", head=0))
    seen = {}
    handle = out_proj.register_forward_pre_hook(lambda m, a: seen.__setitem__("z", a[0][:, -1].detach()))
    try:
        with torch.no_grad():
            zero = torch.zeros(3, runner.collect(batch, queries).shape[-1])
            runner.run_with_hook(batch, queries, zero)
    finally:
        handle.remove()
    head_dim = values[0].shape[-1] // n_kv
    want = torch.stack(values, dim=1).view(3, seq, n_kv, head_dim).mean(dim=1).repeat_interleave(n_heads // n_kv, 1)
    assert torch.allclose(seen["z"].view(3, n_heads, head_dim), want, atol=1e-5)
