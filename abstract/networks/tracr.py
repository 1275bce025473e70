"""Run a tracr-compiled transformer as a plain torch network, with its residual stream labelled.

tracr (PyPI ``tracr-pypi``) compiles a RASP program into transformer weights and names every
residual dimension (``"tokens:2"``, ``"m:0"``, ``"one"``). That makes it ground truth for the
verifier: we know which layer and which residual dimensions hold each RASP variable.
:func:`from_compiled` turns the compiled model (``compile_rasp_to_model(...)``'s
``AssembledTransformerModel``) into a :class:`TracrTransformer` the engine runs as a plain
torch network, and :attr:`TracrTransformer.placements` says where tracr put each variable.

**Positions.** The engine's plain-torch path addresses a site as one ``[batch, hidden]``
activation and caches a *chain*: the suffix after a site is run from the site activation
alone. A sequence model fits that only if a site carries the whole state of the forward pass,
so every layer module here outputs the residual stream of *all* positions, flattened
position-major: neuron ``p * d_model + d`` is residual dimension ``d`` at sequence position
``p`` (position 0 is BOS). A RASP variable at one position is then a set of neurons
(:meth:`Placement.neurons`), a ``neurons(...)`` intervention on exactly those is tracr's
subspace, and DAS searches the whole flattened stream. (One position per site would need
position-aware sites on plain torch networks, which the torch runner does not have, and the
chain cache would no longer hold.)

**Layers.** ``layer 0`` is the embedding (token + position), ``layer k`` (k >= 1) the residual
stream after tracr's k-th sub-layer: attention of tracr layer ``(k-1)//2`` for odd k, its MLP
for even k -- the same order as tracr's own ``output.residuals`` (our layer k = its index k-1).
Sub-layers tracr left empty (all-zero weights) are kept, so the numbering matches tracr.

**Outputs.** The head reads the output variable's residual dimensions (tracr's unembedding)
at the chosen positions. One position: logits over the output values in the output
encoder's order. Several: logits over their product (first position slowest, the engine's
convention for several outputs), the sum of the per-position logits, so its argmax is the
per-position argmax. Only categorical outputs are supported (the engine classifies).

No JAX at import time: :func:`from_compiled` needs only ``.params`` (array-likes),
``.residual_labels``, ``.model_config`` and the encoders; :func:`compile_program` and
:func:`tracr_outputs` import tracr when called.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["Placement", "TracrTransformer", "from_compiled", "compile_program", "tracr_outputs"]


@dataclass(frozen=True)
class Placement:
    """Where tracr put one RASP variable: residual dimensions (one per value, or one for a
    numerical variable) and the first site layer whose output holds it."""

    label: str  # tracr's residual label: the RASP name plus a process-wide id ("m_6"), or "tokens"
    values: tuple[str, ...]  # the value each dimension one-hot encodes ('' for numerical)
    dims: tuple[int, ...]  # residual dimensions, 0..d_model-1
    layer: int  # site layer that writes it (0 = embedding; -1: nothing does); held from there on
    d_model: int

    def neurons(self, position: int) -> tuple[int, ...]:
        """Flattened neuron indices of this variable at sequence ``position`` (0 = BOS)."""
        return tuple(position * self.d_model + d for d in self.dims)


def _np(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


class TracrEmbed(nn.Module):
    """Token ids ``[B, T]`` -> flattened residual ``[B, T * D]`` (token + position embedding)."""

    token_embed: torch.Tensor  # buffers, declared for the type checker
    pos_embed: torch.Tensor

    def __init__(self, token_embed: np.ndarray, pos_embed: np.ndarray, dtype: torch.dtype):
        super().__init__()
        self.register_buffer("token_embed", torch.tensor(token_embed, dtype=dtype))
        self.register_buffer("pos_embed", torch.tensor(pos_embed, dtype=dtype))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        h = self.token_embed[tokens] + self.pos_embed[torch.arange(t, device=tokens.device)]
        return h.flatten(1)


class TracrAttention(nn.Module):
    """One tracr attention sub-layer, residual included: ``x + MHA(x)`` on the flattened stream."""

    query: nn.Linear  # set by name in __init__
    key: nn.Linear
    value: nn.Linear
    linear: nn.Linear

    def __init__(self, p: Mapping[str, Mapping[str, Any]], heads: int, key_size: int, d_model: int,
                 causal: bool, dtype: torch.dtype):
        super().__init__()
        self.heads, self.key_size, self.d_model, self.causal = heads, key_size, d_model, causal
        for name in ("query", "key", "value", "linear"):
            n_in, n_out = _np(p[name]["w"]).shape
            lin = nn.Linear(n_in, n_out, bias=True, dtype=dtype)
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(_np(p[name]["w"]).T))
                lin.bias.copy_(torch.tensor(_np(p[name].get("b", np.zeros(lin.out_features)))))
            setattr(self, name, lin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        h = x.view(b, -1, self.d_model)
        t = h.shape[1]
        q = self.query(h).view(b, t, self.heads, self.key_size)
        k = self.key(h).view(b, t, self.heads, self.key_size)
        v = self.value(h).view(b, t, self.heads, self.key_size)
        logits = torch.einsum("bthd,bThd->bhtT", q, k) / float(np.sqrt(self.key_size))
        if self.causal:
            keep = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
            logits = logits.masked_fill(~keep, -1e30)
        w = logits.softmax(-1)
        out = torch.einsum("bhtT,bThd->bthd", w, v).reshape(b, t, self.heads * self.key_size)
        return (h + self.linear(out)).flatten(1)


class TracrMLP(nn.Module):
    """One tracr MLP sub-layer, residual included: ``x + W2 relu(W1 x)`` on the flattened stream."""

    linear_1: nn.Linear  # set by name in __init__
    linear_2: nn.Linear

    def __init__(self, p: Mapping[str, Mapping[str, Any]], d_model: int, dtype: torch.dtype):
        super().__init__()
        self.d_model = d_model
        for name in ("linear_1", "linear_2"):
            w = _np(p[name]["w"])
            n_in, n_out = w.shape
            lin = nn.Linear(n_in, n_out, bias=True, dtype=dtype)
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(w.T))
                lin.bias.copy_(torch.tensor(_np(p[name].get("b", np.zeros(w.shape[1])))))
            setattr(self, name, lin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        h = x.view(b, -1, self.d_model)
        return (h + self.linear_2(torch.relu(self.linear_1(h)))).flatten(1)


class TracrHead(nn.Module):
    """Flattened residual -> logits over the output classes (tracr's unembedding at ``positions``)."""

    out_dims: torch.Tensor  # buffers, declared for the type checker
    positions: torch.Tensor
    digits: torch.Tensor

    def __init__(self, out_dims: Sequence[int], positions: Sequence[int], d_model: int, scale: float):
        super().__init__()
        self.d_model, self.scale = d_model, float(scale)
        self.register_buffer("out_dims", torch.tensor(list(out_dims), dtype=torch.long))
        self.register_buffer("positions", torch.tensor(list(positions), dtype=torch.long))
        n = len(out_dims)
        digits = list(itertools.product(range(n), repeat=len(positions)))  # first position slowest
        self.register_buffer("digits", torch.tensor(digits, dtype=torch.long))

    def per_position(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, len(positions), n_values]``: tracr's unembedded output at each read position."""
        h = x.view(x.shape[0], -1, self.d_model)
        return h[:, self.positions][:, :, self.out_dims]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.per_position(x)  # [B, P, V]
        p = torch.arange(out.shape[1], device=x.device)
        return self.scale * out[:, p, self.digits].sum(-1)  # [B, V ** P]


class TracrTransformer(nn.Module):
    """A tracr-compiled transformer as a chain ``head(layers[-1](...layers[0](tokens)))``.

    ``encode`` turns the engine's input dicts (model input order = sequence order) into token
    ids with BOS prepended; ``placements`` maps each RASP variable to its :class:`Placement`."""

    def __init__(self, embed: TracrEmbed, blocks: Sequence[nn.Module], head: TracrHead, *,
                 residual_labels: Sequence[str], placements: Mapping[str, Placement],
                 token_ids: Mapping[Any, int], bos_id: int, seq_len: int, output_values: Sequence[Any],
                 layer_names: Sequence[str]):
        super().__init__()
        self.layers = nn.ModuleList([embed, *blocks])
        self.head = head
        self.residual_labels = list(residual_labels)
        self.placements = dict(placements)
        self.token_ids = dict(token_ids)
        self.bos_id = bos_id
        self.seq_len = seq_len  # positions including BOS
        self.output_values = list(output_values)
        self.layer_names = list(layer_names)

    @property
    def d_model(self) -> int:
        return len(self.residual_labels)

    def placement(self, name: str) -> Placement:
        """The placement of a RASP variable by label (``"m_6"``) or by its ``.named(...)`` name
        (``"m"``; tracr appends an id that depends on how many expressions the process built)."""
        if name in self.placements:
            return self.placements[name]
        found = [p for label, p in self.placements.items()
                 if label.rpartition("_")[0] == name and label.rpartition("_")[2].isdigit()]
        if len(found) != 1:
            raise KeyError(f"{name!r} names {len(found)} variables of the residual stream "
                           f"{sorted(self.placements)}")
        return found[0]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = tokens
        for layer in self.layers:
            x = layer(x)
        return self.head(x)

    def residuals(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """The residual stream ``[B, T, D]`` after every layer (0 = embedding)."""
        out, x = [], tokens
        for layer in self.layers:
            x = layer(x)
            out.append(x.view(x.shape[0], -1, self.d_model))
        return out

    def encode(self, inputs: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        """Input dicts (one value per non-BOS position, in order) -> token ids ``[N, T]``.

        Sequences are always full length (``max_seq_len``): no padding, so every position is
        a token the causal model names."""
        rows = []
        for x in inputs:
            vals = list(x.values())
            if len(vals) != self.seq_len - 1:
                raise ValueError(f"tracr model takes {self.seq_len - 1} tokens, got {len(vals)}: {x}")
            try:
                rows.append([self.bos_id] + [self.token_ids[v] for v in vals])
            except KeyError as e:
                raise ValueError(f"value {e.args[0]!r} is not in the tracr vocabulary "
                                 f"{sorted(map(str, self.token_ids))}") from None
        return torch.tensor(rows, dtype=torch.long, device=self.head.out_dims.device)

    def decode(self, tokens: torch.Tensor) -> list[list[Any]]:
        """Per read position, the output value tracr's argmax unembedding gives."""
        with torch.no_grad():
            x = tokens
            for layer in self.layers:
                x = layer(x)
            idx = self.head.per_position(x).argmax(-1)
        return [[self.output_values[i] for i in row] for row in idx.tolist()]


def _split(label: str) -> tuple[str, str]:
    name, _, value = label.partition(":")
    return name, value


def _written(w_out: np.ndarray, dims: Sequence[int]) -> bool:
    return bool(np.any(np.abs(w_out[:, list(dims)]) > 0))


def from_compiled(compiled: Any, output: str, *, positions: Optional[Sequence[int]] = None,
                  scale: float = 1.0, dtype: torch.dtype = torch.float32) -> TracrTransformer:
    """Build the torch network from tracr's ``AssembledTransformerModel``.

    ``output`` is the RASP label of the program's output (``program.label``); ``positions``
    are the sequence positions the head reads (default: every non-BOS position); ``scale``
    multiplies the logits (tracr's are about 1; a larger scale only sharpens the
    cross-entropy used to train interventions, the argmax is unchanged)."""
    params = {k: dict(v) for k, v in compiled.params.items()}
    cfg = compiled.model_config
    act = getattr(cfg.activation_function, "__name__", str(cfg.activation_function))
    if act != "relu" or getattr(cfg, "layer_norm", False):
        raise ValueError(f"unsupported tracr config: activation {act}, layer_norm {cfg.layer_norm}")
    labels = list(compiled.residual_labels)
    d = len(labels)
    token_embed = _np(params["token_embed"]["embeddings"])
    pos_embed = _np(params["pos_embed"]["embeddings"])
    seq_len = pos_embed.shape[0]
    embed = TracrEmbed(token_embed, pos_embed, dtype)

    blocks: list[nn.Module] = []
    names = ["embed"]
    writes: list[np.ndarray] = [np.concatenate([token_embed, pos_embed], 0)]
    for layer in range(cfg.num_layers):
        pre = f"transformer/layer_{layer}"
        attn = {n: params[f"{pre}/attn/{n}"] for n in ("query", "key", "value", "linear")}
        blocks.append(TracrAttention(attn, cfg.num_heads, cfg.key_size, d, bool(cfg.causal), dtype))
        writes.append(_np(attn["linear"]["w"]))
        mlp = {n: params[f"{pre}/mlp/{n}"] for n in ("linear_1", "linear_2")}
        blocks.append(TracrMLP(mlp, d, dtype))
        writes.append(_np(mlp["linear_2"]["w"]))
        names += [f"layer_{layer}/attn", f"layer_{layer}/mlp"]

    groups: dict[str, list[tuple[str, int]]] = {}
    for i, label in enumerate(labels):
        name, value = _split(label)
        groups.setdefault(name, []).append((value, i))
    placements = {}
    for name, items in groups.items():
        dims = tuple(i for _, i in items)
        layer = next((k for k, w in enumerate(writes) if _written(w, dims)), -1)
        placements[name] = Placement(name, tuple(v for v, _ in items), dims, layer, d)
    if output not in placements:
        raise ValueError(f"output {output!r} is not in the residual stream (variables: {sorted(placements)})")

    enc_out = compiled.output_encoder
    if enc_out is None or not hasattr(enc_out, "encoding_map"):
        raise ValueError("only categorical outputs are supported (the engine classifies)")
    out_values = sorted(enc_out.encoding_map, key=enc_out.encoding_map.get)
    out_dims = [labels.index(f"{output}:{v}") for v in out_values]
    enc_in = compiled.input_encoder
    if enc_in is None or not hasattr(enc_in, "encoding_map"):
        raise ValueError("only categorical inputs are supported (tokens from a finite vocabulary)")
    bos = enc_in.bos_token
    if bos is None:
        raise ValueError("compile the program with a BOS token (tracr's default)")
    token_ids = {v: i for v, i in enc_in.encoding_map.items() if v not in (bos, enc_in.pad_token)}
    read = list(positions) if positions is not None else list(range(1, seq_len))
    if not read or any(not 1 <= p < seq_len for p in read):
        raise ValueError(f"positions must lie in 1..{seq_len - 1} (0 is BOS), got {read}")
    head = TracrHead(out_dims, read, d, scale).to(dtype=dtype)
    return TracrTransformer(embed, blocks, head, residual_labels=labels, placements=placements,
                            token_ids=token_ids, bos_id=enc_in.encoding_map[bos], seq_len=seq_len,
                            output_values=out_values, layer_names=names).eval().requires_grad_(False)


def compile_program(program: Any, vocab: set, max_seq_len: int, bos: str = "BOS",
                    **kwargs: Any) -> tuple[Any, TracrTransformer]:
    """Compile a RASP program with tracr (imported here) and load it: ``(compiled, module)``.

    ``bos`` names the BOS token (it must not be in ``vocab``); ``kwargs`` go to
    :func:`from_compiled` (``positions``, ``scale``, ``dtype``)."""
    from tracr.compiler import compiling

    compiled = compiling.compile_rasp_to_model(program, vocab=vocab, max_seq_len=max_seq_len,
                                               compiler_bos=bos)
    return compiled, from_compiled(compiled, program.label, **kwargs)


def tracr_outputs(compiled: Any, sequences: Sequence[Sequence[Any]]) -> tuple[np.ndarray, list[list[Any]]]:
    """tracr's own forward on a batch of sequences (BOS included): ``(residuals, decoded)``.

    ``residuals`` is ``[L + 1, B, T, D]``: the embedding, then after every sub-layer (the
    layout of :meth:`TracrTransformer.residuals`); ``decoded`` the argmax output value at
    every position after BOS."""
    import jax.numpy as jnp

    ids = jnp.array([compiled.input_encoder.encode(list(s)) for s in sequences])
    out = compiled.forward(compiled.params, ids)
    tout = out.transformer_output
    res = np.stack([np.asarray(tout.input_embeddings)] + [np.asarray(r) for r in tout.residuals])
    decoded = [compiled.output_encoder.decode(row[1:]) for row in np.asarray(out.unembedded_output).tolist()]
    return res, decoded
