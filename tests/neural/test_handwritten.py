"""Full-vector interchange vs forward passes written out by hand (not via the runner).

GPT-2 is written down to the matrix products; Llama-layout and GPT-NeoX models are written
at the level of their attention / MLP / norm sub-modules, with our own causal+padding mask.
A "splice" replaces the activation at (layer, component) at one token per example.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from abstract.neural.runner import make_runner
from abstract.neural.sites import Site

from neural_testkit import build_lm, make_batch

COMPONENTS = ["resid_pre", "resid_post", "attn_out", "mlp_out"]


def _mask4d(mask: torch.Tensor) -> torch.Tensor:
    seq = mask.shape[1]
    allowed = torch.tril(torch.ones(seq, seq, dtype=torch.bool))[None] & mask.bool()[:, None, :]
    return torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)[:, None]


def _splice(acts, key, record, splices):
    record[key] = acts
    if key in splices:
        pos, vec = splices[key]
        acts = acts.clone()
        acts[torch.arange(acts.shape[0]), pos] = vec
    return acts


def gpt2_by_hand(model, ids, mask, splices=None):
    splices, record = splices or {}, {}
    tr, nh = model.transformer, model.config.n_head
    B, S = ids.shape
    h = tr.wte.weight[ids] + tr.wpe.weight[torch.arange(S)][None]
    add_mask = _mask4d(mask)
    for L, blk in enumerate(tr.h):
        h = _splice(h, (L, "resid_pre"), record, splices)
        x = F.layer_norm(h, (h.shape[-1],), blk.ln_1.weight, blk.ln_1.bias, blk.ln_1.eps)
        qkv = x @ blk.attn.c_attn.weight + blk.attn.c_attn.bias
        q, k, v = (t.view(B, S, nh, -1).transpose(1, 2) for t in qkv.split(h.shape[-1], dim=2))
        w = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1]) + add_mask
        a = (w.softmax(-1) @ v).transpose(1, 2).reshape(B, S, -1)
        a = a @ blk.attn.c_proj.weight + blk.attn.c_proj.bias
        a = _splice(a, (L, "attn_out"), record, splices)
        h = h + a
        x = F.layer_norm(h, (h.shape[-1],), blk.ln_2.weight, blk.ln_2.bias, blk.ln_2.eps)
        m = F.gelu(x @ blk.mlp.c_fc.weight + blk.mlp.c_fc.bias, approximate="tanh")
        m = m @ blk.mlp.c_proj.weight + blk.mlp.c_proj.bias
        m = _splice(m, (L, "mlp_out"), record, splices)
        h = _splice(h + m, (L, "resid_post"), record, splices)
    h = F.layer_norm(h, (h.shape[-1],), tr.ln_f.weight, tr.ln_f.bias, tr.ln_f.eps)
    return h @ model.lm_head.weight.T, record


def submodules_by_hand(model, ids, mask, splices=None):
    """Llama/Qwen2/Mistral (sequential residual) and GPT-NeoX (parallel residual)."""
    splices, record = splices or {}, {}
    neox = model.config.model_type == "gpt_neox"
    base = model.gpt_neox if neox else model.model
    S = ids.shape[1]
    h = (base.embed_in if neox else base.embed_tokens)(ids)
    pos_ids = torch.arange(S)[None]
    rope = base.rotary_emb(h, pos_ids)
    add_mask = _mask4d(mask)
    for L, blk in enumerate(base.layers):
        h = _splice(h, (L, "resid_pre"), record, splices)
        attn = blk.attention if neox else blk.self_attn
        a = attn(hidden_states=blk.input_layernorm(h), attention_mask=add_mask,
                 position_embeddings=rope, position_ids=pos_ids)[0]
        a = _splice(a, (L, "attn_out"), record, splices)
        if neox:
            m = _splice(blk.mlp(blk.post_attention_layernorm(h)), (L, "mlp_out"), record, splices)
            h = h + a + m
        else:
            h = h + a
            m = _splice(blk.mlp(blk.post_attention_layernorm(h)), (L, "mlp_out"), record, splices)
            h = h + m
        h = _splice(h, (L, "resid_post"), record, splices)
    h = (base.final_layer_norm if neox else base.norm)(h)
    return model.lm_head(h), record


HAND = {"gpt2": gpt2_by_hand, "llama": submodules_by_hand, "qwen2": submodules_by_hand,
        "mistral": submodules_by_hand, "gpt_neox": submodules_by_hand}


@pytest.fixture(scope="module", params=sorted(HAND))
def family(request):
    return request.param, build_lm(request.param)


def test_hand_written_pass_matches_model(family):
    name, model = family
    inputs, _ = make_batch("right", seed=0)
    with torch.no_grad():
        mine, _ = HAND[name](model, inputs["input_ids"], inputs["attention_mask"])
        ref = model(**inputs, use_cache=False).logits
    assert torch.allclose(mine, ref, atol=1e-4)


@pytest.mark.parametrize("layer", [1, 2])
@pytest.mark.parametrize("component", COMPONENTS)
def test_interchange_matches_hand_written(family, component, layer):
    name, model = family
    base, lengths = make_batch("right", seed=0)
    source, _ = make_batch("right", seed=1)
    pos = torch.tensor([n - 1 for n in lengths])  # 'last' real token (same lengths in both)
    hand = HAND[name]
    with torch.no_grad():
        _, rec = hand(model, source["input_ids"], source["attention_mask"])
        src_vec = rec[(layer, component)][torch.arange(len(pos)), pos]
        want, _ = hand(model, base["input_ids"], base["attention_mask"], {(layer, component): (pos, src_vec)})
        runner = make_runner(model)
        site = Site(layer, component, "last")
        src = runner.collect(source, site)
        got = runner.run_from_site(runner.prepare(base, site), src)
    assert torch.allclose(src, src_vec, atol=1e-5)
    assert torch.allclose(got, want, atol=1e-4)
