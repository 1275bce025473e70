"""Head, q/k/v and resid_mid sites against attention written out by hand from the weights.

GPT-2, GPT-NeoX (sequential and parallel residual, partial rotary) and Llama with grouped-query
attention (2 key-value heads for 4 query heads) are computed here down to the projections,
rotary, the softmax and the output projection; a splice replaces one head's Dh vector (or the
residual between attention and MLP) at one token per example. The runner's collect, cached
path (prepare/run_from_site) and hook path (run_with_hook) must all reproduce it.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from abstract.neural.runner import make_runner
from abstract.neural.sites import Site, SiteError

from neural_testkit import build_lm, make_batch

TOL = 1e-5


def _mask4d(mask: torch.Tensor) -> torch.Tensor:
    seq = mask.shape[1]
    allowed = torch.tril(torch.ones(seq, seq, dtype=torch.bool))[None] & mask.bool()[:, None, :]
    return torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)[:, None]


def _rotate_half(x):
    a, b = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-b, a), dim=-1)


def _rope(x, cos, sin):  # x [B, H, S, Dh]; cos/sin [B, S, R], R <= Dh (partial rotary)
    r = cos.shape[-1]
    cos, sin = cos[:, None], sin[:, None]
    rot, keep = x[..., :r], x[..., r:]
    return torch.cat([rot * cos + _rotate_half(rot) * sin, keep], dim=-1)


class Rec:
    """Records every activation by (layer, component) and applies the requested splices:
    per head for q/k/v/head_out (tensors [B, S, H, Dh]), whole vector for resid_mid."""

    def __init__(self, splices=None):
        self.splices, self.acts = splices or {}, {}

    def __call__(self, layer, comp, t):
        self.acts[(layer, comp)] = t
        for (la, c, head), (pos, vec) in self.splices.items():
            if (la, c) != (layer, comp):
                continue
            t = t.clone()
            rows = torch.arange(t.shape[0])
            if head is None:
                t[rows, pos] = vec
            else:
                t[rows, pos, head] = vec
        return t


def _attend(q, k, v, mask, n_heads):  # q [B,S,H,Dh] k/v [B,S,KV,Dh] (after rotary where applied)
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    rep = n_heads // k.shape[1]
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    w = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1]) + _mask4d(mask)
    return (w.softmax(-1) @ v).transpose(1, 2)  # [B, S, H, Dh]


def gpt2_by_hand(model, ids, mask, rec):
    tr, nh = model.transformer, model.config.n_head
    B, S = ids.shape
    h = tr.wte.weight[ids] + tr.wpe.weight[torch.arange(S)][None]
    for L, blk in enumerate(tr.h):
        x = F.layer_norm(h, (h.shape[-1],), blk.ln_1.weight, blk.ln_1.bias, blk.ln_1.eps)
        qkv = x @ blk.attn.c_attn.weight + blk.attn.c_attn.bias
        q, k, v = (rec(L, c, t.view(B, S, nh, -1)) for c, t in zip("qkv", qkv.split(h.shape[-1], dim=2)))
        z = rec(L, "head_out", _attend(q, k, v, mask, nh))
        h = rec(L, "resid_mid", h + z.reshape(B, S, -1) @ blk.attn.c_proj.weight + blk.attn.c_proj.bias)
        x = F.layer_norm(h, (h.shape[-1],), blk.ln_2.weight, blk.ln_2.bias, blk.ln_2.eps)
        m = F.gelu(x @ blk.mlp.c_fc.weight + blk.mlp.c_fc.bias, approximate="tanh")
        h = h + m @ blk.mlp.c_proj.weight + blk.mlp.c_proj.bias
    h = F.layer_norm(h, (h.shape[-1],), tr.ln_f.weight, tr.ln_f.bias, tr.ln_f.eps)
    return h @ model.lm_head.weight.T


def neox_by_hand(model, ids, mask, rec):
    base, cfg = model.gpt_neox, model.config
    nh = cfg.num_attention_heads
    B, S = ids.shape
    h = base.embed_in(ids)
    cos, sin = base.rotary_emb(h, torch.arange(S)[None])
    for L, blk in enumerate(base.layers):
        at = blk.attention
        x = blk.input_layernorm(h)
        qkv = (x @ at.query_key_value.weight.T + at.query_key_value.bias).view(B, S, nh, -1)
        q, k, v = (rec(L, c, t) for c, t in zip("qkv", qkv.chunk(3, dim=-1)))
        q, k = (_rope(t.transpose(1, 2), cos, sin).transpose(1, 2) for t in (q, k))
        z = rec(L, "head_out", _attend(q, k, v, mask, nh))
        a = z.reshape(B, S, -1) @ at.dense.weight.T + at.dense.bias
        if cfg.use_parallel_residual:
            h = h + a + blk.mlp(blk.post_attention_layernorm(h))
        else:
            h = rec(L, "resid_mid", h + a)
            h = h + blk.mlp(blk.post_attention_layernorm(h))
    return model.lm_head(base.final_layer_norm(h))


def llama_by_hand(model, ids, mask, rec):
    base, cfg = model.model, model.config
    nh = cfg.num_attention_heads
    B, S = ids.shape
    h = base.embed_tokens(ids)
    cos, sin = base.rotary_emb(h, torch.arange(S)[None])
    for L, blk in enumerate(base.layers):
        at = blk.self_attn
        x = blk.input_layernorm(h)
        q, k, v = (rec(L, c, (x @ getattr(at, f"{c}_proj").weight.T).view(B, S, -1, at.head_dim)) for c in "qkv")
        q, k = (_rope(t.transpose(1, 2), cos, sin).transpose(1, 2) for t in (q, k))
        z = rec(L, "head_out", _attend(q, k, v, mask, nh))
        h = rec(L, "resid_mid", h + z.reshape(B, S, -1) @ at.o_proj.weight.T)
        h = h + blk.mlp(blk.post_attention_layernorm(h))
    return model.lm_head(base.norm(h))


def _neox(parallel: bool):
    import transformers as T
    cfg = T.GPTNeoXConfig(num_hidden_layers=3, hidden_size=16, num_attention_heads=4, vocab_size=64,
                          intermediate_size=32, max_position_embeddings=32, rotary_pct=0.5,
                          use_parallel_residual=parallel)
    torch.manual_seed(0)
    model = T.AutoModelForCausalLM.from_config(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.mul_(3.0)
    return model.requires_grad_(False)


MODELS = {"gpt2": (lambda: build_lm("gpt2"), gpt2_by_hand),
          "neox_sequential": (lambda: _neox(False), neox_by_hand),
          "neox_parallel": (lambda: _neox(True), neox_by_hand),
          "llama_gqa": (lambda: build_lm("llama"), llama_by_hand)}
_BUILT: dict = {}


@pytest.fixture(scope="module", params=sorted(MODELS))
def family(request):
    name = request.param
    if name not in _BUILT:
        _BUILT[name] = MODELS[name][0]()
    return name, _BUILT[name], MODELS[name][1]


def test_hand_written_pass_matches_model(family):
    name, model, hand = family
    inputs, _ = make_batch("right", seed=0)
    with torch.no_grad():
        mine = hand(model, inputs["input_ids"], inputs["attention_mask"], Rec())
        ref = model(**inputs, use_cache=False).logits
    assert torch.allclose(mine, ref, atol=1e-4)


def _cases(name):
    kv = 2 if name == "llama_gqa" else 4
    out = [("head_out", 3), ("head_out", 0), ("q", 3), ("k", kv - 1), ("v", kv - 1), ("v", 0)]
    if name != "neox_parallel":
        out.append(("resid_mid", None))
    return out


@pytest.mark.parametrize("layer", [0, 2])
def test_head_sites_match_hand_written(family, layer):
    name, model, hand = family
    base, lengths = make_batch("right", seed=0)
    source, _ = make_batch("right", seed=1)
    pos = torch.tensor([n - 1 for n in lengths])
    rows = torch.arange(len(pos))
    runner = make_runner(model)
    for comp, head in _cases(name):
        key = (layer, comp, head)
        with torch.no_grad():
            src_rec, base_rec = Rec(), Rec()
            hand(model, source["input_ids"], source["attention_mask"], src_rec)
            hand(model, base["input_ids"], base["attention_mask"], base_rec)
            src_full = src_rec.acts[(layer, comp)][rows, pos]
            src_vec = src_full if head is None else src_full[:, head]
            base_full = base_rec.acts[(layer, comp)][rows, pos]
            base_vec = base_full if head is None else base_full[:, head]
            want = hand(model, base["input_ids"], base["attention_mask"], Rec({key: (pos, src_vec)}))
            site = Site(layer, comp, "last", head=head)
            src = runner.collect(source, site)
            cache = runner.prepare(base, site)
            cached = runner.run_from_site(cache, src)
            hooked = runner.run_with_hook(base, site, src)
        assert torch.allclose(src, src_vec, atol=TOL), (comp, head)
        assert torch.allclose(cache.base_act, base_vec, atol=TOL), (comp, head)
        assert torch.allclose(cached, want, atol=TOL * 10), (comp, head, float((cached - want).abs().max()))
        assert torch.allclose(hooked, want, atol=TOL * 10), (comp, head)
        assert not torch.allclose(want, base_rec_logits(hand, model, base), atol=1e-4), "splice had no effect"


def base_rec_logits(hand, model, base):
    with torch.no_grad():
        return hand(model, base["input_ids"], base["attention_mask"], Rec())


def test_head_group_across_layers_matches_hand_written(family):
    """A group [0.1, 2.3] is one vector: both heads take the source's value (read from clean runs)."""
    name, model, hand = family
    base, lengths = make_batch("right", seed=0)
    source, _ = make_batch("right", seed=1)
    pos = torch.tensor([n - 1 for n in lengths])
    rows = torch.arange(len(pos))
    runner = make_runner(model)
    group = ((2, 3), (0, 1))  # listed out of layer order on purpose: the vector keeps the listed order
    with torch.no_grad():
        rec = Rec()
        hand(model, source["input_ids"], source["attention_mask"], rec)
        vecs = [rec.acts[(la, "head_out")][rows, pos, hd] for la, hd in group]
        want = hand(model, base["input_ids"], base["attention_mask"],
                    Rec({(la, "head_out", hd): (pos, v) for (la, hd), v in zip(group, vecs)}))
        site = Site(component="head_out", position="last", heads=group)
        src = runner.collect(source, site)
        got = runner.run_from_site(runner.prepare(base, site), src)
        hooked = runner.run_with_hook(base, site, src)
    assert site.layer == 0 and src.shape[-1] == 2 * vecs[0].shape[-1]
    assert torch.allclose(src, torch.cat(vecs, dim=-1), atol=TOL)
    assert torch.allclose(got, want, atol=TOL * 10)
    assert torch.allclose(hooked, want, atol=TOL * 10)


def test_head_ranges_and_parallel_residual_are_site_errors(family):
    name, model, _ = family
    runner = make_runner(model)
    batch, _ = make_batch("right", seed=0)
    with pytest.raises(SiteError, match="head 4 out of range"):
        runner.collect(batch, Site(1, "head_out", "last", head=4))
    if name == "llama_gqa":  # 4 query heads, 2 key-value heads
        runner.collect(batch, Site(1, "q", "last", head=3))
        with pytest.raises(SiteError, match="2 key-value heads"):
            runner.collect(batch, Site(1, "k", "last", head=2))
    if name == "neox_parallel":
        with pytest.raises(SiteError, match="use_parallel_residual"):
            runner.prepare(batch, Site(1, "resid_mid", "last"))
