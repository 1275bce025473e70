"""`hold` statements (path patching) read into typed, checked plans -- torch-free, for `check`.

``hold component attn_out, layer 10..11 [, position last]`` inside a hypothesis keeps those
sites at the values they have in the *base* run while the intervention is applied; the rest
of the network recomputes. The claim becomes "the effect flows through the components that
are not held". Several `hold` lines add up. What is checked here, located at the option:

* the component is one the network kind can hold (a language model: ``attn_out``, ``mlp_out``;
  a plain torch network: ``resid_post``, a layer's output). The residual stream of a language
  model is not holdable: it carries every path, so holding it cuts them all;
* every held site comes strictly after every site the hypothesis aligns or searches (a hold
  upstream of the intervention, or at it, changes nothing or removes it); a grid over every
  layer (``search layer *``, or an align without a layer and no search) is refused;
* positions are `last`, `first`, token indices or prompt slots (every token when omitted).

Layer ranges against the network's depth are checked when the network is loaded
(``engine/holds.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Sequence

from ..language import ast
from ..language.errors import SpecError
from .options import HOLD, LM, TORCH, read_options, unknown_hint

# what each network kind can hold (a plain torch module exposes only its layer outputs)
HOLD_COMPONENTS_BY_KIND: Mapping[str, tuple[str, ...]] = {LM: ("attn_out", "mlp_out"), TORCH: ("resid_post",)}

# Order of components inside one block (what is computed after what). q/k/v and head_out are
# inside the attention sub-module, resid_mid between attention and MLP.
COMPONENT_ORDER: Mapping[str, int] = {"resid_pre": 0, "q": 1, "k": 1, "v": 1, "head_out": 2, "attn_out": 3,
                                      "resid_mid": 4, "mlp_out": 5, "resid_post": 6}


def after(held: tuple[int, str], site: tuple[int, str]) -> bool:
    """Is the held (layer, component) computed strictly after the site (layer, component)?

    ``resid_post`` of layer L is ``resid_pre`` of layer L+1 (the same tensor). A component of
    unknown order is never after anything (the caller reports it)."""
    (hl, hc), (sl, sc) = held, site
    a, b = COMPONENT_ORDER.get(hc), COMPONENT_ORDER.get(sc)
    if a is None or b is None:
        return False
    if sc == "resid_post" and hc == "resid_pre" and hl == sl + 1:
        return False
    return (hl, a) > (sl, b)


@dataclass(frozen=True)
class HoldPlan:
    """One `hold` line: the components held at each layer, at every token (``positions`` None)
    or at the listed ones (spec spellings)."""

    components: tuple[str, ...]
    layers: tuple[int, ...]
    positions: Optional[tuple[Any, ...]] = None
    pos: ast.Pos = ast.NOWHERE
    where: Mapping[str, ast.Pos] = field(default_factory=dict, compare=False)  # option -> its position

    def at(self, key: str) -> ast.Pos:
        """Where option ``key`` is written (the `hold` line when it is not)."""
        return self.where.get(key, self.pos)

    def sites(self) -> list[tuple[int, str, Any]]:
        """Every (layer, component, position) held; position None: every token."""
        return [(layer, c, p) for layer in self.layers for c in self.components for p in (self.positions or (None,))]

    def text(self) -> str:
        """The line as a canonical spec statement (the report prints it)."""
        comps = self.components[0] if len(self.components) == 1 else "[" + ", ".join(self.components) + "]"
        lo, hi = min(self.layers), max(self.layers)
        layers = (f"{lo}..{hi}" if len(self.layers) > 1 and list(self.layers) == list(range(lo, hi + 1))
                  else str(self.layers[0]) if len(self.layers) == 1 else "[" + ", ".join(map(str, self.layers)) + "]")
        out = f"hold component {comps}, layer {layers}"
        if self.positions:
            ps = [str(p) for p in self.positions]
            out += f", position {ps[0] if len(ps) == 1 else '[' + ', '.join(ps) + ']'}"
        return out

    def to_json(self) -> dict[str, Any]:
        return {"components": list(self.components), "layers": list(self.layers),
                "positions": None if self.positions is None else list(self.positions), "text": self.text(),
                "location": str(self.pos) if self.pos.line > 0 else None}


def candidate_sites(variables: Sequence[Any], search: Mapping[str, Any]) -> Optional[list[tuple[int, str, ast.Pos]]]:
    """Every (layer, component, where) a variable may be aligned at, as far as the spec says;
    None when some grid covers every layer (``search layer *``, or an align without a layer
    and no search)."""
    out: list[tuple[int, str, ast.Pos]] = []
    layers = search.get("layers")
    for v in variables:
        group = getattr(v, "heads", None)
        if group:  # a head group (`heads [L.H, ...]`, no `layer`): every member is a site
            out.extend((layer, "head_out", v.pos) for layer, _ in group)
            if layers is None:
                continue
        component = search.get("component") or v.component or "resid_post"
        if layers is None and v.layer is None or layers == "*":
            return None
        for layer in layers or ():
            out.append((layer, component, v.pos))
        if v.layer is not None:
            out.append((v.layer, v.component or component, v.pos))
    return out


def read_holds(h: ast.HypothesisDecl, kind: Optional[str], network: Any, variables: Sequence[Any],
               search: Mapping[str, Any], errors: list[SpecError]) -> tuple[HoldPlan, ...]:
    """Every `hold` line of ``h`` read and checked (module docstring); problems go to ``errors``."""
    out = []
    slots = tuple(getattr(network, "prompt_slots", ()) or ()) if network is not None and network.kind == LM else ()
    for decl in getattr(h, "holds", ()):
        n = len(errors)
        opts = read_options(HOLD, decl.options, errors, kind=kind, what="hold")
        where = {o.key: o.pos for o in decl.options}
        comps = opts.get("components")
        if comps is None and kind == TORCH:
            comps = ("resid_post",)
        if comps is None and "component" not in where:
            errors.append(SpecError("`hold` needs a `component`: what is held", decl.pos,
                                    hint="e.g. `hold component attn_out, layer 10..11` (attn_out, mlp_out or a list)"))
        if "layers" not in opts and "layer" not in where:
            errors.append(SpecError("`hold` needs a `layer`: where the held components are", decl.pos,
                                    hint="e.g. `hold component attn_out, layer 10..11`"))
        if opts.get("layers") == "*":
            errors.append(SpecError("`hold layer *` would hold the aligned site itself and everything before it",
                                    where["layer"],
                                    hint="list the layers after the aligned sites, e.g. `layer 10..11`"))
        if opts.get("positions") == "*":
            errors.append(SpecError("`hold position *` is what leaving `position` out means", where["position"],
                                    hint="leave `position` out to hold every token"))
        if comps is not None and kind is not None:
            allowed = HOLD_COMPONENTS_BY_KIND[kind]
            for c in comps:
                if c not in allowed:
                    why = ("the residual stream carries every path, so holding it cuts them all"
                           if kind == LM else "a plain torch network exposes only its layer outputs")
                    net = "a language model" if kind == LM else "a plain torch network"
                    errors.append(SpecError(f"component `{c}` cannot be held on {net}: {why}",
                                            where.get("component", decl.pos),
                                            hint=f"hold {' or '.join(allowed)}"))
        for p in opts.get("positions") or ():
            if isinstance(p, str) and p not in ("last", "first", "*") and slots and p not in slots:
                errors.append(SpecError(f"position `{p}` is not `last`, `first` or a slot of network "
                                        f"'{network.name}''s prompt", where["position"],
                                        hint=unknown_hint(p, ("last", "first") + slots)))
        if len(errors) > n:
            continue
        plan = HoldPlan(tuple(comps or ()), tuple(opts["layers"]), opts.get("positions"), decl.pos, where)
        problem = order_problem(plan, variables, search)
        if problem is not None:
            errors.append(problem)
            continue
        out.append(plan)
    return tuple(out)


def order_problem(plan: HoldPlan, variables: Sequence[Any], search: Mapping[str, Any]) -> Optional[SpecError]:
    """A held site at or before a site the hypothesis aligns or searches, as an error (None: fine)."""
    candidates = candidate_sites(variables, search)
    if candidates is None:
        return SpecError("`hold` needs every aligned site to come before the held ones, but a grid here covers "
                         "every layer", plan.at("layer"),
                         hint="give the align a layer, or search a layer range that ends before the held layers")
    return first_clash(plan, [(layer, c) for layer, c, _ in candidates], {(layer, c): w for layer, c, w in candidates})


# Components of one attention sub-module, in computing order: the later ones are computed from the
# earlier ones of the same layer *alone*, so holding a later one erases an intervention on an earlier one.
ATTENTION_CHAIN = ("q", "k", "v", "head_out", "attn_out")


def swallows(held: tuple[int, str], site: tuple[int, str]) -> bool:
    """Does holding ``held`` erase every effect of an intervention at ``site``? True for a later
    component of the same layer's attention (``attn_out`` of layer L is the output projection of
    that layer's ``head_out``, which is computed from its q, k and v)."""
    (hl, hc), (sl, sc) = held, site
    if hl != sl or hc not in ATTENTION_CHAIN or sc not in ATTENTION_CHAIN:
        return False
    return ATTENTION_CHAIN.index(hc) > ATTENTION_CHAIN.index(sc) and not {hc, sc} <= {"q", "k", "v"}


def first_clash(plan: HoldPlan, sites: Iterable[tuple[int, str]],
                where: Optional[Mapping[tuple[int, str], ast.Pos]] = None) -> Optional[SpecError]:
    """The first held (layer, component) that is not after some site, or that would erase the
    intervention at a site altogether (:func:`swallows`), as a located error."""
    sites = list(sites)
    for layer in plan.layers:
        for comp in plan.components:
            for site in sites:
                if swallows((layer, comp), site):
                    note = (("the site is aligned or searched here", where[site]),) if where and site in where else ()
                    return SpecError(f"held {comp} of layer {layer} is computed from the site {site[1]} of layer "
                                     f"{site[0]} alone: holding it at base would erase the intervention",
                                     plan.at("layer"), notes=note,
                                     hint="hold components of later layers, or the MLP of this one")
                if not after((layer, comp), site):
                    note = (("the site is aligned or searched here", where[site]),) if where and site in where else ()
                    what = "the same site as" if (layer, comp) == site else "upstream of"
                    return SpecError(f"held {comp} of layer {layer} is {what} the site {site[1]} of layer {site[0]}: "
                                     "a hold must come after every site the intervention is applied at",
                                     plan.at("layer"), notes=note,
                                     hint="hold only later components (path patching holds the paths the effect "
                                          "must not flow through)")
    return None


__all__ = ["COMPONENT_ORDER", "HOLD_COMPONENTS_BY_KIND", "HoldPlan", "after", "first_clash", "read_holds"]
