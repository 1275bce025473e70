"""The untrained-network control re-initialises the very module the builder returned."""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from lm_kit import tiny_lm, word_tokenizer  # noqa: E402

from abstract.engine.networks import LoadedNetwork, reinitialized  # noqa: E402


def _differs(a: nn.Module, b: nn.Module) -> bool:
    return any(not torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def _same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_builders_structural_change_survives_the_control(tmp_path):
    """A builder that removed the final LayerNorm of a GPT-2 (and loaded its weights with
    from_pretrained, which flags them initialised): the control keeps the Identity, re-draws
    every weight, is seeded, and leaves the real network and the global RNG alone."""
    from transformers import AutoModelForCausalLM
    tiny_lm("gpt2", seed=3).save_pretrained(tmp_path / "m")
    lm = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    lm.transformer.ln_f = nn.Identity()
    lm.eval().requires_grad_(False)
    before = {k: v.clone() for k, v in lm.state_dict().items()}
    net = LoadedNetwork("lm", "lm", lm, {}, tokenizer=word_tokenizer())
    torch.manual_seed(0)
    rng = torch.get_rng_state()
    fresh = reinitialized(net, seed=5)
    assert torch.equal(torch.get_rng_state(), rng)
    assert isinstance(fresh.transformer.ln_f, nn.Identity)
    assert repr(fresh) == repr(lm)
    assert all(torch.equal(v, before[k]) for k, v in lm.state_dict().items())
    wte, head = fresh.transformer.wte.weight, fresh.lm_head.weight
    assert not torch.equal(wte, lm.transformer.wte.weight) and head.data_ptr() == wte.data_ptr()  # still tied
    for name, p in fresh.named_parameters():
        if p.dim() == 2:  # every weight matrix re-drawn (norm weights re-set to ones, biases to zeros)
            assert not torch.equal(p, lm.get_parameter(name)), name
    assert _same(fresh, reinitialized(net, seed=5)) and _differs(fresh, reinitialized(net, seed=6))
    assert not fresh.training and not any(p.requires_grad for p in fresh.parameters())


def test_plain_modules_are_copied_and_reset():
    model = nn.Sequential(nn.Linear(4, 8), nn.Identity(), nn.Linear(8, 2))  # a builder dropped a Tanh
    model.register_buffer("scale", torch.full((2,), 3.0))
    net = LoadedNetwork("mlp", "torch", model.eval().requires_grad_(False))
    fresh = reinitialized(net, seed=1)
    assert isinstance(fresh[1], nn.Identity) and repr(fresh) == repr(model)
    assert _differs(fresh, model) and torch.equal(fresh.scale, model.scale)
    assert _same(fresh, reinitialized(net, seed=1))
