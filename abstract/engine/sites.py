"""The sites phase: where each variable may be aligned, resolved and checked against the network.

For every ``align`` line: the search grid (layers x positions, in the spec's spelling) and
the site the line itself names, if any. Everything a user can get wrong here -- a layer past
the network's depth, a position the prompt does not have, ``position *`` over prompts of
different lengths -- is an :class:`~abstract.engine.errors.AlignmentError` at the spec
option that asked for it, before any pair is drawn or any training starts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ..hypothesis.plan import Plan, VariablePlan
from ..language import ast
from ..neural.sites import SLOT_PREFIX, Site
from .head_sites import check_head_site, grid_head_axis
from .errors import AlignmentError
from .results import Position, SiteRef

DEFAULT_COMPONENT = "resid_post"


def spelled(position: Any) -> Any:
    """A runner position as the spec writes it (``slot:z`` -> ``z``)."""
    if isinstance(position, str) and position.startswith(SLOT_PREFIX):
        return position[len(SLOT_PREFIX):]
    return position


def site_ref(site: Site, position: Position = None, *, spelling: bool = False) -> SiteRef:
    """A resolved site for the document: ``position`` as the spec spelled it (``spelling``:
    spell the runner's own position), plus the token index when it resolved to another int."""
    layer = int(site.layer or 0)  # engine sites always name a layer
    heads = site.heads or None
    if spelling:
        return SiteRef(layer, site.component, spelled(site.position), head=site.head, heads=heads)
    token = site.position if isinstance(site.position, int) and site.position != position else None
    return SiteRef(layer, site.component, position, token, head=site.head, heads=heads)


@dataclass(frozen=True)
class VariableSites:
    """Where one variable may be aligned: the grid axes (empty when there is no search) and
    the align line's own site (None when it names no layer: the grid chooses)."""

    var: VariablePlan
    layers: tuple[int, ...]
    positions: tuple[Position, ...]  # spec spellings; (None,) for position-free networks
    component: str
    align_site: Optional[Site]
    align_position: Position  # as spelled on the align line (or the grid's first)
    encoder: Any
    examples: Sequence[dict]
    heads: tuple[Optional[int], ...] = (None,)  # the grid's head axis: (None,) unless a head component

    def site(self, layer: int, position: Position, head: Optional[int] = None) -> Site:
        return resolve(self.encoder, layer, self.component, position, head)

    @property
    def columns(self) -> list[tuple[Optional[int], Position]]:
        """The grid's columns: every (head, position), head-major (one head: the positions)."""
        return [(hd, p) for hd in self.heads for p in self.positions]

    def grid_sites(self) -> list[Site]:
        """Every site of the grid, layer by layer, column by column."""
        return [self.site(layer, p, hd) for layer in self.layers for hd, p in self.columns]

    @property
    def uses_positions(self) -> bool:
        return bool(self.encoder.uses_positions)

    def position_tokens(self) -> list[str]:
        example = self.examples[0] if self.examples else None
        return [self.encoder.position_token(p, example) if self.uses_positions else "(whole vector)"
                for p in self.positions]


def resolve(encoder, layer: Optional[int], component: str, position: Position, head: Optional[int] = None,
            heads: tuple[tuple[int, int], ...] = ()) -> Site:
    if not encoder.uses_positions:
        return Site(layer=layer, component=component, position=None, head=head, heads=heads)
    return Site(layer=layer, component=component, position=encoder.site_position(position), head=head, heads=heads)


def _option_pos(options: Sequence[ast.Option], key: str, default: ast.Pos) -> ast.Pos:
    return next((o.pos for o in options if o.key == key), default)


class _Checker:
    """Checks layers and positions against the network and its prompts."""

    def __init__(self, n_layers: int, encoder, examples: Sequence[dict]):
        self.n_layers, self.encoder = n_layers, encoder
        self.lengths: Optional[list[int]] = None
        if encoder.uses_positions and examples:
            self.lengths = [int(x) for x in encoder.encode(list(examples))["attention_mask"].sum(dim=1)]

    def layer(self, layer: int, where: ast.Pos, what: str) -> None:
        if not -self.n_layers <= layer < self.n_layers:
            last = self.n_layers - 1
            raise AlignmentError(f"{what} {layer} is out of range: the network has {self.n_layers} layers",
                                 where, hint=f"layers are numbered 0..{last} (or -{self.n_layers}..-1 from the end)")

    def position(self, position: Position, where: ast.Pos) -> None:
        if not self.encoder.uses_positions or position in (None, "last", "first"):
            return
        if isinstance(position, str):
            slots = list(self.encoder.slots)
            if position not in slots:
                raise AlignmentError(f"position `{position}` is not a slot of the prompt {self.encoder.prompt!r}",
                                     where, hint="expected last, first, a token index or one of the slots: "
                                                 + (", ".join(slots) or "(none)"))
            return
        shortest = min(self.lengths) if self.lengths else None
        if shortest is not None and not -shortest <= position < shortest:
            raise AlignmentError(f"position {position} is outside the prompt: the shortest prompt has {shortest} "
                                 "tokens", where, hint=f"token indices run 0..{shortest - 1} (or -{shortest}..-1)")

    def every_token(self, where: ast.Pos) -> list[int]:
        lengths = self.lengths or [0]
        if min(lengths) != max(lengths):
            raise AlignmentError(f"`position *` needs prompts of one length, but they have {min(lengths)} to "
                                 f"{max(lengths)} tokens", where,
                                 hint="list the positions instead (template slots, last, first, or indices)")
        return list(range(lengths[0]))


def resolve_sites(plan: Plan, h: ast.HypothesisDecl, runner, encoder,
                  examples: Sequence[dict]) -> dict[str, VariableSites]:
    """Every variable's grid and align site, checked (see module docstring)."""
    n_layers = int(runner.n_layers)
    if n_layers == 0:
        raise AlignmentError(f"network {h.network} has no layers the engine can address", h.pos,
                             hint="a torch network needs an nn.Sequential or a `layers` list of modules")
    check = _Checker(n_layers, encoder, examples)
    search = plan.search
    layer_at = _option_pos(h.search, "layer", h.pos)
    position_at = _option_pos(h.search, "position", h.pos)
    out: dict[str, VariableSites] = {}
    for vp, decl in zip(plan.variables, h.aligns):
        component = search.component or vp.component or DEFAULT_COMPONENT
        layers: Any = search.layers
        if layers is None and vp.layer is None and not vp.heads:
            layers = "*"  # no site given and no grid: search every layer
        if layers is None:
            grid_layers: tuple[int, ...] = ()
            positions: tuple[Position, ...] = ()
        else:
            grid_layers = tuple(range(n_layers)) if layers == "*" else tuple(layers)
            for layer in grid_layers:
                check.layer(layer, layer_at, "search layer")
            if not encoder.uses_positions:
                positions = (None,)
            elif search.positions == "*":
                positions = tuple(check.every_token(position_at))
            else:
                positions = tuple(search.positions or [vp.position if vp.position is not None else "last"])
                for p in positions:
                    check.position(p, position_at if search.positions else _option_pos(decl.site, "position", vp.pos))
        grid_heads = grid_head_axis(runner, component, search.heads, grid_layers,
                                    _option_pos(h.search, "head", _option_pos(h.search, "component", h.pos)))
        align_site, align_position = None, None
        if vp.layer is not None or vp.heads:
            for layer in sorted({la for la, _ in vp.heads or ()} | ({vp.layer} if vp.layer is not None else set())):
                check.layer(layer, _option_pos(decl.site, "heads" if vp.heads else "layer", vp.pos), "layer")
            align_position = vp.position if vp.position is not None else (positions[0] if positions else "last")
            check.position(align_position, _option_pos(decl.site, "position", vp.pos))
            align_site = resolve(encoder, vp.layer, vp.component or component, align_position, vp.head, vp.heads or ())
            check_head_site(runner, align_site, _option_pos(decl.site, "heads" if vp.heads else "head", _option_pos(
                decl.site, "component", vp.pos)))
        out[vp.name] = VariableSites(vp, grid_layers, positions, component, align_site,
                                     align_position if encoder.uses_positions else None, encoder, examples,
                                     grid_heads)
    return out
