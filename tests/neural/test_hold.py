"""Path patching (held sites) against path patching written by hand with our own hooks.

The reference never goes through a runner: it records the base outputs of the held modules
with plain ``register_forward_hook`` calls, then runs the base batch with the site set to the
source value and those modules forced to their recorded outputs.
"""
import pytest
import torch
from torch import nn

from abstract.neural.cache import stack_caches
from abstract.neural.hold import HoldingRunner, downstream, holding
from abstract.neural.runner import make_runner
from abstract.neural.sites import Site, gather_positions, resolve_positions

from neural_testkit import VOCAB, make_batch

LAYERS = 12


@pytest.fixture(scope="module")
def gpt2():
    import transformers as T
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: threads only contend
    cfg = T.GPT2Config(n_layer=LAYERS, n_embd=16, n_head=4, vocab_size=VOCAB, n_positions=32, bos_token_id=1,
                       eos_token_id=2)
    torch.manual_seed(0)
    model = T.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.mul_(3.0)
    yield model.requires_grad_(False)
    torch.set_num_threads(threads)


def _last(batch):
    ids, mask = batch["input_ids"], batch["attention_mask"]
    return resolve_positions("last", mask, ids.shape[1], ids.shape[0])


def _module(model, layer, component):
    block = model.transformer.h[layer]
    return {"attn_out": block.attn, "mlp_out": block.mlp, "resid_post": block}[component]


def _first(o):
    return o[0] if isinstance(o, tuple) else o


def _put(o, new):
    return (new, *o[1:]) if isinstance(o, tuple) else new


def by_hand(model, base, source, site, holds, pos_of):
    """Logits at the last base token: ``site`` (layer, component, position) set to its source
    value, every (layer, component, position-or-None) in ``holds`` forced to its base value."""
    layer, comp, position = site
    if comp == "resid_pre":  # the residual entering block L is block L-1's output
        layer, comp = layer - 1, "resid_post"
    handles, recorded = [], {}
    try:
        for h in holds:
            m = _module(model, h[0], h[1])
            handles.append(m.register_forward_hook(lambda m, a, o, h=h: recorded.__setitem__(h, _first(o).clone())))
        ref_base = model(**base).logits
        for x in handles:
            x.remove()
        handles = []
        grabbed = {}
        m = _module(model, layer, comp)
        handles.append(m.register_forward_hook(lambda m, a, o: grabbed.__setitem__("src", _first(o).clone())))
        model(**source)
        handles.pop().remove()
        src = gather_positions(grabbed["src"], pos_of(source, position))
        bpos = pos_of(base, position)

        def splice(m, a, o):
            out = _first(o).clone()
            out[torch.arange(out.shape[0]), bpos] = src
            return _put(o, out)
        handles.append(m.register_forward_hook(splice))
        for h in holds:
            def force(m, a, o, h=h):
                if h[2] is None:
                    return _put(o, recorded[h])
                out = _first(o).clone()
                p = pos_of(base, h[2])
                out[torch.arange(out.shape[0]), p] = recorded[h][torch.arange(out.shape[0]), p]
                return _put(o, out)
            handles.append(_module(model, h[0], h[1]).register_forward_hook(force))
        logits = model(**base).logits
    finally:
        for x in handles:
            x.remove()
    rows = torch.arange(logits.shape[0])
    last = _last(base)
    return logits[rows, last], ref_base[rows, last]


def _pos_of(batch, position):
    ids, mask = batch["input_ids"], batch["attention_mask"]
    return resolve_positions(position, mask, ids.shape[1], ids.shape[0])


def _runner_logits(runner, base, source, site, path):
    src = runner.collect(source, site)
    last = _last(base)
    if path == "cached":
        cache = runner.prepare(base, site)
        return runner.run_from_site(cache, src, logit_positions=last)
    return runner.run_with_hook(base, site, src, logit_positions=last)


CASES = [  # (site, holds): the case first, then other components, positions and padding
    (("resid_post", 4, "last"), [(10, "attn_out", None), (11, "attn_out", None)]),
    (("resid_pre", 9, "last"), [(9, "mlp_out", None), (10, "attn_out", None), (11, "mlp_out", None)]),
    (("attn_out", 7, 2), [(7, "mlp_out", None), (9, "attn_out", "last")]),
    (("mlp_out", 2, "first"), [(3, "attn_out", 3), (10, "attn_out", None), (11, "attn_out", None)]),
]


@pytest.mark.parametrize("case,padding", [(0, "right"), (0, "left"), (1, "right"), (2, "left"), (3, "right"),
                                          (3, "left")])
def test_holding_matches_hand_written_path_patching(gpt2, case, padding):
    (comp, layer, position), holds = CASES[case]
    base, _ = make_batch(padding, seed=0, batch=4, seq=7)
    source, _ = make_batch(padding, seed=1, batch=4, seq=7)
    want, _ = by_hand(gpt2, base, source, (layer, comp, position), holds, _pos_of)
    runner = make_runner(gpt2)
    held = HoldingRunner(runner, [Site(layer=L, component=c, position=p) for L, c, p in holds])
    site = Site(layer=layer, component=comp, position=position)
    for path in ("cached", "hook"):
        got = _runner_logits(held, base, source, site, path)
        assert torch.allclose(got, want, atol=1e-5), (path, (got - want).abs().max())
    # the holds matter here: the same intervention without them gives other logits
    free, _ = by_hand(gpt2, base, source, (layer, comp, position), [], _pos_of)
    assert (free - want).abs().max() > 1e-3


def test_holding_nothing_is_todays_result_bit_for_bit(gpt2):
    base, _ = make_batch("right", seed=0, batch=4, seq=7)
    source, _ = make_batch("right", seed=1, batch=4, seq=7)
    runner = make_runner(gpt2)
    assert holding(runner, []) is runner
    site = Site(layer=5, component="attn_out", position="last")
    for path in ("cached", "hook"):
        today = _runner_logits(runner, base, source, site, path)
        wrapped = _runner_logits(HoldingRunner(runner, []), base, source, site, path)
        assert torch.equal(today, wrapped)


def test_holding_every_later_attention_cuts_a_site_off_the_last_token(gpt2):
    """Exactly zero effect: the site is the residual at the *first* token after block 3, the
    logits are read at the last token. A token's residual changes only through attention (the
    MLPs, norms and the unembedding act on each token alone), so with every attention output of
    blocks 4..11 held at base, at every token, the last token's computation sees exactly its base
    inputs: its logits are the base logits. (Holding only the MLPs would not do: attention
    carries the change.)"""
    base, _ = make_batch("right", seed=0, batch=4, seq=7)
    source, _ = make_batch("right", seed=1, batch=4, seq=7)
    runner = make_runner(gpt2)
    site = Site(layer=3, component="resid_post", position="first")
    base_logits = runner.logits(base, _last(base))
    free = _runner_logits(runner, base, source, site, "cached")
    assert (free - base_logits).abs().max() > 1e-2  # the intervention does reach the last token
    held = HoldingRunner(runner, [Site(layer=L, component="attn_out", position=None) for L in range(4, LAYERS)])
    for path in ("cached", "hook"):
        got = _runner_logits(held, base, source, site, path)
        assert torch.allclose(got, base_logits, atol=1e-6, rtol=0), (got - base_logits).abs().max()
    mlps_only = HoldingRunner(runner, [Site(layer=L, component="mlp_out", position=None) for L in range(4, LAYERS)])
    assert (_runner_logits(mlps_only, base, source, site, "cached") - base_logits).abs().max() > 1e-2


def test_holding_every_later_component_leaves_the_direct_path(gpt2):
    """Site at the last token after block 3, every later attn_out and mlp_out held: the final
    residual is the base one plus (source - base) at the site, exactly -- the direct path."""
    base, _ = make_batch("right", seed=0, batch=4, seq=7)
    source, _ = make_batch("right", seed=1, batch=4, seq=7)
    runner = make_runner(gpt2)
    site = Site(layer=3, component="resid_post", position="last")
    holds = [Site(layer=L, component=c, position=None) for L in range(4, LAYERS) for c in ("attn_out", "mlp_out")]
    got = _runner_logits(HoldingRunner(runner, holds), base, source, site, "cached")
    last = _last(base)
    delta = runner.collect(source, site) - runner.collect(base, site)
    final = runner.collect(base, Site(layer=LAYERS - 1, component="resid_post", position="last"))
    tr = gpt2.transformer
    want = gpt2.lm_head(tr.ln_f(final + delta))
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    assert last.shape == (4,)


def test_held_values_follow_minibatches_and_stacking(gpt2):
    base, _ = make_batch("right", seed=0, batch=4, seq=7)
    source, _ = make_batch("right", seed=1, batch=4, seq=7)
    runner = HoldingRunner(make_runner(gpt2), [Site(layer=10, component="attn_out", position=None),
                                               Site(layer=11, component="mlp_out", position="last")])
    sites = [Site(layer=6, component="resid_post", position=p) for p in ("last", 1)]
    caches = runner.prepare_many(base, sites)
    last = _last(base)
    srcs = runner.collect_many(source, sites)
    full = {s: runner.run_from_site(caches[s], srcs[s], logit_positions=last) for s in sites}
    idx = torch.tensor([3, 1])
    part = runner.run_from_site(caches[sites[0]].select(idx), srcs[sites[0]][idx], logit_positions=last[idx])
    assert torch.allclose(part, full[sites[0]][idx], atol=1e-6)
    stacked = runner.run_from_site(stack_caches([caches[s] for s in sites]), torch.cat([srcs[s] for s in sites]),
                                   logit_positions=torch.cat([last, last]))
    assert torch.allclose(stacked, torch.cat([full[s] for s in sites]), atol=1e-5)


def test_gradients_flow_into_the_intervention_not_the_held_values(gpt2):
    base, _ = make_batch("right", seed=0, batch=4, seq=7)
    runner = HoldingRunner(make_runner(gpt2), [Site(layer=10, component="attn_out", position=None)])
    site = Site(layer=4, component="resid_post", position="last")
    cache = runner.prepare(base, site)
    new = cache.base_act.clone().requires_grad_(True)
    runner.run_from_site(cache, new, logit_positions=_last(base)).sum().backward()
    assert new.grad is not None and new.grad.abs().sum() > 0
    assert not cache.held[Site(layer=10, component="attn_out", position=None)].requires_grad


def test_downstream_order():
    s = Site(layer=4, component="resid_post")
    assert downstream(Site(layer=5, component="attn_out"), s)
    assert not downstream(Site(layer=4, component="mlp_out"), s)
    assert not downstream(Site(layer=5, component="resid_pre"), s)  # the same tensor
    a = Site(layer=4, component="attn_out")
    assert downstream(Site(layer=4, component="mlp_out"), a)
    assert not downstream(Site(layer=4, component="attn_out"), a)
    assert downstream(Site(layer=0, component="attn_out"), Site(layer=0, component="resid_pre"))


# ----------------------------------------------------------------- plain torch networks
class Skip(nn.Module):
    """Not a chain: block 2 adds block 0's output back (a skip connection around block 1)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.ModuleList([nn.Sequential(nn.Linear(6, 8), nn.Tanh()),
                                     nn.Sequential(nn.Linear(8, 8), nn.Tanh()),
                                     nn.Sequential(nn.Linear(8, 8), nn.Tanh())])
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        h0 = self.layers[0](x)
        return self.head(self.layers[2](self.layers[1](h0)) + h0)


def test_torch_layer_hold_leaves_only_the_skip_path():
    net = Skip().eval().requires_grad_(False)
    g = torch.Generator().manual_seed(3)
    base, source = torch.randn(5, 6, generator=g), torch.randn(5, 6, generator=g)
    runner = HoldingRunner(make_runner(net), [Site(layer=1, component="resid_post", position=None)])
    site = Site(layer=0, component="resid_post", position=None)
    L = net.layers
    want = net.head(L[2](L[1](L[0](base))) + L[0](source))  # layer 1 keeps its base output
    src = runner.collect(source, site)
    got = runner.run_from_site(runner.prepare(base, site), src)
    assert torch.allclose(got, want, atol=1e-6)
    assert torch.allclose(runner.run_with_hook(base, site, src), want, atol=1e-6)
    free = make_runner(net).run_with_hook(base, site, src)
    assert (free - want).abs().max() > 1e-3


def test_torch_chain_cached_path_honours_holds():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.Linear(6, 2)).eval().requires_grad_(False)
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    runner = HoldingRunner(make_runner(net), [Site(layer=2, component="resid_post", position=None)])
    site = Site(layer=0, component="resid_post", position=None)
    cache = runner.prepare(x, site)
    assert cache.cached
    got = runner.run_from_site(cache, runner.collect(y, site))
    assert torch.allclose(got, net(x), atol=1e-6)  # everything flows through the held layer
