"""The pre-screen heatmap shown beside a variable's trained grid (``search ... prescreen K``).

Why beside: the pre-screen decided which cells were trained at all; a reader checks, cell by
cell, whether its first-order ranking agrees with the IIA that training then measured (cells
it skipped are blank in the trained heatmap).
"""
from __future__ import annotations

from html import escape
from typing import Any

from .svg import heatmap_svg


def relative_scores(screen: dict[str, Any]) -> list[list[float | None]]:
    """Every cell's score over the best cell's (1.00 = the best; 0 or below: no predicted gain)."""
    rows = [list(r) for r in screen.get("score") or [] if isinstance(r, list)]
    top = max((float(x) for r in rows for x in r if isinstance(x, (int, float))), default=0.0)
    if top <= 0:
        return [[None if x is None else 0.0 for x in r] for r in rows]
    return [[None if x is None else round(float(x) / top, 4) for x in r] for r in rows]


def prescreen_figure(grid: dict[str, Any] | None, hyp: str, name: str) -> str:
    """The pre-screen heatmap and its caption, or '' when the grid was not pre-screened."""
    screen = (grid or {}).get("prescreen")
    if not isinstance(screen, dict) or grid is None:
        return ""
    view = {"layers": grid.get("layers"), "positions": grid.get("positions"),
            "position_tokens": grid.get("position_tokens"), "iia_max": relative_scores(screen), "iia_mean": None}
    fig = heatmap_svg(view, None, title=f"{hyp}: attribution pre-screen of {name}", scale=(0.0, 1.0))
    caption = (f"Attribution pre-screen over {escape(str(screen.get('pairs')))} training pairs: each cell's "
               "first-order estimate of how much interchanging it lowers the counterfactual loss, relative to the "
               f"best cell (1.00). Only the top {escape(str(screen.get('top')))} were trained; the others are blank "
               "in the trained heatmap.")
    return (f'<div class="fig prescreen"><h3>{escape(name)}: pre-screen</h3>{fig}'
            f'<div class="caption">{caption}</div></div>')
