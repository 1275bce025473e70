"""Sites inside a block: per-head attention outputs, q/k/v heads, and the residual between
attention and MLP (``resid_mid``), on every family of the architecture table.

Why taps: the runner's other sites are a block's input or output, or a sub-module's output.
These are a *slice* of some module's input or output (head ``h`` of ``head_out`` is columns
``h*Dh:(h+1)*Dh`` of the attention output projection's input; a query head is columns of the
query projection's output), or, for ``resid_mid``, a tensor no module boundary exposes whole.
A :class:`Tap` says where one member of a site is read and how it is written back; a site is
one member, or several for a head group (``heads``), whose slices are concatenated in the
group's order into one vector.

Layouts (``head_dim`` = Dh, ``n_heads`` = H, key-value heads = KV):

* GPT-2 ``c_attn`` output ``[q | k | v]``, each ``H*Dh`` wide, head-major inside;
* GPT-NeoX ``query_key_value`` output, per head ``[q_h | k_h | v_h]`` (``3*Dh`` per head);
* Phi-3 ``qkv_proj`` output ``[q (H*Dh) | k (KV*Dh) | v (KV*Dh)]``;
* Llama-like ``q_proj`` / ``k_proj`` / ``v_proj`` outputs (``k``/``v`` have KV heads).

All are projection outputs, so ``q``/``k`` are taken *before* rotary embeddings and before any
q/k norm (Qwen3, OLMo-2, Gemma-3). ``resid_mid`` is read at the input of the module the MLP
branch starts with (``ln_2``, ``post_attention_layernorm``, ``pre_feedforward_layernorm``, or the
MLP itself for OLMo-2); writing it replaces that input *and* adds the change to the block's
output, whose residual is ``resid_mid`` plus the MLP branch. Parallel-residual blocks (GPT-NeoX
with ``use_parallel_residual``) compute attention and MLP from the same input: there is no
residual between them, and a ``resid_mid`` site there is a :class:`SiteError`.

Head groups spanning several layers: the group's base value is read from the *unpatched* base
run, the intervention maps it to a new vector, and each member is set to its part of that
vector when its block runs (so a later member's untouched directions keep their clean-base
values, not values recomputed after an earlier member was patched).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import nn

from ..hypothesis.components import HEAD_COMPONENTS, KV_COMPONENTS
from .architectures import get_module, has_path
from .hooks import Hooks
from .sites import Site, SiteError, gather_positions

TAP_COMPONENTS = HEAD_COMPONENTS + ("resid_mid",)

# model_type -> path (inside a block) of the module whose input is resid_mid; others use the layout
RESID_MID_READER = {"gpt2": "ln_2", "gpt_neox": "post_attention_layernorm", "gemma2": "pre_feedforward_layernorm",
                    "gemma3_text": "pre_feedforward_layernorm", "olmo2": "mlp"}


def uses_taps(site: Site) -> bool:
    """Is ``site`` addressed by taps (a head, q/k/v or resid_mid site) rather than block hooks?"""
    return site.component in TAP_COMPONENTS


@dataclass(frozen=True)
class Tap:
    """One member of a site: columns ``lo:hi`` of ``module``'s first input (``side='input'``) or
    output (``'output'``) in block ``layer``; ``block``, for resid_mid, also takes the change."""

    layer: int
    module: nn.Module
    side: str
    lo: int
    hi: int
    block: Optional[nn.Module] = None

    @property
    def width(self) -> int:
        return self.hi - self.lo


@dataclass(frozen=True)
class AttnLayout:
    """Where one block's attention keeps its heads: (module, offset of head 0, stride) per component."""

    n_heads: int
    n_kv_heads: int
    head_dim: int
    parts: dict[str, tuple[nn.Module, str, int, int]]  # component -> (module, side, offset, stride)

    def heads_of(self, component: str) -> int:
        return self.n_kv_heads if component in KV_COMPONENTS else self.n_heads


def _in_width(module: nn.Module) -> Optional[int]:
    """Input width of a Linear (``in_features``) or a GPT-2 Conv1D (weight ``[in, out]``)."""
    if isinstance(module, nn.Linear):
        return module.in_features
    weight = getattr(module, "weight", None)
    return int(weight.shape[0]) if torch.is_tensor(weight) and weight.dim() == 2 else None


def attention_layout(runner: Any, layer: int) -> AttnLayout:
    """The head layout of block ``layer``'s attention (see module docstring)."""
    block = runner.blocks[layer]
    attn = get_module(block, runner.arch.attn)
    config = getattr(runner.model, "config", None)
    n_heads = int(getattr(config, "num_attention_heads", 0) or getattr(attn, "num_heads", 0))
    n_kv = int(getattr(config, "num_key_value_heads", None) or n_heads)
    head_dim = int(getattr(attn, "head_dim", 0) or getattr(attn, "head_size", 0)
                   or getattr(config, "hidden_size", 0) // max(n_heads, 1))
    q_w, kv_w = n_heads * head_dim, n_kv * head_dim
    parts: dict[str, tuple[nn.Module, str, int, int]] = {}
    def mod(name: str) -> nn.Module:
        return get_module(attn, name)

    if hasattr(attn, "c_attn") and hasattr(attn, "c_proj"):  # GPT-2
        fused, out = mod("c_attn"), mod("c_proj")
        parts = {"q": (fused, "output", 0, head_dim), "k": (fused, "output", q_w, head_dim),
                 "v": (fused, "output", 2 * q_w, head_dim)}
    elif hasattr(attn, "query_key_value") and hasattr(attn, "dense"):  # GPT-NeoX: per head [q|k|v]
        fused, out = mod("query_key_value"), mod("dense")
        parts = {c: (fused, "output", i * head_dim, 3 * head_dim) for i, c in enumerate(("q", "k", "v"))}
    elif hasattr(attn, "qkv_proj") and hasattr(attn, "o_proj"):  # Phi-3
        fused, out = mod("qkv_proj"), mod("o_proj")
        parts = {"q": (fused, "output", 0, head_dim), "k": (fused, "output", q_w, head_dim),
                 "v": (fused, "output", q_w + kv_w, head_dim)}
    elif all(hasattr(attn, p) for p in ("q_proj", "k_proj", "v_proj", "o_proj")):  # Llama-like
        out = mod("o_proj")
        parts = {c: (mod(f"{c}_proj"), "output", 0, head_dim) for c in ("q", "k", "v")}
    else:
        raise SiteError(f"cannot find the heads of {type(attn).__name__}: expected GPT-2 (c_attn/c_proj), GPT-NeoX "
                        "(query_key_value/dense), Phi-3 (qkv_proj/o_proj) or Llama-like (q/k/v/o_proj) projections")
    if n_heads < 1 or head_dim < 1 or _in_width(out) not in (None, q_w):
        raise SiteError(f"{type(attn).__name__}: {n_heads} heads of width {head_dim} do not match its output "
                        f"projection's input width {_in_width(out)}")
    parts["head_out"] = (out, "input", 0, head_dim)
    return AttnLayout(n_heads, n_kv, head_dim, parts)


def _resid_mid_tap(runner: Any, layer: int) -> Tap:
    block = runner.blocks[layer]
    config = getattr(runner.model, "config", None)
    if getattr(block, "use_parallel_residual", getattr(config, "use_parallel_residual", False)):
        raise SiteError(f"resid_mid: block {layer} of this {getattr(config, 'model_type', 'model')} computes attention "
                        "and MLP in parallel from the same input (use_parallel_residual), so there is no residual "
                        "between them; use resid_pre, attn_out, mlp_out or resid_post")
    path = RESID_MID_READER.get(str(getattr(config, "model_type", "")))
    if path is None or not has_path(block, path):
        if has_path(block, "pre_feedforward_layernorm"):
            path = "pre_feedforward_layernorm"
        elif has_path(block, "post_feedforward_layernorm"):  # post-norm blocks: the MLP reads resid_mid itself
            path = runner.arch.mlp
        elif has_path(block, "post_attention_layernorm"):
            path = "post_attention_layernorm"
        else:
            raise SiteError(f"resid_mid: cannot find the MLP branch's input in {type(block).__name__}")
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    return Tap(layer, get_module(block, path), "input", 0, hidden, block=block)


def site_taps(runner: Any, site: Site) -> list[Tap]:
    """The members of ``site`` in order (one, or a head group's), checked against the model."""
    out = []
    for layer, head in site.members:
        if not -runner.n_layers <= layer < runner.n_layers:
            raise SiteError(f"layer {layer} out of range for a {runner.n_layers}-block model")
        layer %= runner.n_layers
        if site.component == "resid_mid":
            out.append(_resid_mid_tap(runner, layer))
            continue
        lay = attention_layout(runner, layer)
        n = lay.heads_of(site.component)
        if head is None or not 0 <= head < n:
            kind = "key-value heads" if site.component in KV_COMPONENTS and n != lay.n_heads else "heads"
            raise SiteError(f"head {head} out of range: layer {layer} has {n} {kind} (0..{n - 1}) for "
                            f"component {site.component}")
        module, side, offset, stride = lay.parts[site.component]
        lo = offset + head * stride
        out.append(Tap(layer, module, side, lo, lo + lay.head_dim))
    return out


def site_width(runner: Any, site: Site) -> int:
    """Width of the site's vector (Dh per head; the hidden size for resid_mid)."""
    return sum(t.width for t in site_taps(runner, site))


def _first_input(args: tuple, kwargs: dict) -> torch.Tensor:
    if args:
        return args[0]
    return kwargs["hidden_states"] if "hidden_states" in kwargs else next(iter(kwargs.values()))


def _with_first_input(args: tuple, kwargs: dict, new: torch.Tensor) -> tuple[tuple, dict]:
    if args:
        return (new, *args[1:]), kwargs
    key = "hidden_states" if "hidden_states" in kwargs else next(iter(kwargs))
    return args, {**kwargs, key: new}


def _first(x: Any) -> torch.Tensor:
    return x[0] if isinstance(x, (tuple, list)) else x


def _replace_first(x: Any, new: torch.Tensor) -> Any:
    return (new, *x[1:]) if isinstance(x, tuple) else new


def _set_columns(act: torch.Tensor, pos: torch.Tensor, lo: int, hi: int, new: torch.Tensor) -> torch.Tensor:
    """Copy of ``act`` with ``act[b, pos[b], lo:hi] = new[b]``; out of place, so grads flow into ``new``."""
    rows = torch.arange(act.shape[0], device=act.device)
    pos = pos.to(act.device)
    cur = act[rows, pos]
    row = torch.cat([cur[:, :lo], new.to(act.dtype), cur[:, hi:]], dim=-1)
    return act.index_put((rows, pos), row)


def register_read(hooks: Hooks, runner: Any, site: Site, on_act: Callable[[torch.Tensor], None]) -> None:
    """Hooks that call ``on_act([B, T, width])`` once every member of ``site`` has been seen."""
    taps = site_taps(runner, site)
    seen: dict[int, torch.Tensor] = {}

    def got(i: int, tap: Tap, full: torch.Tensor) -> None:
        seen[i] = full[..., tap.lo:tap.hi].detach()
        if len(seen) == len(taps):
            on_act(torch.cat([seen[j] for j in range(len(taps))], dim=-1))

    for i, tap in enumerate(taps):
        if tap.side == "input":
            hooks.forward_pre(tap.module, lambda m, a, k, i=i, t=tap: got(i, t, _first_input(a, k)), with_kwargs=True)
        else:
            hooks.forward(tap.module, lambda m, a, o, i=i, t=tap: got(i, t, _first(o)))


def _write_resid_mid(hooks: Hooks, tap: Tap, positions: torch.Tensor, part: torch.Tensor) -> None:
    """Set the MLP branch's input to ``part`` and add ``part - old`` to the block's output, whose
    residual is resid_mid: together, resid_mid itself is ``part`` for the rest of the network."""
    assert tap.block is not None
    delta: dict[str, torch.Tensor] = {}

    def pre(m: nn.Module, a: tuple, k: dict) -> tuple[tuple, dict]:
        x = _first_input(a, k)
        delta["d"] = part.to(x.dtype) - gather_positions(x, positions)
        return _with_first_input(a, k, _set_columns(x, positions, 0, x.shape[-1], part))

    def post(m: nn.Module, a: tuple, o: Any) -> Any:
        h = _first(o)
        rows = torch.arange(h.shape[0], device=h.device)
        return _replace_first(o, h.index_put((rows, positions.to(h.device)), delta.pop("d"), accumulate=True))

    hooks.forward_pre(tap.module, pre, with_kwargs=True)
    hooks.forward(tap.block, post)


def register_write(hooks: Hooks, runner: Any, site: Site, positions: torch.Tensor, value: torch.Tensor) -> None:
    """Hooks that set ``site`` to ``value`` (``[B, width]``, members concatenated) at ``positions``."""
    taps = site_taps(runner, site)
    widths = [t.width for t in taps]
    if value.shape[-1] != sum(widths):
        raise ValueError(f"{site.label} holds {sum(widths)} values per example, got {value.shape[-1]}")
    for tap, part in zip(taps, torch.split(value, widths, dim=-1)):
        if tap.block is not None:  # resid_mid: the MLP branch reads the new value, the residual takes the change
            _write_resid_mid(hooks, tap, positions, part)
        elif tap.side == "input":
            hooks.forward_pre(tap.module, lambda m, a, k, t=tap, p=part: _with_first_input(
                a, k, _set_columns(_first_input(a, k), positions, t.lo, t.hi, p)), with_kwargs=True)
        else:
            hooks.forward(tap.module, lambda m, a, o, t=tap, p=part: _replace_first(
                o, _set_columns(_first(o), positions, t.lo, t.hi, p)))
