"""Trivial sites: where a variable is realised by swapping only the inputs it reads.

Why: at a site that still holds the inputs *separately* (the input encoding of a torch
network, a token's embedding before any mixing), interchanging the coordinates of a
variable's input ancestors from the source realises that variable exactly -- for *any*
function of those inputs -- as long as those inputs reach the outputs only through the
variable. Such a site scores IIA ~1.0 for nearly every hypothesis and says nothing about
what the network computes. It is flagged ``trivial``, and a site search never chooses it
unless the spec names the site.

The test is empirical, on sample inputs: for each model input, change only that input and
record how the site's activation moves. The site is trivial for variable V when

1. (in the network) the moves caused by V's input ancestors span a subspace orthogonal to the
   moves caused by every other input, and that subspace is not empty -- then the activation
   is exactly ``a(V's inputs) + r(other inputs) + constant``, and swapping the first subspace
   swaps those inputs (a rotated input encoding counts: DAS finds the rotation); and
2. (in the causal model) every path from V's input ancestors to an output passes through V
   (so swapping those inputs changes the output exactly as swapping V does); and
3. (language models) the site is the only token position of its layer where V's input ancestors
   show: a position-addressed site is not the network's whole state, and an input that also
   lives at another position (the token it was written at, the positions after it) still
   reaches the output from there. So a token's own embedding before layer 0 can be trivial,
   a later position that has attended to several inputs is not.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Sequence

import networkx as nx
import torch

from ..neural.sites import NAMED_POSITIONS, Site, resolve_positions

SAMPLES = 64
RANK_TOL = 1e-6  # singular values below this share of the largest are numerical noise
ORTHOGONAL_TOL = 1e-4  # largest cosine between the two subspaces that still counts as orthogonal


def input_ancestors(model, variable: str) -> set[str]:
    """The model inputs ``variable`` depends on (itself, when it is an input)."""
    if variable in model.inputs:
        return {variable}
    return {a for a in nx.ancestors(model.graph, variable) if a in model.inputs}


def realisable_by_inputs(model, variable: str) -> bool:
    """Condition 2: the variable's input ancestors reach the outputs only through it."""
    anc = input_ancestors(model, variable)
    if not anc:
        return False
    if variable in model.inputs:
        return True
    g = model.graph.copy()
    g.remove_node(variable)
    return not any(nx.has_path(g, a, o) for a in anc for o in model.outputs if o in g)


def with_changed_input(model, inputs: Sequence[Mapping[str, Any]], name: str) -> Optional[list[dict[str, Any]]]:
    """``inputs`` with input ``name`` set to another value of its domain (the next one,
    cyclically); None when the domain has a single value."""
    values = list(model.domain(name).values())
    if len(values) < 2:
        return None
    return [{**x, name: values[(values.index(x[name]) + 1) % len(values)]} for x in inputs]


@torch.no_grad()
def input_moves(runner, encoder, model, site: Site, inputs: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """For each model input, the site's activation change ``[n, hidden]`` when only that input changes."""
    base = runner.collect(encoder.encode(inputs), site).double()
    out = {}
    for name in model.inputs:
        moved = with_changed_input(model, inputs, name)
        out[name] = (torch.zeros_like(base) if moved is None
                     else runner.collect(encoder.encode(moved), site).double() - base)
    return out


def _basis(moves: list[torch.Tensor], scale: float) -> torch.Tensor:
    """Orthonormal basis ``[hidden, r]`` of the span of the stacked moves (numerical rank)."""
    m = torch.cat(moves) if moves else torch.zeros(0, 1, dtype=torch.float64)
    if m.numel() == 0 or float(m.abs().max()) <= scale:
        return m.new_zeros(m.shape[-1], 0)
    _, s, vh = torch.linalg.svd(m, full_matrices=False)
    r = int((s > RANK_TOL * float(s[0])).sum())
    return vh[:r].T


def trivial_variables(runner, encoder, model, site: Site, variables: Sequence[str], *,
                      seed: int = 0, samples: int = SAMPLES) -> set[str]:
    """The variables among ``variables`` for which ``site`` is trivial (see module docstring)."""
    candidates = [v for v in variables if realisable_by_inputs(model, v)]
    if not candidates or site.head is not None or site.heads:
        # a head is one part of its token's state: the inputs still reach the outputs around it
        return set()
    inputs = model.sample_inputs(samples, seed=seed)
    try:
        moves = input_moves(runner, encoder, model, site, inputs)
    except (ValueError, IndexError):  # a changed value moves a slot off the site's position: not separable
        return set()
    scale = 1e-7 * (1.0 + max(float(m.abs().max()) for m in moves.values()))
    out = set()
    for v in candidates:
        anc = input_ancestors(model, v)
        mine = _basis([m for k, m in moves.items() if k in anc], scale)
        others = _basis([m for k, m in moves.items() if k not in anc], scale)
        if mine.shape[1] == 0:
            continue
        overlap = float(torch.linalg.matrix_norm(mine.T @ others, ord=2)) if others.shape[1] else 0.0
        if overlap < ORTHOGONAL_TOL and not _shows_elsewhere(runner, encoder, model, site, inputs, anc, scale):
            out.add(v)
    return out


@torch.no_grad()
def _shows_elsewhere(runner, encoder, model, site: Site, inputs: Sequence[Mapping[str, Any]], anc: set[str],
                     scale: float) -> bool:
    """Condition 3: whether changing one of ``anc`` moves another token position of the site's layer."""
    if site.position is None:
        return False
    enc = encoder.encode(inputs)
    mask = enc["attention_mask"]
    batch, seq = mask.shape
    own = resolve_positions(site.position, mask, seq, batch, named=enc.get(NAMED_POSITIONS))
    changed = (with_changed_input(model, inputs, name) for name in anc)
    moved = [encoder.encode(x) for x in changed if x is not None]
    for p in range(int(mask.sum(dim=1).min())):
        if bool((resolve_positions(p, mask, seq, batch) == own).all()):
            continue  # the site itself
        other = dataclasses.replace(site, position=p)  # keeps a head site's head
        base = runner.collect(enc, other).double()
        for x in moved:
            if float((runner.collect(x, other).double() - base).abs().max()) > scale:
                return True
    return False
