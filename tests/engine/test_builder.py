"""The builder contract (abstract/engine/builder.py, docs/networks.md): a builder whose network
cannot be fed or read the way the contract says fails at the `network` line, saying what is
missing, before any data is drawn or any step trained."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

from abstract import cli
from abstract.engine.align import align_hypothesis
from abstract.engine.builder import Encode, EncodingNetwork, LayeredNetwork, check_fits, class_order, unpack
from abstract.engine.encoders import make_encoder
from abstract.engine.networks import LoadedNetwork, load_network
from abstract.language import compile_text
from abstract.language.errors import SpecError
from abstract.neural.runner import make_runner

ROOT = Path(__file__).resolve().parents[2]

NETS = '''
import torch
from torch import nn

def seq(inputs=4, classes=2):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(inputs, 8), nn.ReLU(), nn.Linear(8, classes))

def with_encode_fn():
    m = seq(inputs=2)
    return m, lambda rows: torch.tensor([[float(r["a"]), float(r["b"])] for r in rows])

def as_dict():
    return {"model": seq()}

def list_encode():
    m = seq()
    m.encode = lambda rows: [1, 2]
    return m

def failing_encode():
    m = seq()
    def encode(rows):
        return torch.tensor([r["missing"] for r in rows])
    m.encode = encode
    return m

class NoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 2)
    def forward(self, x):
        return self.b(torch.relu(self.a(x)))

def no_layers():
    return NoLayers()

def declared_missing():
    m = NoLayers()
    m.abstract_layers = ["a", "c"]
    return m

def declared_string():
    m = NoLayers()
    m.abstract_layers = "a"
    return m

def declared():
    m = NoLayers()
    m.abstract_layers = ["a"]
    return m

class EncodeModule(nn.Module):
    def __init__(self):
        super().__init__()
        self.encode = nn.Linear(4, 4)
        self.layers = nn.ModuleList([nn.Linear(4, 2)])
    def forward(self, x):
        return self.layers[0](self.encode(x))

def encode_submodule():
    return EncodeModule()

def three():
    return seq(), None, None

def dict_without_model():
    return {"net": seq()}

def dict_unknown_key():
    return {"model": seq(), "encoder": None}

def nothing():
    return None
'''

SPEC = """model Copy {{
    input a, b : 0..1
    output y = a
}}
network n = torch "nets.py:{fn}"
hypothesis h : Copy ~ n {{
    align a to layer 0 via das(dim=1)
}}
"""
NETWORK_LINE = 5


def _spec(tmp_path: Path, fn: str):
    (tmp_path / "nets.py").write_text(NETS)
    return compile_text(SPEC.format(fn=fn), str(tmp_path / "s.causal"))


def _align_error(tmp_path: Path, fn: str) -> SpecError:
    spec = _spec(tmp_path, fn)
    with pytest.raises(SpecError) as info:
        align_hypothesis(spec, "h", device="cpu", progress=False)
    err = info.value
    assert err.pos is not None and err.pos.line == NETWORK_LINE, (err.pos, err.message)
    err.with_source(spec.text)
    return err


def _load_error(tmp_path: Path, fn: str) -> SpecError:
    spec = _spec(tmp_path, fn)
    with pytest.raises(SpecError) as info:
        load_network(spec.networks["n"], spec.path)
    err = info.value
    assert err.pos is not None and err.pos.line == NETWORK_LINE, (err.pos, err.message)
    return err


def test_plain_sequential_of_the_wrong_width_says_what_is_missing(tmp_path):
    """The issue's case: an nn.Sequential, no encode, a first layer 8 wide where the default
    one-hot encoding is 4 wide. Unchecked, this is `mat1 and mat2 shapes cannot be multiplied`
    from inside the first training step, attributed to no spec line."""
    (tmp_path / "nets.py").write_text(NETS + "\ndef wide():\n    return seq(inputs=8)\n")
    spec = compile_text(SPEC.format(fn="wide"), str(tmp_path / "s.causal"))
    with pytest.raises(SpecError) as info:
        align_hypothesis(spec, "h", device="cpu", progress=False)
    err = info.value
    assert "has no `encode`, so the inputs of Copy are one-hot encoded (a: 2 + b: 2 = 4 features" in err.message
    assert "mat1 and mat2" in err.message  # the underlying failure is kept, not hidden
    assert "encode(inputs)" in err.hint and "first layer take 4 features" in err.hint
    shown = err.with_source(spec.text).render()
    assert "s.causal:5:9: error: network n (Sequential) has no `encode`" in shown
    assert 'network n = torch "nets.py:wide"' in shown


def test_wrong_number_of_logits_names_the_classes_in_order(tmp_path):
    (tmp_path / "nets.py").write_text(NETS + "\ndef three_classes():\n    return seq(classes=3)\n")
    spec = compile_text(SPEC.format(fn="three_classes"), str(tmp_path / "s.causal"))
    with pytest.raises(SpecError) as info:
        align_hypothesis(spec, "h", device="cpu", progress=False)
    err = info.value
    assert err.pos.line == NETWORK_LINE
    assert "returns a tensor of shape (2, 3) for a batch of 2" in err.message
    assert "expected [batch, 2] logits, in the order y=0; y=1" in err.message
    assert "a layer of 2 outputs" in err.hint


@pytest.mark.parametrize("fn, fragment", [
    ("list_encode", "forward failed on what its encode returned (a list of 2 (a value of type int, a value of "
                    "type int))"),
    ("failing_encode", "encode(...) failed on inputs like {'a': "),
    ("no_layers", "network n (NoLayers): abstract cannot tell its layers"),
])
def test_a_module_missing_what_is_needed_fails_at_the_network_line(tmp_path, fragment, fn):
    err = _align_error(tmp_path, fn)
    assert fragment in err.message, err.message
    assert "docs/networks.md" in err.hint


@pytest.mark.parametrize("fn, fragment, hint", [
    ("declared_missing", "NoLayers.abstract_layers names a module it does not have", "its modules: a, b"),
    ("declared_string", "abstract_layers must be a list of module paths (strings), got 'a'", "abstract_layers = ["),
    ("encode_submodule", "whose `encode` is a Linear, not a method", "rename"),
    ("three", "returned a tuple of 3 items", "(module, encode)"),
    ("dict_without_model", "returned a dict without a 'model' key (keys: net)", "return a torch.nn.Module"),
    ("dict_unknown_key", "unknown key(s) encoder", "model, encode, tokenizer"),
    ("nothing", "returned NoneType, expected a torch.nn.Module", "(module, encode)"),
])
def test_what_a_builder_returns_is_checked_when_it_is_loaded(tmp_path, fn, fragment, hint):
    err = _load_error(tmp_path, fn)
    assert fragment in err.message, err.message
    assert hint in (err.hint or ""), err.hint


@pytest.mark.parametrize("fn", ["seq", "with_encode_fn", "as_dict", "declared"])
def test_every_documented_form_passes(tmp_path, fn):
    """A plain Sequential over the default encoding, (module, encode), the dict form, and a module
    with declared layers all meet the contract (so the checks are not simply always failing)."""
    spec = _spec(tmp_path, fn)
    net = load_network(spec.networks["n"], spec.path)
    model = spec.models["Copy"]
    check_fits(net, model, make_encoder(net, model), make_runner(net.module))
    assert net.kind == "torch" and (net.encode is not None) == (fn == "with_encode_fn")


def test_class_order_is_the_product_of_output_domains_first_output_slowest():
    spec = compile_text("model M {\n input a : 0..1\n output y = a == 1\n output z : 3..4 = a + 3\n}\n")
    assert class_order(spec.models["M"]) == ["y=false, z=3", "y=false, z=4", "y=true, z=3", "y=true, z=4"]


def _hier_eq():
    path = ROOT / "specs" / "models" / "hier_eq.py"
    module_spec = importlib.util.spec_from_file_location("hier_eq_for_contract_test", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_the_shipped_builder_meets_the_typed_contract():
    """specs/models/hier_eq.py, the example docs/networks.md walks through: its module is an
    EncodingNetwork and a LayeredNetwork, and it fits the spec's model (untrained: no training)."""
    hier_eq = _hier_eq()
    mlp = hier_eq.HierEqMLP(width=8, depth=2, n_args=4, embed=2, shapes=torch.rand(4, 2))
    assert isinstance(mlp, EncodingNetwork) and isinstance(mlp, LayeredNetwork) and isinstance(mlp.encode, Encode)
    assert not isinstance(nn.Sequential(nn.Linear(2, 2)), EncodingNetwork)
    spec = compile_text((ROOT / "specs" / "hierarchical_equality.causal").read_text(),
                        str(ROOT / "specs" / "hierarchical_equality.causal"))
    net = LoadedNetwork("mlp", "torch", mlp.eval(), encode=mlp.encode, decl=spec.networks["mlp"])
    model = spec.models["HierarchicalEquality"]
    check_fits(net, model, make_encoder(net, model), make_runner(mlp))
    assert make_runner(mlp).layer_paths == ["embed", "layers.0", "layers.1"]  # layer 0: the input encoding


def test_unpack_tells_an_encode_from_a_tokenizer():
    class Tok:
        def convert_tokens_to_ids(self, tokens):
            return tokens

        def __call__(self, text):
            return text

    module = nn.Linear(2, 2)
    assert unpack((module, Tok()), "fn", None).tokenizer is not None
    assert unpack((module, lambda rows: rows), "fn", None).encode is not None
    with pytest.raises(SpecError, match="neither an encode function nor a tokenizer"):
        unpack((module, nn.Linear(2, 2)), "fn", None)


def test_check_never_runs_the_builder_and_verify_does(tmp_path, capsys):
    """The trust boundary: `abstract check` reads the spec only; loading the network (verify,
    align, demo, the pytest plugin) executes the builder file."""
    marker = tmp_path / "builder-ran"
    (tmp_path / "nets.py").write_text(f"open({str(marker)!r}, 'w').close()\n" + NETS)
    (tmp_path / "s.causal").write_text(SPEC.format(fn="seq"))
    assert cli.main(["check", str(tmp_path / "s.causal")]) == 0
    assert not marker.exists()
    spec = compile_text(SPEC.format(fn="seq"), str(tmp_path / "s.causal"))
    load_network(spec.networks["n"], spec.path)
    assert marker.exists()
