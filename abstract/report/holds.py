"""The report's drawing of a path-patching claim: which components were held at their base values.

A hypothesis with `hold` lines is a claim that the effect of the intervention flows through the
components that are *not* held. The hypothesis section gets one line listing the holds as the
spec wrote them, and beside each variable's site grid a strip of the network from the aligned
site to the last held layer: one column per layer, rows for the residual stream, attention and
MLP outputs (a plain torch network: its layer outputs), the intervened site outlined in orange,
held components hatched grey ("held at base"), the rest white ("recomputes").
"""
from __future__ import annotations

from html import escape
from typing import Any, Optional, Sequence

HELD_FILL, HELD_INK, SITE_STROKE = "#d9d9d9", "#555555", "#e8590c"
ROWS = ("resid", "attn_out", "mlp_out")
TORCH_ROWS = ("resid_post",)


def _e(x: Any) -> str:
    return escape(str(x), quote=True)


def holds_line(holds: Optional[Sequence[dict]]) -> str:
    """The hypothesis section's line: every `hold` as written (HTML, escaped); '' when none."""
    lines = [h.get("text") for h in holds or () if isinstance(h, dict) and h.get("text")]
    if not lines:
        return ""
    shown = "; ".join(f'<span class="mono">{_e(t)}</span>' for t in lines)
    return ("<br>path patching: " + shown + " — held at their base-run values while the intervention is applied; "
            "the claim is that the effect flows through the rest")


def _held_cells(holds: Sequence[dict]) -> dict[tuple[int, str], list]:
    """(layer, component) -> the positions held there ([None] for every token)."""
    cells: dict[tuple[int, str], list] = {}
    for h in holds:
        if not isinstance(h, dict):
            continue
        for layer in h.get("layers") or []:
            for comp in h.get("components") or []:
                if isinstance(layer, int) and isinstance(comp, str):
                    cells.setdefault((layer, comp), []).extend(h.get("positions") or [None])
    return cells


def held_path_svg(holds: Optional[Sequence[dict]], site: Optional[dict], grid: Optional[dict] = None) -> str:
    """The strip described in the module docstring ('' when nothing is held)."""
    cells = _held_cells(holds or ())
    if not cells:
        return ""
    torch_net = all(c == "resid_post" for _, c in cells)
    rows = TORCH_ROWS if torch_net else ROWS
    site = site or {}
    site_layer = site.get("layer") if isinstance(site.get("layer"), int) else None
    grid_layers = [x for x in (grid or {}).get("layers") or [] if isinstance(x, int)]
    starts = ([site_layer] if site_layer is not None else []) + grid_layers
    first = min(starts) if starts else min(x for x, _ in cells)
    last = max(x for x, _ in cells)
    layers = list(range(min(first, last), last + 1))
    if len(layers) > 48:  # keep the figure readable: the site's layer and the held ones
        layers = sorted({first} | {x for x, _ in cells})
    cw, ch, left, top = 40, 26, 74, 30
    width = max(left + cw * len(layers) + 16, 340)
    height = top + ch * len(rows) + 44
    out = [f'<svg class="holds" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
           "<title>held components (path patching)</title>",
           f'<text x="{left}" y="12" class="axis">held at base (path patching) · columns: layer</text>']
    for j, layer in enumerate(layers):
        out.append(f'<text x="{left + j * cw + cw / 2}" y="{top - 4}" text-anchor="middle" class="axis">'
                   f'{_e(layer)}</text>')
    site_row = None
    if site_layer is not None:
        comp = site.get("component") or "resid_post"
        site_row = rows.index(comp) if comp in rows else 0
    for i, row in enumerate(rows):
        y = top + i * ch
        label = "layer out" if row == "resid_post" else row
        out.append(f'<text x="{left - 6}" y="{y + ch / 2 + 4}" text-anchor="end" class="axis">{_e(label)}</text>')
        for j, layer in enumerate(layers):
            x = left + j * cw
            positions = cells.get((layer, row))
            if positions is not None:
                where = "every token" if None in positions else ", ".join(map(str, positions))
                out.append(f'<g class="held"><title>{_e(f"layer {layer} {row}: held at base ({where})")}</title>'
                           f'<rect x="{x}" y="{y}" width="{cw}" height="{ch}" fill="{HELD_FILL}" stroke="#ffffff"/>'
                           + "".join(f'<line x1="{x + k}" y1="{y + ch}" x2="{x + k + ch}" y2="{y}" stroke="{HELD_INK}" '
                                     f'stroke-width="0.6" opacity="0.5"/>' for k in range(0, cw - ch + 1, 8))
                           + f'<text x="{x + cw / 2}" y="{y + ch / 2 + 4}" text-anchor="middle" class="mean" '
                             f'fill="#222">{"H" if None in positions else "H@"}</text></g>')
            else:
                out.append(f'<rect x="{x}" y="{y}" width="{cw}" height="{ch}" fill="#ffffff" stroke="#e3e3e3"/>')
            if site_row == i and layer == site_layer:
                out.append(f'<rect class="site" x="{x + 1.5}" y="{y + 1.5}" width="{cw - 3}" height="{ch - 3}" '
                           f'fill="none" stroke="{SITE_STROKE}" stroke-width="3">'
                           '<title>the aligned site</title></rect>')
    y0 = top + ch * len(rows) + 16
    out.append(f'<rect x="{left}" y="{y0 - 9}" width="12" height="12" fill="{HELD_FILL}"/>'
               f'<text x="{left + 16}" y="{y0 + 1}" class="axis">H: held at base (H@: at some tokens)</text>')
    out.append(f'<rect x="{left}" y="{y0 + 9}" width="12" height="12" fill="none" stroke="{SITE_STROKE}" '
               f'stroke-width="2"/><text x="{left + 16}" y="{y0 + 19}" class="axis">the aligned site; white: '
               f'recomputed</text>')
    out.append("</svg>")
    return "".join(out)
