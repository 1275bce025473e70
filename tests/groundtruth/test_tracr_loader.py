"""The tracr loader: the torch network computes exactly what tracr's compiled model computes,
on every input of the programs' input space, and each RASP variable is where the loader says.

Slow (tracr's first compile and forward start JAX: ~20 s of CPU for the three programs);
skipped when tracr (``pip install -e ".[groundtruth]"``) is not installed."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

pytest.importorskip("tracr")

from abstract.networks.tracr import from_compiled, tracr_outputs  # noqa: E402
from gt_kit import load_fixture  # noqa: E402

programs = load_fixture("programs.py", "groundtruth_programs")
INPUTS = list(itertools.product(programs.VOCAB, repeat=programs.N))  # every input: 27


def _loaded(name: str):
    compiled, exprs = programs.compiled(name)
    return compiled, exprs, programs.build(name)


def _tokens(net, inputs=INPUTS) -> torch.Tensor:
    return net.encode([{f"x{i}": v for i, v in enumerate(x)} for x in inputs])


@pytest.mark.parametrize("name", programs.PROGRAMS)
def test_forward_equals_tracr_on_every_input(name):
    compiled, exprs, net = _loaded(name)
    tokens = _tokens(net)
    theirs, decoded = tracr_outputs(compiled, [["BOS", *x] for x in INPUTS])
    ours = torch.stack(net.residuals(tokens)).numpy()
    assert ours.shape == theirs.shape == (len(net.layers), len(INPUTS), net.seq_len, net.d_model)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert net.decode(tokens) == decoded
    output = list(exprs.values())[-1]
    assert decoded == [output(list(x)) for x in INPUTS]  # and both are the RASP program's answer
    # the logits' class is the engine's product index (first position slowest)
    classes = [sum(v * 3 ** (programs.N - 1 - i) for i, v in enumerate(row)) for row in decoded]
    assert net(tokens).argmax(-1).tolist() == classes


@pytest.mark.parametrize("name, where", [
    ("map", {"m": ("layer_0/mlp", 2), "tokens": ("embed", 0)}),
    ("shift", {"s": ("layer_0/attn", 1), "tokens": ("embed", 0)}),
    ("map_shift", {"m": ("layer_0/mlp", 2), "s": ("layer_1/attn", 3), "tokens": ("embed", 0)}),
])
def test_each_variable_is_where_its_placement_says(name, where):
    """Before its layer a variable's dimensions are zero at every position; from its layer on
    they hold the one-hot of the RASP value at every token position (tracr's labels)."""
    compiled, exprs, net = _loaded(name)
    residuals = net.residuals(_tokens(net))
    for var, (layer_name, layer) in where.items():
        place = net.placement(var)
        assert place.layer == layer and net.layer_names[layer] == layer_name
        assert [net.residual_labels[d] for d in place.dims] == [f"{place.label}:{v}" for v in place.values]
        for k, res in enumerate(residuals):
            block = res[:, :, list(place.dims)]
            if k < layer:
                assert torch.count_nonzero(block) == 0, (var, k)
                continue
            for i, x in enumerate(INPUTS):
                values = list(x) if var == "tokens" else exprs[var](list(x))
                onehot = torch.tensor([[float(str(v) == val) for val in place.values] for v in values])
                torch.testing.assert_close(block[i, 1:], onehot, atol=1e-4, rtol=0)


def test_neurons_are_position_major():
    _, _, net = _loaded("map_shift")
    place = net.placement("m")
    assert place.neurons(0) == place.dims
    assert place.neurons(2) == tuple(2 * net.d_model + d for d in place.dims)
    assert net.placement(place.label) is place
    with pytest.raises(KeyError, match="names 0 variables"):
        net.placement("nope")


def test_head_reads_chosen_positions_and_scales():
    compiled, exprs, net = _loaded("map")
    one = from_compiled(compiled, list(exprs.values())[-1].label, positions=[2], scale=3.0)
    tokens = _tokens(one)
    logits = one(tokens)
    assert logits.shape == (len(INPUTS), 3)
    assert logits.argmax(-1).tolist() == [(x[1] + 1) % 3 for x in INPUTS]
    assert torch.allclose(logits.max(-1).values, torch.full((len(INPUTS),), 3.0), atol=1e-4)
    with pytest.raises(ValueError, match="positions must lie in 1..3"):
        from_compiled(compiled, list(exprs.values())[-1].label, positions=[0])
    with pytest.raises(ValueError, match="not in the residual stream"):
        from_compiled(compiled, "nothing")


def test_encode_refuses_bad_inputs():
    _, _, net = _loaded("map")
    with pytest.raises(ValueError, match="takes 3 tokens, got 2"):
        net.encode([{"x0": 0, "x1": 1}])
    with pytest.raises(ValueError, match="not in the tracr vocabulary"):
        net.encode([{"x0": 0, "x1": 1, "x2": 7}])
