"""The sites phase for attention-head and resid_mid sites: checked against the loaded network.

How many heads a layer has (and how many key-value heads, under grouped-query attention), and
whether a block has a residual between attention and MLP at all, is known only once the network
is loaded. Every such problem is an :class:`AlignmentError` at the spec option that asked, before
any pair is drawn.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from ..hypothesis.components import HEAD_COMPONENTS, KV_COMPONENTS
from ..language import ast
from ..neural.sites import Site, SiteError
from ..neural.taps import TAP_COMPONENTS, attention_layout, site_taps, uses_taps
from .errors import AlignmentError

NO_HEADS_HINT = "head, q/k/v and resid_mid sites need a Hugging Face decoder LM (GPT-2, GPT-NeoX, Llama-like)"


def _lm(runner: Any, component: str, where: ast.Pos) -> None:
    if not hasattr(runner, "blocks") or not hasattr(runner, "arch"):
        raise AlignmentError(f"component `{component}` needs a transformer with attention blocks, but this network "
                             "is a plain torch module", where, hint=NO_HEADS_HINT)


def check_head_site(runner: Any, site: Site, where: ast.Pos) -> None:
    """Refuse a head / q / k / v / resid_mid site the network cannot honour (a head index past the
    layer's heads, resid_mid on a parallel-residual block, a network without attention blocks)."""
    if not uses_taps(site):
        return
    _lm(runner, site.component, where)
    try:
        site_taps(runner, site)
    except SiteError as e:
        raise AlignmentError(str(e), where, hint=_hint(runner, site.component, site.layers)) from None


def _hint(runner: Any, component: str, layers: Sequence[int]) -> Optional[str]:
    if component not in HEAD_COMPONENTS:
        return None
    try:
        lay = attention_layout(runner, int(layers[0]) if layers else 0)
    except SiteError:
        return None
    n = lay.heads_of(component)
    gqa = f" ({lay.n_kv_heads} key-value heads for {lay.n_heads} query heads)" if component in KV_COMPONENTS \
        and lay.n_kv_heads != lay.n_heads else ""
    return f"heads are numbered 0..{n - 1}{gqa}"


def grid_head_axis(runner: Any, component: str, heads: Any, layers: Sequence[int],
                   where: ast.Pos) -> tuple[Optional[int], ...]:
    """The head axis of a grid over ``layers``: ``(None,)`` for components without heads; every head
    for ``*`` or no ``head`` option; else the listed heads, each checked on every layer."""
    if component not in TAP_COMPONENTS or not layers:
        return (None,)
    _lm(runner, component, where)
    if component not in HEAD_COMPONENTS:  # resid_mid: one check per layer
        for layer in layers:
            check_head_site(runner, Site(layer, component, "last"), where)
        return (None,)
    try:
        counts = {attention_layout(runner, layer % runner.n_layers).heads_of(component) for layer in layers}
    except SiteError as e:
        raise AlignmentError(str(e), where, hint=NO_HEADS_HINT) from None
    n = min(counts)
    axis = tuple(range(n)) if heads in (None, "*") else tuple(heads)
    for head in axis:
        if not 0 <= head < n:
            raise AlignmentError(f"search head {head} is out of range: component {component} has {n} heads per "
                                 "layer", where, hint=_hint(runner, component, list(layers)))
    return axis
