"""What a runner remembers about a batch of *base* inputs so training steps are cheap.

Why: the model is frozen, so everything computed before the intervention site is the same
at every training step. A :class:`BaseCache` holds that prefix (the hidden states where the
run resumes, the per-block call arguments such as attention masks and rotary embeddings,
and the base activation at the site); the runner then only executes the suffix.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional, Sequence, Union

import torch

from .sites import Site

# What a run puts at the site: a ``[batch, hidden]`` tensor, or a function of the base activation.
NewAct = Union[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]
# The positional and keyword arguments one block was called with.
BlockCall = tuple[tuple, dict]


@dataclass
class BaseCache:
    """Prefix state for one site and one batch of base inputs.

    ``base_act``: ``[batch, hidden]`` activation at the site (the ``b`` of interventions).
    ``positions``: ``LongTensor[batch]`` token index per example (``None`` for torch MLPs).
    ``hidden``: where the suffix resumes (LMs: ``[batch, seq, hidden]`` input of block
    ``start`` -- or output of the last block for ``resid_post`` at the last layer).
    ``calls``: ``(args, kwargs)`` each block from ``start`` on was called with, hidden
    states removed. ``cached``: False when the runner had to fall back to re-running the
    whole model with a hook (``note`` says why); results are still correct, only slower.
    """

    site: Site
    base_act: torch.Tensor
    positions: Optional[torch.Tensor] = None
    hidden: Optional[torch.Tensor] = None
    start: int = 0
    calls: list[BlockCall] = field(default_factory=list)
    inputs: Any = None
    cached: bool = True
    note: str = ""
    # base values of held (path-patched) sites, recorded by abstract.neural.hold: a full output
    # ``[batch, ...]``, or ``(positions [batch, 1], values [batch, hidden])`` for one position each
    held: dict = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return int(self.base_act.shape[0])

    def select(self, index: torch.Tensor | slice) -> "BaseCache":
        """The cache restricted to some base examples (a minibatch), without recomputing.

        Tensors are sliced along dim 0 when that dim equals the batch size and they have at
        least 2 dims (masks, rotary cos/sin, hidden states); broadcast tensors (dim 0 == 1)
        and 1-D ones (``cache_position``) are kept as they are.
        """
        n = self.batch_size
        if isinstance(index, slice):
            index = torch.arange(n)[index]
        index = torch.as_tensor(index, dtype=torch.long)

        def cut(x: Any) -> Any:
            if torch.is_tensor(x):
                if x.dim() >= 2 and x.shape[0] == n:
                    return x[index.to(x.device)]
                return x
            if isinstance(x, tuple):
                return tuple(cut(v) for v in x)
            if isinstance(x, list):
                return [cut(v) for v in x]
            if isinstance(x, dict):
                return {k: cut(v) for k, v in x.items()}
            return x

        return replace(
            self,
            base_act=self.base_act[index.to(self.base_act.device)],
            positions=None if self.positions is None else self.positions[index.to(self.positions.device)],
            hidden=None if self.hidden is None else self.hidden[index.to(self.hidden.device)],
            calls=[(cut(a), cut(k)) for a, k in self.calls],
            inputs=cut(self.inputs),
            held=cut(self.held),
        )


def stack_caches(caches: Sequence[BaseCache]) -> BaseCache:
    """Several caches of one prefix (sites at the same layer and component, different token
    positions, the same base examples) as one batch: rows of ``caches[0]``, then ``caches[1]``...

    Why: the suffix of the network is the same for all of them, so one forward of a stacked
    batch replaces one forward per position -- a grid row trained in one pass per step."""
    first = caches[0]
    for c in caches[1:]:
        if (c.start, c.site.layer, c.site.component, c.site.head, c.site.heads, c.batch_size) != \
                (first.start, first.site.layer, first.site.component, first.site.head, first.site.heads,
                 first.batch_size):
            raise ValueError("only caches of one layer, component, head and batch can be stacked")
    if not all(c.cached for c in caches):
        raise ValueError("uncached (hook fallback) caches cannot be stacked")
    n = first.batch_size

    def cat(xs: list) -> Any:
        x = xs[0]
        if torch.is_tensor(x):
            return torch.cat(xs) if x.dim() >= 2 and x.shape[0] == n else x
        if isinstance(x, (tuple, list)):
            return type(x)(cat([v[i] for v in xs]) for i in range(len(x)))
        if isinstance(x, dict):
            return {k: cat([v[k] for v in xs]) for k in x}
        return x

    return replace(
        first,
        base_act=torch.cat([c.base_act for c in caches]),
        positions=_cat_optional([c.positions for c in caches]),
        hidden=_cat_optional([c.hidden for c in caches]),
        calls=[(cat([c.calls[i][0] for c in caches]), cat([c.calls[i][1] for c in caches]))
               for i in range(len(first.calls))],
        inputs=None,
        held=cat([c.held for c in caches]) if first.held else {},
    )


def _cat_optional(xs: list[Optional[torch.Tensor]]) -> Optional[torch.Tensor]:
    """Concatenated tensors, or None when the caches hold none (torch runners have no positions)."""
    present = [x for x in xs if x is not None]
    if not present:
        return None
    if len(present) != len(xs):
        raise ValueError("caches disagree on which tensors they hold")
    return torch.cat(present)
