"""Hand-written inline SVG for the report: IIA heatmaps and causal graphs.

Hand-written rather than matplotlib so the figures are small, crisp, text-searchable and need
no namespace URL or font files: the HTML must stay one self-contained file. No <defs>/ids are
used, so any number of figures can share one page without clashing.
"""
from __future__ import annotations

import math
from html import escape
from typing import Any, Sequence

import networkx as nx

# Sequential scale for IIA from chance (0.5) to perfect (1.0): pale grey-blue -> deep blue.
_STOPS = [(0.50, (240, 243, 247)), (0.70, (189, 215, 238)), (0.85, (66, 146, 198)), (1.00, (8, 48, 107))]
LOW, HIGH = 0.5, 1.0
KIND_FILL = {"input": "#e3effc", "intermediate": "#fff1d6", "output": "#dff3e4"}
KIND_STROKE = {"input": "#4a7fc1", "intermediate": "#c98a12", "output": "#2f8a4c"}


def _e(x: Any) -> str:
    return escape(str(x), quote=True)


def scale_low(grid_values: Sequence[Sequence[float | None]]) -> float:
    """Where a heatmap's colour scale starts: 0.5 (chance for a binary label) unless some cell
    is below it (many-class outputs, informative pairs), then 0, so that structure stays visible."""
    values = [v for row in grid_values for v in row if v is not None]
    return LOW if not values or min(values) >= LOW else 0.0


def iia_color(value: float | None, low: float = LOW) -> tuple[str, str]:
    """(fill, text colour) for an IIA value on a scale from `low` to 1; lower values are clamped.
    Not measured (None) and not a number (NaN, which a hand-edited document may hold) are blank."""
    if value is None or not math.isfinite(value):
        return "#ffffff", "#888888"
    v = min(max(value, low), HIGH)
    v = LOW + (v - low) / (HIGH - low) * (HIGH - LOW)  # onto the stops, which span LOW..HIGH
    rgb: tuple[int, ...] = _STOPS[-1][1]
    for (x0, c0), (x1, c1) in zip(_STOPS, _STOPS[1:]):
        if v <= x1:
            t = (v - x0) / (x1 - x0)
            rgb = tuple(round(a + (b - a) * t) for a, b in zip(c0, c1))
            break
    lum = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]
    return "#%02x%02x%02x" % rgb, ("#ffffff" if lum < 140 else "#1a1a1a")


def show_token(token: str) -> str:
    """Make a token's whitespace visible: ' =' -> '␣='."""
    return token.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥")


def heatmap_svg(grid: dict[str, Any], site: dict[str, Any] | None = None, title: str = "") -> str:
    """Layers (rows) x positions (columns) of best-seed IIA, mean over seeds in small print,
    the chosen site outlined, and a legend underneath (0.5-1.0, or 0-1 when a cell is lower)."""
    layers: list = list(grid.get("layers") or [])
    positions: list = list(grid.get("positions") or [None])
    tokens: list = list(grid.get("position_tokens") or [])
    vmax = grid.get("iia_max") or grid.get("iia_mean") or [[None] * len(positions) for _ in layers]
    vmean = grid.get("iia_mean")
    low = scale_low(vmax)
    cw, ch, left, top = 76, 40, 56, 58
    width = max(left + cw * len(positions) + 16, 320)
    height = top + ch * len(layers) + 56
    out = [f'<svg class="heatmap" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
           f"<title>{_e(title or 'IIA by layer and position')}</title>"]
    out.append(f'<text x="{left}" y="12" class="axis">rows: layer · columns: position</text>')
    for j, pos in enumerate(positions):
        x = left + j * cw + cw / 2
        name = "vector" if pos is None else str(pos)
        out.append(f'<text x="{x}" y="{top - 20}" text-anchor="middle" class="axis">{_e(name)}</text>')
        if j < len(tokens) and tokens[j] is not None and pos is not None:
            tok = show_token(str(tokens[j]))
            tok = tok if len(tok) <= 10 else tok[:9] + "…"
            out.append(f'<text x="{x}" y="{top - 6}" text-anchor="middle" class="tok">{_e(tok)}</text>')
    chosen = None
    if site:
        for i, layer in enumerate(layers):
            for j, pos in enumerate(positions):
                if layer == site.get("layer") and (pos == site.get("position") or len(positions) == 1):
                    chosen = (i, j)
    for i, layer in enumerate(layers):
        y = top + i * ch
        out.append(f'<text x="{left - 8}" y="{y + ch / 2 + 4}" text-anchor="end" class="axis">{_e(layer)}</text>')
        for j in range(len(positions)):
            v = _cell(vmax, i, j)
            m = _cell(vmean, i, j) if vmean is not None and vmean is not vmax else None
            fill, ink = iia_color(v, low)
            x = left + j * cw
            tip = f"layer {layer}, position {positions[j]}: best {_fmt(v)}"
            tip += f", mean {_fmt(m)}" if m is not None else ""
            out.append(f'<g><title>{_e(tip)}</title><rect x="{x}" y="{y}" width="{cw}" height="{ch}" '
                       f'fill="{fill}" stroke="#ffffff" stroke-width="1"/>')
            dy = 3 if m is None else -1
            out.append(f'<text x="{x + cw / 2}" y="{y + ch / 2 + dy}" text-anchor="middle" class="val" '
                       f'fill="{ink}">{_fmt(v)}</text>')
            if m is not None:
                out.append(f'<text x="{x + cw / 2}" y="{y + ch / 2 + 13}" text-anchor="middle" class="mean" '
                           f'fill="{ink}">μ {_fmt(m)}</text>')
            out.append("</g>")
    if chosen:
        i, j = chosen
        out.append(f'<rect class="chosen" x="{left + j * cw + 1.5}" y="{top + i * ch + 1.5}" width="{cw - 3}" '
                   f'height="{ch - 3}" fill="none" stroke="#e8590c" stroke-width="3"/>')
    out.append(_legend(left, top + ch * len(layers) + 18, low))
    out.append("</svg>")
    return "".join(out)


def _legend(x0: float, y0: float, low: float = LOW, steps: int = 10, w: float = 16) -> str:
    out = [f'<text x="{x0 - 8}" y="{y0 + 10}" text-anchor="end" class="axis">IIA</text>']
    for k in range(steps):
        fill, _ = iia_color(low + (HIGH - low) * (k + 0.5) / steps, low)
        out.append(f'<rect x="{x0 + k * w}" y="{y0}" width="{w}" height="12" fill="{fill}"/>')
    for v in (low, (low + HIGH) / 2, HIGH):
        x = x0 + (v - low) / (HIGH - low) * steps * w
        out.append(f'<text x="{x}" y="{y0 + 26}" text-anchor="middle" class="tick">{v:g}</text>')
    out.append(f'<rect x="{x0 + steps * w + 12}" y="{y0}" width="14" height="12" fill="none" stroke="#e8590c" '
               f'stroke-width="3"/><text x="{x0 + steps * w + 30}" y="{y0 + 10}" class="tick">chosen site</text>')
    return "".join(out)


def _cell(rows: Sequence | None, i: int, j: int) -> float | None:
    try:
        v = rows[i][j]  # type: ignore[index]
    except (IndexError, TypeError, KeyError):
        return None
    return None if v is None else float(v)


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def graph_layers(nodes: list[dict[str, Any]], edges: Sequence[Sequence[Any]]) -> list[list[str]]:
    """Rows of node ids: inputs first, outputs last, others by longest path from an input;
    within a row, ordered by the mean column of their parents to keep edges from crossing."""
    g = nx.DiGraph()
    g.add_nodes_from(n["id"] for n in nodes)
    g.add_edges_from((str(a), str(b)) for a, b in edges)
    kind = {n["id"]: n.get("kind") for n in nodes}
    order = {n["id"]: k for k, n in enumerate(nodes)}
    try:
        topo = list(nx.topological_sort(g))
    except nx.NetworkXUnfeasible:  # a cyclic model still gets a picture (the acyclic check reports it)
        topo = [n["id"] for n in nodes]
    depth: dict[str, int] = {}
    for v in topo:
        preds = [depth[p] + 1 for p in g.predecessors(v) if p in depth]
        depth[v] = 0 if kind.get(v) == "input" else max(preds, default=1 if kind.get(v) != "input" else 0)
    bottom = max(depth.values(), default=0)
    if any(kind.get(v) != "output" and depth[v] == bottom for v in depth):
        bottom += 1
    for v in depth:
        if kind.get(v) == "output":
            depth[v] = bottom
    rows: list[list[str]] = [[] for _ in range(bottom + 1)]
    for v in sorted(depth, key=lambda v: order.get(v, 0)):
        rows[depth[v]].append(v)
    rows = [r for r in rows if r]
    col: dict[str, float] = {v: k for k, v in enumerate(rows[0])} if rows else {}
    for r in rows[1:]:
        r.sort(key=lambda v: sum(col.get(p, 0) for p in g.predecessors(v)) / max(1, g.in_degree(v)))
        col.update({v: k * (len(rows[0]) / max(1, len(r))) for k, v in enumerate(r)})
    return rows


def causal_graph_svg(model: dict[str, Any], name: str = "") -> str:
    """The causal model as a top-down layered graph: boxes labelled name and domain, coloured by kind."""
    graph = model.get("graph") or {}
    nodes = list(graph.get("nodes") or [])
    edges = [tuple(e) for e in graph.get("edges") or []]
    by_id = {n["id"]: n for n in nodes}
    rows = graph_layers(nodes, edges)
    bw, bh, gap_x, gap_y, pad = 96, 42, 18, 46, 10
    widest = max((len(r) for r in rows), default=1)
    width = pad * 2 + widest * bw + (widest - 1) * gap_x
    height = pad * 2 + len(rows) * bh + (len(rows) - 1) * gap_y
    at: dict[str, tuple[float, float]] = {}
    for i, row in enumerate(rows):
        row_w = len(row) * bw + (len(row) - 1) * gap_x
        x0 = (width - row_w) / 2
        for k, v in enumerate(row):
            at[v] = (x0 + k * (bw + gap_x), pad + i * (bh + gap_y))
    out = [f'<svg class="graph" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
           f"<title>{_e('causal graph of ' + name if name else 'causal graph')}</title>"]
    for a, b in edges:
        if a not in at or b not in at:
            continue
        (xa, ya), (xb, yb) = at[a], at[b]
        # Spread the ends along the box edges so arrows into one node do not pile up on one point.
        ca, cb = xa + bw / 2, xb + bw / 2
        x1 = ca + max(-bw / 2 + 12, min(bw / 2 - 12, (cb - ca) * 0.25))
        x2 = cb + max(-bw / 2 + 12, min(bw / 2 - 12, (ca - cb) * 0.25))
        y1, y2 = ya + bh, yb
        if y2 <= y1:  # same row or upward (only in a cyclic model): route around the side
            y1, y2 = ya + bh / 2, yb + bh / 2
        out.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                   'stroke="#8a8f98" stroke-width="1.4"/>')
        out.append(_arrowhead(x1, y1, x2, y2))
    for v, (x, y) in at.items():
        n = by_id.get(v, {"kind": "intermediate"})
        kind = n.get("kind", "intermediate")
        label = v if len(v) <= 13 else v[:12] + "…"
        dom = str(n.get("domain") or "")
        dom = dom if len(dom) <= 17 else dom[:16] + "…"
        tip = f"{v} : {n.get('domain')} ({kind})" + (f" = {n['mechanism']}" if n.get("mechanism") else "")
        out.append(f'<g><title>{_e(tip)}</title><rect x="{x}" y="{y}" width="{bw}" height="{bh}" rx="8" '
                   f'fill="{KIND_FILL.get(kind, "#eee")}" stroke="{KIND_STROKE.get(kind, "#666")}" stroke-width="1.5"/>'
                   f'<text x="{x + bw / 2}" y="{y + 18}" text-anchor="middle" class="node">{_e(label)}</text>'
                   f'<text x="{x + bw / 2}" y="{y + 33}" text-anchor="middle" class="dom">{_e(dom)}</text></g>')
    out.append("</svg>")
    return "".join(out)


def _arrowhead(x1: float, y1: float, x2: float, y2: float, size: float = 7) -> str:
    dx, dy = x2 - x1, y2 - y1
    length = (dx * dx + dy * dy) ** 0.5 or 1.0
    ux, uy = dx / length, dy / length
    bx, by = x2 - ux * size, y2 - uy * size
    px, py = -uy * size * 0.5, ux * size * 0.5
    return (f'<polygon points="{x2:.1f},{y2:.1f} {bx + px:.1f},{by + py:.1f} {bx - px:.1f},{by - py:.1f}" '
            f'fill="#8a8f98"/>')
