"""The builder contract: what the function named by ``network n = torch "file.py:fn" { ... }``
must return, as types, and the checks that hold a returned network to it.

Why here and not where it breaks: a module that cannot take the model's inputs, or whose output
is not one logit per class, otherwise fails deep inside training with a matrix-shape error that
names neither the spec line nor what is missing. These checks fail at the ``network`` line and
say what to add. The contract in words, with examples: docs/networks.md.

``fn(**options)`` is user Python: ``verify``, ``align``, ``demo`` and the pytest plugin call it;
``check`` never does (nothing in ``abstract.language``/``abstract.solver`` imports this module).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import (TYPE_CHECKING, Any, Callable, Mapping, Optional, Protocol, Sequence, TypedDict, Union,
                    runtime_checkable)

import torch
from torch import nn

from ..language import ast
from ..language.errors import SpecError
from ..neural.architectures import UnsupportedModelError, torch_layer_paths

if TYPE_CHECKING:  # only for annotations: networks imports this module
    from ..causal import CausalModel
    from .networks import LoadedNetwork

InputRow = Mapping[str, Any]
"""One input of the causal model: input name -> value, in the model's input order. Values are
domain values: ``int`` for ranges, ``bool`` for bool, the member name (``str``) for enums."""

NetworkInput = Union[torch.Tensor, Sequence[torch.Tensor], Mapping[str, torch.Tensor]]
"""What ``encode`` returns: a tensor (called as ``module(x)``), a tuple (``module(*x)``) or a
dict (``module(**x)``); the tensors in it are moved to the network's device."""


@runtime_checkable
class Encode(Protocol):
    """Causal-model inputs -> what the module's forward takes (a batch of ``len(inputs)``)."""

    def __call__(self, inputs: Sequence[InputRow], /) -> NetworkInput: ...


@runtime_checkable
class TorchNetwork(Protocol):
    """The module a builder returns: an ``nn.Module`` whose forward maps a batch of encoded
    inputs to ``[batch, n_classes]`` logits (or an object with such a ``.logits``), one per
    class of the model's outputs, in :func:`class_order`. Deep-copyable: the
    ``random_network`` control is a copy with every ``reset_parameters()`` called."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def eval(self) -> Any: ...


@runtime_checkable
class EncodingNetwork(TorchNetwork, Protocol):
    """Optional: a network that encodes the model's inputs itself. Without ``encode`` (and
    without an encode function returned beside the module), inputs are one-hot encoded."""

    def encode(self, inputs: Sequence[InputRow], /) -> NetworkInput: ...


@runtime_checkable
class LayeredNetwork(TorchNetwork, Protocol):
    """Optional: ``layer N`` of a site is the output of the module at ``abstract_layers[N]``
    (dotted paths). Without it: the entries of a ``layers``/``blocks`` ModuleList or
    Sequential, else the children of the network (an ``nn.Sequential``) or of its only
    Sequential attribute."""

    abstract_layers: Sequence[str]


class BuiltDict(TypedDict, total=False):
    """The dict form of a builder's result; ``model`` is required."""

    model: nn.Module
    encode: Encode
    tokenizer: Any


Built = Union[nn.Module, tuple[nn.Module, Encode], tuple[nn.Module, Any], BuiltDict]
"""A module; ``(module, encode)``; ``(hf_causal_lm, tokenizer)``; or a :class:`BuiltDict`."""


class Builder(Protocol):
    """``fn`` in ``torch "file.py:fn" { k v, ... }``: called as ``fn(k=v, ...)`` (the engine's
    own options ``prompt``, ``answer``, ``dtype``, ``revision`` are not passed)."""

    def __call__(self, **options: Any) -> Built: ...


@dataclass
class Unpacked:
    """A builder's result taken apart."""

    model: nn.Module
    encode: Optional[Callable[..., Any]] = None
    tokenizer: Any = None


def unpack(built: Any, fn_name: str, pos: Optional[ast.Pos]) -> Unpacked:
    """Take a builder's result apart (see :data:`Built`), or say at the network line what it
    should have been."""
    forms = "a torch.nn.Module, (module, encode), (language model, tokenizer) or {'model': module, ...}"
    encode: Any = None
    tokenizer: Any = None
    if isinstance(built, dict):
        if "model" not in built:
            raise SpecError(f"{fn_name}(...) returned a dict without a 'model' key (keys: "
                            f"{', '.join(map(str, built)) or 'none'})", pos, hint=f"return {forms}")
        unknown = sorted(set(map(str, built)) - {"model", "encode", "tokenizer"})
        if unknown:
            raise SpecError(f"{fn_name}(...) returned a dict with unknown key(s) {', '.join(unknown)}", pos,
                            hint="known keys: model, encode, tokenizer")
        model, encode, tokenizer = built["model"], built.get("encode"), built.get("tokenizer")
    elif isinstance(built, (tuple, list)):
        if len(built) != 2:
            raise SpecError(f"{fn_name}(...) returned a {type(built).__name__} of {len(built)} items", pos,
                            hint=f"return {forms}")
        model, second = built
        if hasattr(second, "convert_tokens_to_ids"):
            tokenizer = second
        elif callable(second) and not isinstance(second, nn.Module):
            encode = second
        else:
            raise SpecError(f"{fn_name}(...) returned ({type(model).__name__}, {type(second).__name__}): the "
                            "second item is neither an encode function nor a tokenizer", pos, hint=f"return {forms}")
    else:
        model = built
    if not isinstance(model, nn.Module):
        raise SpecError(f"{fn_name}(...) returned {type(model).__name__}, expected a torch.nn.Module", pos,
                        hint=f"return {forms}")
    if encode is not None and not callable(encode):
        raise SpecError(f"{fn_name}(...) returned an encode that is not callable ({type(encode).__name__})", pos)
    return Unpacked(model, encode, tokenizer)


def own_encode(model: nn.Module, fn_name: str, pos: Optional[ast.Pos]) -> Optional[Callable[..., Any]]:
    """The module's ``encode`` method, if it has one. A sub-module or a plain attribute named
    ``encode`` is refused: it would be called with a list of input dicts."""
    encode = getattr(model, "encode", None)
    if encode is None:
        return None
    if isinstance(encode, nn.Module) or not callable(encode):
        raise SpecError(f"{fn_name}(...) returned a {type(model).__name__} whose `encode` is a "
                        f"{type(encode).__name__}, not a method: abstract calls `encode(inputs)` with a list of "
                        "the model's input dicts to feed the network", pos,
                        hint="rename that attribute, or make `encode` a method (see docs/networks.md)")
    return encode


def check_declared_layers(model: nn.Module, pos: Optional[ast.Pos]) -> None:
    """A declared ``abstract_layers`` must be a list of paths of modules the network has."""
    declared = getattr(model, "abstract_layers", None)
    if declared is None:
        return
    if isinstance(declared, str) or not isinstance(declared, Sequence) or not all(isinstance(p, str) for p in declared):
        raise SpecError(f"{type(model).__name__}.abstract_layers must be a list of module paths (strings), "
                        f"got {declared!r}", pos, hint='e.g. abstract_layers = ["embed", "layers.0", "layers.1"]')
    try:
        torch_layer_paths(model)
    except AttributeError as e:
        known = [n for n, _ in model.named_modules() if n]
        shown = ", ".join(known[:12]) + (" ..." if len(known) > 12 else "")
        raise SpecError(f"{type(model).__name__}.abstract_layers names a module it does not have: {e}", pos,
                        hint=f"its modules: {shown or 'none'}") from None


def check_layers(model: nn.Module, what: str, pos: Optional[ast.Pos]) -> list[str]:
    """The module paths ``layer 0, 1, ...`` name, or an error saying how to declare them."""
    check_declared_layers(model, pos)
    try:
        return torch_layer_paths(model)
    except UnsupportedModelError:
        raise SpecError(f"{what}: abstract cannot tell its layers, and sites are addressed as `layer N`", pos,
                        hint="give it a `layers` nn.ModuleList, or set `abstract_layers = [module paths]` "
                             "(layer N = the output of the N-th); see docs/networks.md") from None


def class_order(model: "CausalModel") -> list[str]:
    """The output classes, in logit order, as text: ``label=false``, ``label=true``."""
    outs = list(model.outputs)
    return [", ".join(f"{o}={_show(v)}" for o, v in zip(outs, combo))
            for combo in itertools.product(*[model.domain(o).values() for o in outs])]


def default_encoding(model: "CausalModel") -> tuple[str, int]:
    """How the one-hot default lays out the inputs (``a: 4 + b: 4 = 8 features``), and its width."""
    sizes = [(name, len(model.domain(name))) for name in model.inputs]
    width = sum(n for _, n in sizes)
    return f"{' + '.join(f'{name}: {n}' for name, n in sizes)} = {width} features", width


def check_fits(net: "LoadedNetwork", model: "CausalModel", encoder: Any, runner: Any) -> None:
    """Feed the network two of the model's inputs, the way training will (``encoder``,
    ``runner``: what the alignment uses), and check that it answers with one logit per output
    class. Fails at the ``network`` line with what is missing."""
    if net.is_lm:
        return  # LMs are read through prompts and a verbalizer: checked by their encoder
    pos = net.decl.pos if net.decl is not None else None
    what = f"network {net.name} ({type(net.module).__name__})"
    check_layers(net.module, what, pos)
    inputs = model.sample_inputs(2, seed=0)
    own = net.encode is not None
    try:
        x = encoder.encode(inputs)
    except Exception as e:  # user code: any failure is a contract failure, reported as such
        if not own:
            raise
        raise SpecError(f"{what}: encode(...) failed on inputs like {dict(inputs[0])}: {type(e).__name__}: {e}", pos,
                        hint="encode receives a list of dicts (input name -> value, in the model's input order) "
                             "and returns what forward takes; see docs/networks.md") from e
    try:
        with torch.no_grad():
            out = runner.logits(x)
    except Exception as e:
        raise _forward_failed(what, model, x, e, own, pos) from e
    _check_logits(what, model, getattr(out, "logits", out), len(inputs), len(encoder.classes), pos)


def _forward_failed(what: str, model: "CausalModel", x: Any, e: Exception, own: bool,
                    pos: Optional[ast.Pos]) -> SpecError:
    failure = f"{type(e).__name__}: {e}"
    if own:
        return SpecError(f"{what}: forward failed on what its encode returned ({_describe(x)}): {failure}", pos,
                         hint="encode must return what forward takes: a tensor (module(x)), a tuple (module(*x)) "
                              "or a dict (module(**x)); see docs/networks.md")
    layout, width = default_encoding(model)
    return SpecError(f"{what} has no `encode`, so the inputs of {model.name} are one-hot encoded ({layout}, a float "
                     f"tensor [batch, {width}]), and its forward failed on them: {failure}", pos,
                     hint="give the module an `encode(inputs)` method, return (module, encode) from the builder, "
                          f"or make its first layer take {width} features; see docs/networks.md")


def _check_logits(what: str, model: "CausalModel", logits: Any, batch: int, n: int, pos: Optional[ast.Pos]) -> None:
    if torch.is_tensor(logits) and tuple(logits.shape) == (batch, n):
        return
    got = f"a tensor of shape {tuple(logits.shape)}" if torch.is_tensor(logits) else f"a {type(logits).__name__}"
    order = class_order(model)
    shown = "; ".join(order[:6]) + (" ..." if len(order) > 6 else "")
    raise SpecError(f"{what} returns {got} for a batch of {batch}, but {model.name}'s outputs have {n} classes: "
                    f"expected [batch, {n}] logits, in the order {shown}", pos,
                    hint=f"end the module with a layer of {n} outputs (several outputs: one logit per "
                         "combination, first output slowest); see docs/networks.md")


def _show(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def _describe(x: Any) -> str:
    if torch.is_tensor(x):
        return f"a {x.dtype} tensor {list(x.shape)}"
    if isinstance(x, Mapping):
        return "a dict of " + ", ".join(f"{k}: {_describe(v)}" for k, v in x.items())
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of {len(x)} ({', '.join(_describe(v) for v in x)})"
    return f"a value of type {type(x).__name__}"
