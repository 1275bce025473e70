"""Site values, position resolution under padding, and architecture detection."""
import pytest
import torch
from torch import nn

from abstract.neural.architectures import (UnsupportedModelError, detect_architecture, get_module,
                                           torch_layer_paths)
from abstract.neural.runner import make_runner
from abstract.neural.sites import Site, SiteError, gather_positions, resolve_positions, scatter_positions


def test_site_normalises_aliases_and_is_hashable():
    s = Site(2, "block_output", "last")
    assert s.component == "resid_post"
    assert s == Site(2, "resid_post", "last")
    assert {s: 1}[Site(2, "resid_post", "last")] == 1
    assert s.label == "L2.resid_post@last"
    assert Site(module="net.3", position=None).label == "net.3"


@pytest.mark.parametrize("bad", [dict(layer=1, component="resid"), dict(layer=1, position="middle"),
                                 dict(component="resid_pre")])
def test_site_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        Site(**bad)


def test_resolve_positions_right_and_left_padding():
    right = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]])
    left = right.flip(1)
    assert resolve_positions("last", right, 4, 3).tolist() == [3, 1, 2]
    assert resolve_positions("last", left, 4, 3).tolist() == [3, 3, 3]
    assert resolve_positions("first", left, 4, 3).tolist() == [0, 2, 1]
    assert resolve_positions(0, right, 4, 3).tolist() == [0, 0, 0]
    assert resolve_positions(1, left, 4, 3).tolist() == [1, 3, 2]
    assert resolve_positions(-2, right, 4, 3).tolist() == [2, 0, 1]
    assert resolve_positions(-1, left, 4, 3).tolist() == resolve_positions("last", left, 4, 3).tolist()
    assert resolve_positions("last", None, 5, 2).tolist() == [4, 4]
    with pytest.raises(SiteError):
        resolve_positions(2, right, 4, 3)  # row 1 has only two real tokens


def test_gather_scatter_roundtrip_and_grad():
    acts = torch.randn(3, 4, 5)
    pos = torch.tensor([3, 1, 2])
    got = gather_positions(acts, pos)
    assert torch.equal(got[1], acts[1, 1])
    new = torch.randn(3, 5, requires_grad=True)
    out = scatter_positions(acts, pos, new)
    assert torch.equal(out[0, 3], new[0].detach()) and torch.equal(out[0, :3], acts[0, :3])
    out.sum().backward()
    assert torch.equal(new.grad, torch.ones(3, 5))


def test_detect_architecture(lm):
    spec = detect_architecture(lm)
    expected = {"gpt2": "transformer.h", "gpt_neox": "gpt_neox.layers"}.get(lm.config.model_type, "model.layers")
    assert spec.blocks == expected
    assert len(get_module(lm, spec.blocks)) == 3


def test_unsupported_model_has_clear_error():
    class Weird(nn.Module):
        config = type("C", (), {"model_type": "weird"})()

    with pytest.raises(UnsupportedModelError, match="unsupported model Weird"):
        detect_architecture(Weird())


def test_torch_layer_conventions():
    class Blocks(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
            self.head = nn.Linear(2, 1)

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())

    assert torch_layer_paths(Blocks()) == ["layers.0", "layers.1"]
    assert torch_layer_paths(nn.Sequential(nn.Linear(2, 2), nn.ReLU())) == ["0", "1"]
    assert torch_layer_paths(Wrapped()) == ["net.0", "net.1"]
    assert torch_layer_paths(Blocks(), ["layers.1"]) == ["layers.1"]
    with pytest.raises(UnsupportedModelError):
        torch_layer_paths(nn.Linear(2, 2))


def test_site_problems_are_site_errors_and_still_value_and_index_errors():
    """The engine reports SiteError as the spec's problem; callers catching the builtins still work."""
    assert issubclass(SiteError, ValueError) and issubclass(SiteError, IndexError)
    with pytest.raises(SiteError, match="unknown position"):
        Site(1, position="middle")
    mlp = make_runner(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    with pytest.raises(SiteError, match="out of range"):
        mlp.site_path(Site(5, position=None))
    flat = make_runner(nn.Linear(2, 2))  # no layer list: only module paths address it
    with pytest.raises(SiteError, match="module path"):
        flat.site_path(Site(0, position=None))
    assert flat.site_path(Site(module="", position=None)) == ""
