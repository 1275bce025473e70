"""Layer x head heatmaps for grids that search attention heads.

A head grid's columns are (head, position) pairs (``grid["heads"][j]`` is column j's head,
``grid["positions"][j]`` its position). Read as one wide layers x columns map it hides what a
circuit claim is about, so the report draws one layer x head heatmap per searched position,
with the chosen and better sites outlined where they fall.
"""
from __future__ import annotations

from html import escape
from typing import Any, Optional

from .svg import heatmap_svg


def head_text(site: dict[str, Any]) -> str:
    """``, head 6`` or ``, heads 9.6, 9.9`` for a head site; '' for any other site."""
    heads, head = site.get("heads"), site.get("head")
    if heads:
        return ", heads " + ", ".join(f"{la}.{hd}" for la, hd in heads)
    return "" if head is None else f", head {head}"


def split_by_position(grid: dict[str, Any]) -> list[tuple[Any, Optional[str], dict[str, Any]]]:
    """``[(position, its token, layer x head grid)]``, positions in the grid's order."""
    heads, positions = list(grid.get("heads") or []), list(grid.get("positions") or [])
    tokens = list(grid.get("position_tokens") or [])
    out = []
    for p in dict.fromkeys(positions):
        cols = [j for j, q in enumerate(positions) if q == p and j < len(heads)]

        def pick(rows: Any, cols: list[int] = cols) -> Any:
            return None if rows is None else [[row[j] if j < len(row) else None for j in cols] for row in rows]

        sub = {"layers": list(grid.get("layers") or []), "positions": [f"H{heads[j]}" for j in cols],
               "position_tokens": [], "component": grid.get("component"),
               "iia_max": pick(grid.get("iia_max")), "iia_mean": pick(grid.get("iia_mean")),
               "trivial": pick(grid.get("trivial"))}
        token = tokens[cols[0]] if cols and cols[0] < len(tokens) else None
        out.append((p, token, sub))
    return out


def _at(site: Optional[dict[str, Any]], position: Any) -> Optional[dict[str, Any]]:
    """``site`` as a cell of the layer x head map of ``position`` (None when it is not in it)."""
    if not isinstance(site, dict) or site.get("head") is None or site.get("position") != position:
        return None
    return {"layer": site.get("layer"), "position": f"H{site.get('head')}"}


def head_heatmaps(grid: dict[str, Any], site: dict[str, Any], title: str, *, better: Optional[dict[str, Any]] = None,
                  scale: Optional[tuple[float, float]] = None, levels: Optional[dict[str, Optional[float]]] = None
                  ) -> str:
    """One layer x head heatmap (SVG) per position of a head grid, side by side."""
    figs = []
    for position, token, sub in split_by_position(grid):
        where = f"position {position}" + (f" ({token!r})" if token not in (None, str(position)) else "")
        svg = heatmap_svg(sub, _at(site, position), title=f"{title} by layer and head at {where}",
                          better=_at(better, position), scale=scale, levels=levels, columns="head")
        figs.append(f'<figure class="heads"><figcaption>{escape(str(grid.get("component") or ""))} heads at '
                    f'{escape(where)}</figcaption>{svg}</figure>')
    return "".join(figs)
