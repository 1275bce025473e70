"""Addressing neural sites: *where* in a network a high-level variable may live.

A :class:`Site` is a plain, hashable value (usable as a dict key, in JSON reports and
grid searches). It names a location in the field's vocabulary:

* ``resid_pre``  -- the residual stream entering block ``layer``;
* ``resid_post`` -- the residual stream leaving block ``layer`` (alias ``block_output``);
* ``attn_out``   -- the output of block ``layer``'s attention sub-module;
* ``mlp_out``    -- the output of block ``layer``'s MLP sub-module;
* ``resid_mid``  -- the residual stream between block ``layer``'s attention and MLP;
* ``head_out``, ``q``, ``k``, ``v`` -- one attention head's output (input of the output
  projection) or query/key/value projection output, at ``head``; ``heads`` names a *group*
  of (layer, head) pairs interchanged together as one concatenated vector (see
  :mod:`abstract.neural.taps`).

For language models activations are ``[batch, seq, hidden]`` and ``position`` picks one
token per example (see :func:`resolve_positions`). For plain torch modules activations
are ``[batch, hidden]`` and ``position`` is ``None``; the site is either ``layer N`` (the
output of the N-th layer module, see :mod:`abstract.neural.architectures`) or an explicit
dotted module path (``module="net.3"``) whose output is the activation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Union

import torch

from ..hypothesis.components import HEAD_COMPONENTS, canonical_component

POSITION_KEYWORDS = ("last", "first")
SLOT_PREFIX = "slot:"  # position "slot:a": the token of template slot `a`, found per example
NAMED_POSITIONS = "named_positions"  # key of the encoded inputs holding {slot: LongTensor[batch]}

Position = Union[int, str, None]


class SiteError(IndexError, ValueError):
    """A site this network or prompt cannot honour: a layer out of range, an unknown position or
    slot, a token index past the end of some prompt.

    Why a named error: the engine reports these as the spec's problem (with its location) and
    lets any other exception show as a bug. It is an IndexError and a ValueError too, for callers
    that catch those (as numpy's ``AxisError`` is).
    """


@dataclass(frozen=True)
class Site:
    """One intervention location.

    ``layer``: block index (LMs) or index into the layer-module list (torch modules).
    ``component``: one of :data:`abstract.hypothesis.components.COMPONENTS` (aliases are normalised on construction).
    ``position``: token index among the *real* (non-pad) tokens, negative counts from the
    end, ``'last'``/``'first'``, ``'slot:NAME'`` (a prompt-template slot, whose token index the
    encoder records per example under :data:`NAMED_POSITIONS`: values of different token
    lengths move it), or ``None`` for position-free (plain torch) activations.
    ``module``: a dotted module path for plain torch modules; overrides ``layer``.
    ``head``: the attention head of a per-head component (``head_out``, ``q``, ``k``, ``v``).
    ``heads``: a head *group*, ``((layer, head), ...)`` in the order their vectors are
    concatenated; ``layer`` is then the group's first (lowest) layer, set on construction.
    """

    layer: Optional[int] = None
    component: str = "resid_post"
    position: Position = "last"
    module: Optional[str] = None
    head: Optional[int] = None
    heads: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "component", canonical_component(self.component))
        if self.heads:
            object.__setattr__(self, "heads", tuple((int(la), int(hd)) for la, hd in self.heads))
            if self.head is not None:
                raise ValueError("a Site names one `head` or a group of `heads`, not both")
            if len(set(self.heads)) < len(self.heads):
                raise ValueError(f"a head group lists a head twice: {self.heads}")
            lowest = min(la for la, _ in self.heads)
            if self.layer is not None and self.layer != lowest:
                raise ValueError(f"a head group's layer is its lowest layer ({lowest}), not {self.layer}")
            object.__setattr__(self, "layer", lowest)
        if (self.head is not None or self.heads) and self.component not in HEAD_COMPONENTS:
            raise ValueError(f"component {self.component!r} has no heads; a head site needs one of "
                             f"{', '.join(HEAD_COMPONENTS)}")
        if self.component in HEAD_COMPONENTS and self.head is None and not self.heads:
            raise ValueError(f"a {self.component} site needs a head (or a group of heads)")
        if self.layer is None and self.module is None:
            raise ValueError("a Site needs a layer index or a module path")
        if isinstance(self.position, str) and self.position not in POSITION_KEYWORDS \
                and not self.position.startswith(SLOT_PREFIX):
            raise SiteError(f"unknown position {self.position!r}; use an int, 'last', 'first' or 'slot:NAME'")

    @property
    def members(self) -> tuple[tuple[int, Optional[int]], ...]:
        """The (layer, head) pairs the site spans: the group, or its own (layer, head)."""
        if self.heads:
            return self.heads
        return ((int(self.layer or 0), self.head),)

    @property
    def layers(self) -> tuple[int, ...]:
        """Every block the site touches, lowest first (one, except for head groups)."""
        return tuple(sorted({la for la, _ in self.members}))

    @property
    def label(self) -> str:
        """Short human-readable name, e.g. ``L3.resid_post@last``, ``L9.H6.head_out@last``,
        ``H[9.6,9.9].head_out@last`` or ``net.3``."""
        if self.module is not None:
            where = self.module
        elif self.heads:
            where = "H[" + ",".join(f"{la}.{hd}" for la, hd in self.heads) + f"].{self.component}"
        elif self.head is not None:
            where = f"L{self.layer}.H{self.head}.{self.component}"
        else:
            where = f"L{self.layer}.{self.component}"
        return where if self.position is None else f"{where}@{self.position}"

    def __str__(self) -> str:  # pragma: no cover - cosmetic
        return self.label


def resolve_positions(
    position: Position, attention_mask: Optional[torch.Tensor], seq_len: int, batch: int,
    device: Optional[torch.device] = None, named: Optional[Mapping[str, torch.Tensor]] = None,
) -> torch.Tensor:
    """Turn a site position into one token index per example (``LongTensor[batch]``).

    Why per example: with padding, "the last token" sits at a different index in each
    row. Real tokens are assumed contiguous (left- or right-padding, as tokenizers do);
    an int ``p >= 0`` is the p-th real token, ``p < 0`` counts back from the last real
    token (``-1 == 'last'``). Without an attention mask every token is real. ``'slot:NAME'``
    reads the per-example indices in ``named[NAME]`` (absolute, as the encoder found them).
    """
    if position is None:
        raise ValueError("this site has no position; it addresses a position-free activation")
    if attention_mask is None:
        first = torch.zeros(batch, dtype=torch.long, device=device)
        last = torch.full((batch,), seq_len - 1, dtype=torch.long, device=device)
    else:
        mask = attention_mask.to(torch.bool)
        if mask.shape != (batch, seq_len):
            raise ValueError(f"attention_mask shape {tuple(mask.shape)} != {(batch, seq_len)}")
        if not bool(mask.any(dim=1).all()):
            raise ValueError("an example has no real tokens (all-zero attention_mask row)")
        first = mask.to(torch.long).argmax(dim=1)
        last = seq_len - 1 - mask.flip(1).to(torch.long).argmax(dim=1)
        device = mask.device
    if position == "last":
        idx = last
    elif position == "first":
        idx = first
    elif isinstance(position, int):
        idx = first + position if position >= 0 else last + 1 + position
    elif isinstance(position, str) and position.startswith(SLOT_PREFIX):
        slot = position[len(SLOT_PREFIX):]
        if not named or slot not in named:
            raise ValueError(f"no token positions were recorded for template slot {slot!r}")
        idx = named[slot].to(first.device)
        if idx.shape != (batch,):
            raise ValueError(f"slot {slot!r} positions have shape {tuple(idx.shape)}, expected ({batch},)")
    else:
        raise ValueError(f"cannot resolve position {position!r}")
    if bool((idx < first).any()) or bool((idx > last).any()):
        raise SiteError(f"position {position!r} falls outside the real tokens of some example")
    return idx.to(torch.long)


def gather_positions(acts: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``acts[b, positions[b]]`` for every row: ``[batch, seq, hidden] -> [batch, hidden]``."""
    rows = torch.arange(acts.shape[0], device=acts.device)
    return acts[rows, positions.to(acts.device)]


def scatter_positions(acts: torch.Tensor, positions: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """Copy of ``acts`` with ``acts[b, positions[b]] = new[b]``; out-of-place so grads flow."""
    rows = torch.arange(acts.shape[0], device=acts.device)
    return acts.index_put((rows, positions.to(acts.device)), new.to(acts.dtype))
