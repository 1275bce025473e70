"""Head, q/k/v and resid_mid sites on every supported family, checked by identities that hold
whatever the family's block looks like (the hand-written comparisons are in
test_heads_handwritten.py):

* base and source differ only in their last token, so after setting ``resid_mid`` at the last
  token to the source's, everything the last token computes from there on is the source's:
  the last-token logits must equal the source run's;
* all heads of a layer as one group are the attention output projection's whole input, so
  interchanging that group equals interchanging ``attn_out`` at the same token;
* the cached path equals the hook path for every component, with DAS, low-rank, neuron and
  full interventions on a head's vector, and gradients reach the intervention.
"""
import pytest
import torch

from abstract.neural.interventions import DAS, LowRankRotation, NeuronInterchange, VectorInterchange
from abstract.neural.runner import make_runner
from abstract.neural.sites import Site

from neural_testkit import VOCAB

PARALLEL = {"gpt_neox"}
INTERVENED = {"gpt2", "gpt_neox", "llama", "phi3"}  # the testkit's NeoX uses a parallel residual: no resid_mid


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
        pytest.skip("one family per head layout (fused GPT-2, per-head NeoX, fused Phi-3, separate Llama)")
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
