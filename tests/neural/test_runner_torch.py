"""Plain torch modules: layer convention, cached suffix vs hand-written math, fallback flag."""
import pytest
import torch
from torch import nn

from abstract.neural.interventions import DAS, LowRankRotation, VectorInterchange
from abstract.neural.runner import TorchRunner, make_runner
from abstract.neural.sites import Site

W = 8


class BlockMLP(nn.Module):
    """The recommended spec-model shape: layers[N] output = hidden layer N."""

    def __init__(self, depth=3):
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.ModuleList([nn.Sequential(nn.Linear(4 if i == 0 else W, W), nn.ReLU())
                                     for i in range(depth)])
        self.head = nn.Linear(W, 2)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


class SkipMLP(BlockMLP):
    """Has a `layers` list but its forward is not a chain: must fall back to hooks."""

    def forward(self, x):
        h = self.layers[0](x)
        h = h + self.layers[1](h)
        return self.head(self.layers[2](h))


def by_hand(model, x, splice_layer=None, vec=None):
    h = x
    for i, layer in enumerate(model.layers):
        lin = layer[0]
        h = torch.relu(h @ lin.weight.T + lin.bias)
        if i == splice_layer:
            h = vec
    return h @ model.head.weight.T + model.head.bias


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_block_mlp_interchange_matches_hand_written(layer, data):
    model = BlockMLP()
    base, source = data
    runner = make_runner(model)
    assert isinstance(runner, TorchRunner)
    site = Site(layer, position=None)
    cache = runner.prepare(base, site)
    assert cache.cached and cache.note == ""
    with torch.no_grad():
        src = runner.collect(source, site)
        assert torch.allclose(runner.run_from_site(cache, cache.base_act), model(base), atol=1e-6)
        got = runner.run_from_site(cache, lambda b: VectorInterchange()(b, src))
        h = source
        for lin in [block[0] for block in model.layers][: layer + 1]:
            h = torch.relu(h @ lin.weight.T + lin.bias)
        assert torch.allclose(src, h, atol=1e-6)
        assert torch.allclose(got, by_hand(model, base, layer, h), atol=1e-5)
        assert torch.allclose(got, runner.run_with_hook(base, site, src), atol=1e-6)


def test_sequential_module_path_sites(data):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, W), nn.ReLU(), nn.Linear(W, W), nn.ReLU(), nn.Linear(W, 2))
    base, source = data
    runner = make_runner(model)
    das = DAS(W, 3, seed=0)
    for site in (Site(module="1", position=None), Site(3, position=None)):
        cache = runner.prepare(base, site)
        assert cache.cached
        with torch.no_grad():
            src = runner.collect(source, site)
            a = runner.run_from_site(cache, lambda b, src=src: das(b, src))
            b = runner.run_with_hook(base, site, lambda b, src=src: das(b, src))
        assert torch.allclose(a, b, atol=1e-6)
    with torch.no_grad():
        W1, b1 = model[0].weight, model[0].bias
        assert torch.allclose(runner.collect(source, Site(module="1", position=None)),
                              torch.relu(source @ W1.T + b1), atol=1e-6)


def test_non_chain_model_falls_back_and_says_so(data):
    model = SkipMLP()
    base, source = data
    runner = make_runner(model)
    site = Site(1, position=None)
    cache = runner.prepare(base, site)
    assert not cache.cached and "not the plain chain" in cache.note
    das = LowRankRotation(W, 3, seed=0)
    with torch.no_grad():
        src = runner.collect(source, site)
        assert torch.allclose(runner.run_from_site(cache, cache.base_act), model(base))
        got = runner.run_from_site(cache, lambda b: das(b, src))
        h0 = model.layers[0](base)
        h1 = h0 + das(model.layers[1](h0), src)
        assert torch.allclose(got, model.head(model.layers[2](h1)), atol=1e-6)
    nested = runner.prepare(base, Site(module="layers.1.0", position=None))
    assert not nested.cached and "not a link" in nested.note


def test_gradient_flows_to_rotation_not_model(data):
    model = BlockMLP()
    base, source = data
    runner = make_runner(model)
    site = Site(1, position=None)
    cache, src = runner.prepare(base, site), runner.collect(source, site)
    das = DAS(W, 4, seed=0)
    out = runner.run_from_site(cache, lambda b: das(b, src))
    nn.functional.cross_entropy(out, torch.zeros(6, dtype=torch.long)).backward()
    assert das.rotation.parametrizations.weight.original.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_select_minibatch(data):
    model = BlockMLP()
    base, source = data
    runner = make_runner(model)
    site = Site(0, position=None)
    src = runner.collect(source, site)
    for cache in (runner.prepare(base, site), make_runner(SkipMLP()).prepare(base, site)):
        r = runner if cache.cached else make_runner(SkipMLP())
        idx = torch.tensor([4, 1])
        with torch.no_grad():
            full = r.run_from_site(cache, src)
            part = r.run_from_site(cache.select(idx), src[idx])
        assert torch.allclose(part, full[idx], atol=1e-6)
