"""The typed seams of the neural side: runner and encoder protocols, hooks that always go away,
and no device chosen outside abstract/device.py."""
from __future__ import annotations

import inspect
import pathlib
import re
from typing import Any, Callable

import pytest
import torch
from neural_testkit import build_lm, make_batch
from torch import nn

from abstract.device import module_device
from abstract.engine.encoders import Encoder, LMEncoder, TorchEncoder, make_encoder
from abstract.engine.networks import LoadedNetwork
from abstract.language import compile_text
from abstract.neural.hooks import Hooks
from abstract.neural.runner import LMRunner, Runner, TorchRunner, make_runner
from abstract.neural.sites import Site, SiteError

ROOT = pathlib.Path(__file__).resolve().parents[2]


# ----- protocols ----------------------------------------------------------------------------
def _members(protocol: type) -> dict[str, object]:
    """The protocol's public methods and properties, and its declared data attributes (None)."""
    found: dict[str, object] = {name: None for name in getattr(protocol, "__annotations__", {})}
    for name, value in vars(protocol).items():
        if not name.startswith("_") and (inspect.isfunction(value) or isinstance(value, property)):
            found[name] = value
    return found


def _shape(fn: Callable[..., Any]) -> list[tuple[str, object, object]]:
    """A signature as (name, kind, default) rows. Types are mypy's job: ``make_runner`` and
    ``make_encoder`` are declared to return the protocols, so mypy checks both implementations."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def _assert_conforms(protocol: type, cls: type) -> None:
    for name, member in _members(protocol).items():
        if member is None:
            continue  # a data attribute: checked on instances by isinstance
        impl = inspect.getattr_static(cls, name, None)
        assert impl is not None, f"{cls.__name__} lacks {name}"
        if isinstance(member, property):
            assert isinstance(impl, property), f"{cls.__name__}.{name} should be a property"
            continue
        assert callable(impl) and callable(member)
        assert _shape(impl) == _shape(member), f"{cls.__name__}.{name} signature differs from {protocol.__name__}"


@pytest.mark.parametrize("cls", [LMRunner, TorchRunner])
def test_runners_have_the_protocol_signatures(cls):
    _assert_conforms(Runner, cls)


@pytest.mark.parametrize("cls", [TorchEncoder, LMEncoder])
def test_encoders_have_the_protocol_signatures(cls):
    _assert_conforms(Encoder, cls)


def test_the_signature_check_notices_a_drift():
    class Drifted(TorchRunner):
        def collect(self, inputs, where):  # renamed parameter
            return super().collect(inputs, where)

    with pytest.raises(AssertionError, match="collect signature"):
        _assert_conforms(Runner, Drifted)


def test_made_runners_are_runners():
    torch_runner = make_runner(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
    lm_runner = make_runner(build_lm("gpt2"))
    assert isinstance(torch_runner, TorchRunner) and isinstance(torch_runner, Runner)
    assert isinstance(lm_runner, LMRunner) and isinstance(lm_runner, Runner)
    assert not isinstance(object(), Runner)
    with pytest.raises(SiteError, match="out of range"):
        lm_runner.collect(make_batch()[0], Site(3, "resid_pre", "last"))  # 3 blocks: 0..2, -3..-1


MODEL = """
model Copy {
    domain Color = {red, blue}
    input a : Color
    output y : Color = a
}
"""


def _word_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    vocab = {"[PAD]": 0, "[UNK]": 1, "[EOS]": 2, "red": 3, "blue": 4, "=": 5}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]")


def test_made_encoders_are_encoders():
    model = compile_text(MODEL, "copy.causal").models["Copy"]
    torch_enc = make_encoder(LoadedNetwork("mlp", "torch", nn.Linear(2, 2)), model)
    lm_enc = make_encoder(LoadedNetwork("lm", "lm", build_lm("gpt2"), {"prompt": "{a} =", "answer": " {y}"},
                                        tokenizer=_word_tokenizer()), model)
    assert isinstance(torch_enc, TorchEncoder) and isinstance(torch_enc, Encoder)
    assert isinstance(lm_enc, LMEncoder) and isinstance(lm_enc, Encoder)
    assert [enc.site_position(p, []) for enc, p in ((torch_enc, "anything"), (lm_enc, "a"))] == [None, "slot:a"]
    with pytest.raises(SiteError, match="not a slot"):
        lm_enc.site_position("y", [])


# ----- hooks that always go away ------------------------------------------------------------
def _hooks_left(model: nn.Module) -> list[str]:
    return [f"{name or '<root>'}: {kind}" for name, m in model.named_modules()
            for kind in ("_forward_hooks", "_forward_pre_hooks", "_forward_hooks_with_kwargs",
                         "_forward_pre_hooks_with_kwargs")
            if getattr(m, kind, None)]


class Boom(RuntimeError):
    pass


def _boom(*args, **kwargs):
    raise Boom("forward failed mid-run")


def test_hooks_are_removed_when_the_block_raises():
    lin = nn.Linear(2, 2)
    with pytest.raises(Boom):
        with Hooks() as hooks:
            hooks.forward(lin, lambda m, a, o: o * 0)
            hooks.forward_pre(lin, lambda m, a, k: None, with_kwargs=True)
            assert len(_hooks_left(lin)) == 3
            raise Boom
    assert _hooks_left(lin) == []


def test_one_hook_removed_early_the_rest_at_the_end():
    lin = nn.Linear(2, 2, bias=False)
    x = torch.ones(1, 2)
    with Hooks() as hooks:
        zero = hooks.forward(lin, lambda m, a, o: o * 0)
        hooks.forward_pre(lin, lambda m, a: None)
        assert torch.equal(lin(x), torch.zeros(1, 2))
        hooks.remove(zero)
        assert torch.equal(lin(x), x @ lin.weight.T) and _hooks_left(lin) == ["<root>: _forward_pre_hooks"]
    assert _hooks_left(lin) == []


class Chain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.ModuleList([nn.Sequential(nn.Linear(4, 8), nn.ReLU()),
                                     nn.Sequential(nn.Linear(8, 8), nn.ReLU())])
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def test_torch_runner_leaves_no_hook_when_a_forward_raises(monkeypatch):
    model = Chain()
    runner = make_runner(model)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    site = Site(0, position=None)
    with torch.no_grad():
        ref = model(x)
    with monkeypatch.context() as m:  # the head fails after the site's hook has fired
        m.setattr(model.head, "forward", _boom)
        for call in (lambda: runner.collect_many(x, [site, Site(1, position=None)]),
                     lambda: runner.prepare_many(x, [site]),
                     lambda: runner.run_with_hook(x, site, torch.zeros(5, 8))):
            with pytest.raises(Boom):
                call()
            assert _hooks_left(model) == []
    with pytest.raises(Boom):  # the intervention itself fails inside the hook
        runner.run_with_hook(x, site, _boom)
    assert _hooks_left(model) == []
    with torch.no_grad():
        assert torch.equal(model(x), ref)
        assert torch.equal(runner.run_with_hook(x, site, lambda b: b), ref)


def test_lm_runner_leaves_no_hook_when_a_forward_raises(monkeypatch):
    lm = build_lm("gpt2")
    runner = LMRunner(lm)
    base, _ = make_batch("right", seed=0)
    with torch.no_grad():
        ref = runner.logits(base)
    first, late = Site(0, "resid_pre", "last"), Site(2, "mlp_out", "last")
    mid = Site(1, "attn_out", "last")
    cache = runner.prepare(base, mid)
    with monkeypatch.context() as m:
        m.setattr(runner.blocks[1].mlp, "forward", _boom)  # after block 1's attention hook has fired
        for call in (lambda: runner.collect_many(base, [first, late]),
                     lambda: runner.prepare_many(base, [first, mid, late]),
                     lambda: runner.run_from_site(cache, lambda b: b + 1),
                     lambda: runner.run_with_hook(base, mid, lambda b: b + 1)):
            with pytest.raises(Boom):
                call()
            assert _hooks_left(lm) == []
    for site in (first, mid):
        with pytest.raises(Boom):
            runner.run_with_hook(base, site, _boom)
        assert _hooks_left(lm) == []
    with torch.no_grad():
        assert torch.equal(runner.logits(base), ref)
        assert torch.allclose(runner.run_from_site(cache, lambda b: b), ref, atol=1e-5)
        assert torch.equal(runner.run_with_hook(base, mid, lambda b: b), ref)


def test_every_hook_in_the_neural_package_goes_through_hooks():
    for path in sorted((ROOT / "abstract" / "neural").glob("*.py")):
        if path.name == "hooks.py":
            continue
        text = path.read_text()
        assert not re.search(r"\.register_forward(_pre)?_hook\(", text), f"{path.name} registers a hook directly"


# ----- devices ------------------------------------------------------------------------------
def test_runners_read_the_model_device_even_without_parameters():
    assert module_device(nn.ReLU()) == torch.device("cpu")
    assert module_device(nn.BatchNorm1d(2).requires_grad_(False)) == torch.device("cpu")
    runner = make_runner(nn.Sequential(nn.ReLU(), nn.ReLU()))
    x = torch.tensor([[-1.0, 2.0]])
    assert runner.device == torch.device("cpu")
    assert torch.equal(runner.run_with_hook(x, Site(0, position=None), lambda b: b * 3), torch.tensor([[0.0, 6.0]]))


def test_no_device_is_chosen_outside_the_device_module():
    files = sorted((ROOT / "abstract" / "neural").glob("*.py")) + [ROOT / "abstract" / "engine" / "encoders.py"]
    for path in files:
        text = path.read_text()
        for pattern in (r"torch\.cuda\.", r"torch\.device\(", r"\"cuda", r"'cuda"):
            assert not re.search(pattern, text), f"{path.name} resolves a device itself ({pattern})"
