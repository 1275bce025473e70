"""Load the network a `network` declaration names, and re-initialise it for controls.

* ``torch "path/file.py:fn" { k v, ... }``: ``fn(**options)`` is called (the file is looked
  up relative to the spec's folder, then the working directory). The engine-reserved options
  ``prompt`` and ``answer`` are not passed. ``fn`` may return
    - an ``nn.Module`` (inputs encoded by its ``encode(list_of_input_dicts)`` method if it has
      one, else one-hot per input over its domain, concatenated in the model's input order);
    - ``(module, encode_fn)``;
    - ``(hf_causal_lm, tokenizer)`` -- a language model built in code (tests do this);
    - a dict with keys ``model`` and optionally ``encode`` / ``tokenizer``.
  A plain module's output must be ``[batch, n_classes]`` logits, classes = the output
  domain's values in order (several outputs: their product, first output slowest).
  The contract as types, and the checks that hold a builder to it at the ``network`` line:
  ``builder.py``; in words: docs/networks.md.
* ``hf "name-or-path" { prompt "...", answer "...", dtype float32, revision "main" }``:
  ``AutoModelForCausalLM.from_pretrained`` + ``AutoTokenizer.from_pretrained`` (a local
  folder written by ``save_pretrained`` works offline).
"""
from __future__ import annotations

import copy
import functools
import hashlib
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import nn

from ..hypothesis.options import reserved_network_options
from ..language import ast
from ..language.errors import SpecError
from .builder import check_declared_layers, own_encode, unpack
from .placement import hf_device_map

RESERVED = reserved_network_options()  # read by the engine, never passed to a builder


@dataclass
class LoadedNetwork:
    """A frozen network plus what is needed to feed it and to rebuild it untrained."""

    name: str
    kind: str  # "torch" (plain module) or "lm" (HF causal LM)
    module: nn.Module
    options: dict[str, Any] = field(default_factory=dict)
    encode: Optional[Callable] = None  # torch modules: list[dict] -> inputs
    tokenizer: Any = None  # LMs
    decl: Optional[ast.NetworkDecl] = None

    @property
    def is_lm(self) -> bool:
        return self.kind == "lm"

    @functools.cached_property
    def fingerprint(self) -> str:
        """What was loaded, as a hash: architecture, every weight and buffer, and the
        tokenizer's vocabulary. Part of the results-cache key, so new weights behind an
        unchanged spec (a replaced checkpoint, a retrained builder) are never served stale."""
        h = hashlib.sha256(fingerprint(self.module).encode())
        if self.tokenizer is not None:
            vocab = sorted(self.tokenizer.get_vocab().items()) if hasattr(self.tokenizer, "get_vocab") else []
            h.update(repr((type(self.tokenizer).__name__, vocab)).encode())
        return h.hexdigest()[:16]


def option_value(v: Any) -> Any:
    """AST option values -> plain Python (ranges become ``range``, calls stay as they are)."""
    if isinstance(v, ast.Range):
        return range(v.low, v.high + 1)
    if isinstance(v, list):
        return [option_value(x) for x in v]
    return v


def _resolve(path: str, spec_path: str) -> Optional[Path]:
    for base in (Path(spec_path).parent, Path.cwd()):
        p = (base / path)
        if p.exists():
            return p
    return None


def _import_file(file: Path) -> Any:
    name = "abstract_user_" + hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:  # a suffix no importer claims (not .py)
        raise ImportError(f"{file.name} is not a Python module file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[name]
        raise
    return module


def _is_hf(module: Any) -> bool:
    from ..neural.architectures import is_hf_lm
    return isinstance(module, nn.Module) and is_hf_lm(module)


def load_network(decl: ast.NetworkDecl, spec_path: str, device: str | torch.device = "cpu") -> LoadedNetwork:
    """Build or load the declared network, frozen, in eval mode, on ``device``."""
    options = {o.key: option_value(o.value) for o in decl.options}
    if decl.kind == "hf":
        net = _load_hf(decl, spec_path, options)
    else:
        net = _load_torch(decl, spec_path, options)
    placed = net.module if "device_map" in options else net.module.to(device)  # device_map: where it loaded
    net.module = placed.eval().requires_grad_(False)
    return net


def _load_torch(decl: ast.NetworkDecl, spec_path: str, options: dict) -> LoadedNetwork:
    file, _, fn_name = decl.source.rpartition(":")
    if not file or not fn_name:
        raise SpecError(f'torch network source "{decl.source}" must be "path/file.py:function"', decl.pos)
    path = _resolve(file, spec_path)
    if path is None:
        raise SpecError(f"cannot find {file} (looked next to the spec and in the working directory)", decl.pos)
    try:
        module = _import_file(path)
    except Exception as e:
        raise SpecError(f"importing {file} failed: {type(e).__name__}: {e}", decl.pos) from e
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise SpecError(f"{file} has no function `{fn_name}`", decl.pos)
    kwargs = {k: v for k, v in options.items() if k not in RESERVED}
    try:
        built = fn(**kwargs)
    except TypeError as e:
        raise SpecError(f"calling {fn_name}({', '.join(f'{k}=...' for k in kwargs)}) failed: {e}", decl.pos) from e
    got = unpack(built, fn_name, decl.pos)
    model, encode, tokenizer = got.model, got.encode, got.tokenizer
    if _is_hf(model):
        if tokenizer is None:
            raise SpecError(f"{fn_name}(...) returned a language model without a tokenizer: "
                            "return (model, tokenizer)", decl.pos)
        return LoadedNetwork(decl.name, "lm", model, options, tokenizer=tokenizer, decl=decl)
    if tokenizer is not None:
        raise SpecError(f"{fn_name}(...) returned a tokenizer beside a {type(model).__name__}, which is not a "
                        "supported language model (GPT-2, GPT-NeoX, Llama-like)", decl.pos,
                        hint="a plain module takes (module, encode): see docs/networks.md")
    if encode is None:
        encode = own_encode(model, fn_name, decl.pos)
    if encode is None and options.get("encoder") == "builder":
        raise SpecError(f"network {decl.name} declares `encoder builder`, but {fn_name}(...) supplies no encode: "
                        "return (module, encode) or give the module an `encode(inputs)` method", decl.pos,
                        hint="see docs/networks.md; or drop `encoder builder` to use the one-hot encoding")
    check_declared_layers(model, decl.pos)
    return LoadedNetwork(decl.name, "torch", model, options, encode=encode, decl=decl)


def _load_hf(decl: ast.NetworkDecl, spec_path: str, options: dict) -> LoadedNetwork:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    local = _resolve(decl.source, spec_path)
    source = str(local) if local is not None else decl.source
    kw: dict[str, Any] = {}
    if "revision" in options:
        kw["revision"] = str(options["revision"])
    dtype = options.get("dtype")
    placement = hf_device_map(decl, source, kw)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kw)
        model = AutoModelForCausalLM.from_pretrained(
            source, **kw, **({"dtype": getattr(torch, str(dtype))} if dtype else {}),
            **({"device_map": placement} if placement is not None else {}))
    except Exception as e:
        raise SpecError(f'cannot load hf "{decl.source}": {type(e).__name__}: {e}', decl.pos,
                        hint="a Hub name needs network access (or the local HF cache); a local folder "
                             "written by save_pretrained works offline") from e
    if not _is_hf(model):
        raise SpecError(f'hf "{decl.source}" is not a supported causal LM (GPT-2, GPT-NeoX, Llama-like)', decl.pos)
    return LoadedNetwork(decl.name, "lm", model, options, tokenizer=tokenizer, decl=decl)


def reinitialized(net: LoadedNetwork, seed: int = 0) -> nn.Module:
    """The same network with fresh random weights: the `random_network` control.

    A copy of the very module the builder returned (never a rebuild from a config, which
    would silently undo a builder's structural changes, e.g. removed LayerNorms), its weights
    re-drawn under ``seed``: HF models by their own ``_init_weights`` scheme (then re-tied),
    plain modules by every sub-module's ``reset_parameters`` (buffers such as fixed input
    encodings stay). The global RNG is left as it was.
    """
    device = next(net.module.parameters()).device
    fresh = copy.deepcopy(net.module)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        init_weights = getattr(fresh, "init_weights", None)  # HF models' (nn.Module declares neither method)
        if callable(init_weights) and callable(getattr(fresh, "_init_weights", None)):
            for m in fresh.modules():  # loaded weights are flagged "initialised"; re-draw them all
                m.__dict__.pop("_is_hf_initialized", None)
            for t in list(fresh.parameters()) + list(fresh.buffers()):
                t.__dict__.pop("_is_hf_initialized", None)
            init_weights()
        else:
            for m in fresh.modules():
                reset = getattr(m, "reset_parameters", None)
                if m is not fresh and callable(reset):
                    reset()
    return fresh.eval().requires_grad_(False)


def fingerprint(module: nn.Module) -> str:
    """Hash of the architecture (module repr) and every parameter and buffer."""
    h = hashlib.sha256(repr(module).encode())
    for name, t in list(module.named_parameters()) + list(module.named_buffers()):
        h.update(name.encode())
        h.update(str((tuple(t.shape), t.dtype)).encode())
        h.update(t.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes()
                 if t.numel() else b"")
    return h.hexdigest()[:16]
