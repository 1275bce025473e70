"""Preflight and trivial-site detection on hand-built networks whose truth is known."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from abstract.engine.encoders import make_encoder
from abstract.engine.networks import load_network
from abstract.engine.preflight import PreflightError, preflight
from abstract.engine.trivial import realisable_by_inputs, trivial_variables
from abstract.language import compile_text
from abstract.neural.runner import make_runner
from abstract.neural.sites import Site

HERE = Path(__file__).parent

PAIR = """
model Pair {
    input a, b : 0..2
    output y = 3 * a + b
}
model Eq {
    input a, b, c : 0..2
    e = a == b
    output y = e and (c == 0)
}
model Leak {
    input a, b : 0..2
    e = a == b
    output y = e and (a == 0)
}
network rotated = torch "fixtures/hand_nets.py:copy_two" { n 3, rotate true }
network plain = torch "fixtures/hand_nets.py:copy_two" { n 3, rotate false }
"""


def _setup(network: str, model: str = "Pair", module: nn.Module | None = None):
    spec = compile_text(PAIR, str(HERE / "inline.causal"))
    net = load_network(spec.networks[network], spec.path, torch.device("cpu"))
    if module is not None:
        net.module = module
    m = spec.models[model]
    return make_runner(net.module), make_encoder(net, m), m


def test_realisable_by_inputs_follows_the_causal_graph():
    spec = compile_text(PAIR, str(HERE / "inline.causal"))
    eq = spec.models["Eq"]
    assert realisable_by_inputs(eq, "e")  # a, b reach y only through e
    assert realisable_by_inputs(eq, "a")  # an input is itself
    assert realisable_by_inputs(spec.models["Pair"], "b")
    assert not realisable_by_inputs(spec.models["Leak"], "e")  # a also reaches y directly


@pytest.mark.parametrize("network", ["rotated", "plain"])
def test_input_encoding_layer_is_trivial_rotated_or_not(network):
    runner, encoder, model = _setup(network)
    # layer 0 copies a and b into orthogonal subspaces (rotated or not): each input is realisable there
    assert trivial_variables(runner, encoder, model, Site(layer=0, position=None), ["a", "b"]) == {"a", "b"}


def test_a_mixing_layer_is_not_trivial():
    runner, encoder, model = _setup("plain")
    torch.manual_seed(0)
    mix = nn.Sequential(nn.Linear(6, 6), nn.Tanh())

    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([mix])
            self.head = nn.Linear(6, 9)

        def forward(self, x):
            return self.head(self.layers[0](x * 3.0))
    net = Mixed()
    runner = make_runner(net)
    assert trivial_variables(runner, encoder, model, Site(layer=0, position=None), ["a", "b"]) == set()


def test_preflight_passes_a_network_that_solves_the_task():
    runner, encoder, model = _setup("rotated")
    report = preflight(runner, encoder, model, [Site(layer=0, position=None)])
    assert report.task_accuracy == 1.0 and report.sites_checked == ["L0.resid_post"]


class _Broken(nn.Module):
    def __init__(self, inner: nn.Module, fault: str):
        super().__init__()
        self.layers, self.head, self.fault = inner.layers, inner.head, fault

    def forward(self, x):
        h = self.layers[0](x)
        out = self.head(h)
        if self.fault == "nan":
            return out * float("nan")
        if self.fault == "inf":
            return out + float("inf")
        return out


@pytest.mark.parametrize("fault, message", [("nan", "not finite"), ("inf", "not finite")])
def test_preflight_refuses_non_finite_logits(fault, message):
    _, encoder, model = _setup("rotated")
    spec = compile_text(PAIR, str(HERE / "inline.causal"))
    inner = load_network(spec.networks["rotated"], spec.path, torch.device("cpu")).module
    runner = make_runner(_Broken(inner, fault))
    with pytest.raises(PreflightError, match=message):
        preflight(runner, encoder, model, [])


def test_preflight_refuses_a_nan_weight_at_a_site():
    spec = compile_text(PAIR, str(HERE / "inline.causal"))
    net = load_network(spec.networks["rotated"], spec.path, torch.device("cpu"))
    with torch.no_grad():
        net.module.layers[0].weight[0, 0] = float("nan")
    runner, encoder = make_runner(net.module), make_encoder(net, spec.models["Pair"])
    with pytest.raises(PreflightError, match="not finite"):
        preflight(runner, encoder, spec.models["Pair"], [Site(layer=0, position=None)])


def test_preflight_refuses_shifted_rows_and_merged_inputs():
    runner, encoder, model = _setup("rotated")
    real = encoder.encode
    encoder.encode = lambda inputs: torch.roll(real(inputs), 1, dims=0)  # every row is its neighbour's
    with pytest.raises(PreflightError, match="solves the task on only"):
        preflight(runner, encoder, model, [])
    encoder.encode = lambda inputs: real(inputs)[:-1]
    with pytest.raises(PreflightError, match="rows for"):
        preflight(runner, encoder, model, [])
    encoder.encode = lambda inputs: real([{**x, "b": 0} for x in inputs])  # b ignored
    with pytest.raises(PreflightError, match="cannot tell these input values apart"):
        preflight(runner, encoder, model, [])


def test_on_a_language_model_only_a_tokens_own_embedding_is_trivial():
    """a's token embedding (resid_pre of layer 0 at a) holds a and nothing else holds it: trivial.
    After attention, position b has read a but a still lives at its own token: not trivial."""
    import sys
    sys.path.insert(0, str(HERE))
    from lm_kit import COPY_MODEL, tiny_lm, word_tokenizer

    from abstract.engine.networks import LoadedNetwork
    spec = compile_text(COPY_MODEL, str(HERE / "inline.causal"))
    model = spec.models["Copy"]
    net = LoadedNetwork("lm", "lm", tiny_lm("gpt2", seed=0).requires_grad_(False),
                        {"prompt": "{a} {b} =", "answer": " {y}"}, tokenizer=word_tokenizer())
    runner, encoder = make_runner(net.module), make_encoder(net, model)
    embed_a = Site(layer=0, component="resid_pre", position="slot:a")
    assert trivial_variables(runner, encoder, model, embed_a, ["a"]) == {"a"}
    assert trivial_variables(runner, encoder, model, Site(layer=1, component="resid_post", position="slot:b"),
                             ["a"]) == set()
    assert trivial_variables(runner, encoder, model, Site(layer=0, component="resid_pre", position="last"),
                             ["a"]) == set()  # `=` never moves
