"""Check-time rules for attention-head sites (torch-free, so `abstract check` applies them).

* ``head N`` / ``heads [L.H, ...]`` on an align line imply ``component head_out`` when the line
  names no component; with a component that has no heads (``resid_post`` ...) they are an error.
* ``heads`` names its own layers (``9.6`` is layer 9, head 6): it cannot be given with ``layer``
  or ``head``.
* A head component on an align line that names a layer needs ``head`` (or ``heads``): a site is
  one head; ``search head ...`` is how to try several.
* ``search head ...`` needs a searched head component (a searched head component without
  ``head`` searches every head: the engine's default, ``*``).

Head indices are checked against the network when it is loaded (the sites phase): how many
heads a layer has is not known before.
"""
from __future__ import annotations

from typing import Any

from ..language import ast
from ..language.errors import SpecError
from .components import HEAD_COMPONENTS

HEAD_DEFAULT = "head_out"


def _at(opts: tuple[ast.Option, ...], key: str, default: ast.Pos) -> ast.Pos:
    return next((o.pos for o in opts if o.key == key), default)


def align_head_checks(site: dict[str, Any], opts: tuple[ast.Option, ...], where: ast.Pos,
                      errors: list[SpecError]) -> None:
    """Check (and complete: the implied component) one align line's site options, read into ``site``."""
    head, heads, component = site.get("head"), site.get("heads"), site.get("component")
    if heads is not None:
        if "layer" in site:
            errors.append(SpecError("`heads` names its own layers (9.6 is layer 9, head 6); drop `layer`",
                                    _at(opts, "layer", where), hint="or name one head: `layer 9 head 6`"))
        if head is not None:
            errors.append(SpecError("give one `head` or a group of `heads`, not both", _at(opts, "head", where)))
    if head is not None or heads is not None:
        if component is None:
            site["component"] = HEAD_DEFAULT
        elif component not in HEAD_COMPONENTS:
            key = "head" if head is not None else "heads"
            errors.append(SpecError(f"`{key}` needs a head component, but component `{component}` has no heads",
                                    _at(opts, key, where),
                                    hint=f"use component {', '.join(HEAD_COMPONENTS)} (or leave `component` out "
                                         "for head_out)"))
    elif component in HEAD_COMPONENTS and "layer" in site:
        errors.append(SpecError(f"component `{component}` is per attention head: name the head", _at(
            opts, "component", where), hint="add `head N` (or `heads [L.H, ...]` for a group), or search them "
                                            "with `search head *`"))


def search_head_checks(search: dict[str, Any], variables: list[Any], opts: tuple[ast.Option, ...],
                       where: ast.Pos, errors: list[SpecError]) -> None:
    """`search head ...` needs a head component to search; a head component searches every head by default."""
    comps = {search.get("component")} if search.get("component") else {v.component for v in variables}
    searched_heads = bool(comps) and all(c in HEAD_COMPONENTS for c in comps)
    if search.get("heads") is not None and not searched_heads:
        shown = ", ".join(sorted(str(c or "resid_post") for c in comps)) or "resid_post"
        errors.append(SpecError(f"`search head` needs a head component to search, but the searched component is "
                                f"{shown}", _at(opts, "head", where),
                                hint="add `component head_out` (or q, k, v) to the search"))
