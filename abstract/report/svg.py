"""Hand-written inline SVG for the report: IIA heatmaps and causal graphs.

Hand-written rather than matplotlib so the figures are small, crisp, text-searchable and need
no namespace URL or font files: the HTML must stay one self-contained file. No <defs>/ids are
used, so any number of figures can share one page without clashing.
"""
from __future__ import annotations

import math
from html import escape
from typing import Any, Iterable, Sequence

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


def document_scale(values: Iterable[float | None]) -> tuple[float, float]:
    """One colour scale for every heatmap of a page: the min..max of all their cells, widened to
    multiples of 0.05 (at least 0.05 wide, within 0..1); (LOW, HIGH) when there is no cell."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return LOW, HIGH
    low = max(0.0, math.floor(round(min(vals) * 20, 6)) / 20)
    high = min(1.0, math.ceil(round(max(vals) * 20, 6)) / 20)
    if high - low < 0.05:
        low, high = (high - 0.05, high) if high >= 0.05 else (low, low + 0.05)
    return round(low, 2), round(high, 2)


def iia_color(value: float | None, low: float = LOW, high: float = HIGH) -> tuple[str, str]:
    """(fill, text colour) for an IIA value on a scale from `low` to `high`; values outside are clamped.
    Not measured (None) and not a number (NaN, which a hand-edited document may hold) are blank."""
    if value is None or not math.isfinite(value):
        return "#ffffff", "#888888"
    high = high if high > low else low + 1e-9
    v = min(max(value, low), high)
    v = LOW + (v - low) / (high - low) * (HIGH - LOW)  # onto the stops, which span LOW..HIGH
    rgb: tuple[int, ...] = _STOPS[-1][1]
    for (x0, c0), (x1, c1) in zip(_STOPS, _STOPS[1:]):
        if v <= x1:
            t = (v - x0) / (x1 - x0)
            rgb = tuple(round(a + (b - a) * t) for a, b in zip(c0, c1))
            break
    lum = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]
    return "#%02x%02x%02x" % rgb, ("#ffffff" if lum < 140 else "#1a1a1a")


def grid_values(grid: dict[str, Any]) -> list[float | None]:
    """Every cell a heatmap of `grid` colours (best-seed IIA, else the mean)."""
    rows = grid.get("iia_max") or grid.get("iia_mean") or []
    out: list[float | None] = []
    for row in rows if isinstance(rows, list) else []:
        for v in row if isinstance(row, list) else []:
            out.append(float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None)
    return out


def show_token(token: str) -> str:
    """Make a token's whitespace visible: ' =' -> '␣='."""
    return token.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥")


TRIVIAL_LEGEND = "trivial: realised by swapping the variable's inputs"
BETTER_LEGEND = "better site than the named one"


def _find(layers: list, positions: list, site: dict[str, Any] | None) -> tuple[int, int] | None:
    """The (row, column) of `site` in the grid (any column when the grid has one)."""
    if not isinstance(site, dict):
        return None
    found = None
    for i, layer in enumerate(layers):
        for j, pos in enumerate(positions):
            if layer == site.get("layer") and (pos == site.get("position") or len(positions) == 1):
                found = (i, j)
    return found


def _hatch(x: float, y: float, w: float, h: float, ink: str, step: float = 9, mark: bool = True) -> str:
    """Diagonal hatching inside one cell, drawn as clipped lines (no <pattern>: it needs an id)."""
    out = []
    c = x + y + step
    while c < x + w + y + h:
        xa, xb = max(x, c - y - h), min(x + w, c - y)
        out.append(f'<line x1="{xa:.1f}" y1="{c - xa:.1f}" x2="{xb:.1f}" y2="{c - xb:.1f}"/>')
        c += step
    return (f'<g class="hatch" stroke="{ink}" stroke-opacity="0.35" stroke-width="1">{"".join(out)}</g>'
            + (f'<text x="{x + 4}" y="{y + 11}" class="triv" fill="{ink}">T</text>' if mark else ""))


def heatmap_svg(grid: dict[str, Any], site: dict[str, Any] | None = None, title: str = "",
                better: dict[str, Any] | None = None, scale: tuple[float, float] | None = None,
                levels: dict[str, float | None] | None = None, columns: str = "position") -> str:
    """Layers (rows) x positions (columns) of best-seed IIA, mean over seeds in small print,
    the chosen site outlined, trivial cells (``grid["trivial"]``) hatched and marked T, the
    grid's better site (`better`) outlined dashed, and a legend underneath. The colour scale is
    `scale` (low, high) — the report passes one for the whole page, so that a colour means the
    same figure in every heatmap — else 0.5-1.0 (0-1 when a cell is lower). `levels` marks
    reference figures on the legend: "chance" (a constant guess) and "do nothing" (the site
    left unchanged), each clamped to the scale's ends when outside it."""
    layers: list = list(grid.get("layers") or [])
    positions: list = list(grid.get("positions") or [None])
    tokens: list = list(grid.get("position_tokens") or [])
    vmax = grid.get("iia_max") or grid.get("iia_mean") or [[None] * len(positions) for _ in layers]
    vmean = grid.get("iia_mean")
    trivial = grid.get("trivial")
    low, high = scale if scale is not None else (scale_low(vmax), HIGH)
    marks = [(k, float(x)) for k, x in (levels or {}).items()
             if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)]
    chosen, better_at = _find(layers, positions, site), _find(layers, positions, better)
    any_trivial = any(_flag(trivial, i, j) for i in range(len(layers)) for j in range(len(positions)))
    cw, ch, left, top = 76, 40, 56, 58
    width = max(left + cw * len(positions) + 16, 320)
    keys = [k for k, shown in (("trivial", any_trivial), ("better", better_at not in (None, chosen))) if shown]
    height = top + ch * len(layers) + 56 + 18 * len(keys) + (18 if marks else 0)
    if keys:  # room for the longest legend line
        width = max(width, 380)
    out = [f'<svg class="heatmap" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
           f"<title>{_e(title or 'IIA by layer and position')}</title>"]
    out.append(f'<text x="{left}" y="12" class="axis">rows: layer · columns: {_e(columns)}</text>')
    for j, pos in enumerate(positions):
        x = left + j * cw + cw / 2
        name = "vector" if pos is None else str(pos)
        out.append(f'<text x="{x}" y="{top - 20}" text-anchor="middle" class="axis">{_e(name)}</text>')
        if j < len(tokens) and tokens[j] is not None and pos is not None:
            tok = show_token(str(tokens[j]))
            tok = tok if len(tok) <= 10 else tok[:9] + "…"
            out.append(f'<text x="{x}" y="{top - 6}" text-anchor="middle" class="tok">{_e(tok)}</text>')
    for i, layer in enumerate(layers):
        y = top + i * ch
        out.append(f'<text x="{left - 8}" y="{y + ch / 2 + 4}" text-anchor="end" class="axis">{_e(layer)}</text>')
        for j in range(len(positions)):
            v = _cell(vmax, i, j)
            m = _cell(vmean, i, j) if vmean is not None and vmean is not vmax else None
            fill, ink = iia_color(v, low, high)
            x = left + j * cw
            tip = f"layer {layer}, {columns} {positions[j]}: best {_fmt(v)}"
            tip += f", mean {_fmt(m)}" if m is not None else ""
            tip += f" ({TRIVIAL_LEGEND})" if _flag(trivial, i, j) else ""
            out.append(f'<g><title>{_e(tip)}</title><rect x="{x}" y="{y}" width="{cw}" height="{ch}" '
                       f'fill="{fill}" stroke="#ffffff" stroke-width="1"/>')
            dy = 3 if m is None else -1
            out.append(f'<text x="{x + cw / 2}" y="{y + ch / 2 + dy}" text-anchor="middle" class="val" '
                       f'fill="{ink}">{_fmt(v)}</text>')
            if m is not None:
                out.append(f'<text x="{x + cw / 2}" y="{y + ch / 2 + 13}" text-anchor="middle" class="mean" '
                           f'fill="{ink}">μ {_fmt(m)}</text>')
            if _flag(trivial, i, j):
                out.append(_hatch(x, y, cw, ch, ink))
            out.append("</g>")
    if chosen:
        i, j = chosen
        out.append(f'<rect class="chosen" x="{left + j * cw + 1.5}" y="{top + i * ch + 1.5}" width="{cw - 3}" '
                   f'height="{ch - 3}" fill="none" stroke="#e8590c" stroke-width="3"/>')
    if "better" in keys and better_at is not None:
        i, j = better_at
        out.append(f'<rect class="better" x="{left + j * cw + 3}" y="{top + i * ch + 3}" width="{cw - 6}" '
                   f'height="{ch - 6}" fill="none" stroke="#7048e8" stroke-width="2.5" stroke-dasharray="5 3"/>')
    y0 = top + ch * len(layers) + 18
    out.append(_legend(left, y0, low, high, marks))
    for k, key in enumerate(keys):  # one legend row each, under the colour scale
        x, y = left - 20.0, y0 + 36 + (18 if marks else 0) + 18 * k
        if key == "trivial":
            out.append(f'<rect x="{x}" y="{y}" width="14" height="12" fill="#d7dce3"/>'
                       + _hatch(x, y, 14, 12, "#1a1a1a", step=5, mark=False)
                       + f'<text x="{x + 20}" y="{y + 10}" class="tick">{_e(TRIVIAL_LEGEND)} (T)</text>')
        else:
            out.append(f'<rect x="{x}" y="{y}" width="14" height="12" fill="none" stroke="#7048e8" '
                       f'stroke-width="2" stroke-dasharray="4 2"/>'
                       f'<text x="{x + 20}" y="{y + 10}" class="tick">{_e(BETTER_LEGEND)}</text>')
    out.append("</svg>")
    return "".join(out)


MARK_INK = {"chance": "#c92a2a", "do nothing": "#495057"}


def _legend(x0: float, y0: float, low: float = LOW, high: float = HIGH,
            marks: Sequence[tuple[str, float]] = (), steps: int = 10, w: float = 16) -> str:
    out = [f'<text x="{x0 - 8}" y="{y0 + 10}" text-anchor="end" class="axis">IIA</text>']
    for k in range(steps):
        fill, _ = iia_color(low + (high - low) * (k + 0.5) / steps, low, high)
        out.append(f'<rect x="{x0 + k * w}" y="{y0}" width="{w}" height="12" fill="{fill}"/>')
    span = (high - low) or 1.0
    mid = round((low + high) / 2 * 20) / 20  # on the 0.05 grid, like the ends of a page's scale
    for v in (low, mid, high) if low < mid < high else (low, high):
        x = x0 + (v - low) / span * steps * w
        out.append(f'<text x="{x:.1f}" y="{y0 + 28}" text-anchor="middle" class="tick">{round(v, 3):g}</text>')
    out.append(f'<rect x="{x0 + steps * w + 12}" y="{y0}" width="14" height="12" fill="none" stroke="#e8590c" '
               f'stroke-width="3"/><text x="{x0 + steps * w + 30}" y="{y0 + 10}" class="tick">chosen site</text>')
    notes = []
    for k, (name, v) in enumerate(marks):  # a marker on the bar, and a line of text saying what it is
        x = x0 + (min(max(v, low), high) - low) / span * steps * w
        ink = MARK_INK.get(name, "#1a1a1a")
        where = " (below the scale)" if v < low else (" (above the scale)" if v > high else "")
        tip = f"{name}: {v:.2f}{where}"
        tri = (f"{x - 4:.1f},{y0 - 6} {x + 4:.1f},{y0 - 6} {x:.1f},{y0}" if k % 2 == 0
               else f"{x - 3.5:.1f},{y0 + 17} {x + 3.5:.1f},{y0 + 17} {x:.1f},{y0 + 12}")
        out.append(f'<g class="level"><title>{_e(tip)}</title><line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" '
                   f'y2="{y0 + 12}" stroke="{ink}" stroke-width="2"/><polygon points="{tri}" fill="{ink}"/></g>')
        notes.append(f'<tspan fill="{ink}">{"▼" if k % 2 == 0 else "▲"} {_e(tip)}</tspan>')
    if notes:
        out.append(f'<text x="{x0 - 20}" y="{y0 + 46}" class="tick level-key">{"   ".join(notes)}</text>')
    return "".join(out)


def _cell(rows: Sequence | None, i: int, j: int) -> float | None:
    try:
        v = rows[i][j]  # type: ignore[index]
    except (IndexError, TypeError, KeyError):
        return None
    return None if v is None else float(v)


def _flag(rows: Any, i: int, j: int) -> bool:
    """Whether cell (i, j) of a [[bool]] grid is true (a missing or ragged grid: false)."""
    try:
        return rows[i][j] is True
    except (IndexError, TypeError, KeyError):
        return False


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


GRAPH_BOX = (96, 42)  # node box width, height


def graph_geometry(model: dict[str, Any]) -> dict[str, Any]:
    """Where the causal graph's boxes and edges go: ``{"width", "height", "boxes": {id: (x, y, w, h)},
    "edges": [(a, b, [(x, y), ...])]}``. Layered by topological depth; an edge that spans several
    rows goes through a waypoint slot of its own in every row between (a dummy node, as in a
    Sugiyama layout), so no edge segment crosses a node's box other than its own two ends."""
    graph = model.get("graph") or {}
    nodes = list(graph.get("nodes") or [])
    edges = [(str(e[0]), str(e[1])) for e in graph.get("edges") or [] if isinstance(e, (list, tuple)) and len(e) >= 2]
    rows = graph_layers(nodes, edges)
    bw, bh = GRAPH_BOX
    gap_x, gap_y, pad, slot = 18, 46, 10, 14
    row_of = {v: i for i, r in enumerate(rows) for v in r}
    # every row's entries: real nodes (str) and waypoints (edge index) of edges passing through it
    entries: list[list[Any]] = [list(r) for r in rows]
    col: dict[Any, float] = {v: k for r in entries for k, v in enumerate(r)}
    long_edges = [k for k, (a, b) in enumerate(edges)
                  if a in row_of and b in row_of and row_of[b] - row_of[a] > 1]
    for i in range(1, len(entries)):
        through = [k for k in long_edges if row_of[edges[k][0]] < i < row_of[edges[k][1]]]
        if not through:
            continue
        row = entries[i]

        def key(item: Any, i: int = i) -> float:
            if isinstance(item, str):
                return col.get(item, 0.0)
            a = edges[item][0]
            prev = a if row_of[a] == i - 1 else ("w", item)
            return col.get(prev, 0.0) + 0.01
        merged = row + [("w", k) for k in through]
        merged.sort(key=lambda it: key(it[1]) if isinstance(it, tuple) else key(it))
        entries[i] = merged
        for k, v in enumerate(merged):
            col[v] = k

    def size(item: Any) -> float:
        return bw if isinstance(item, str) else slot

    def row_width(r: list[Any]) -> float:
        return sum(size(v) for v in r) + gap_x * max(0, len(r) - 1)

    width = pad * 2 + max((row_width(r) for r in entries), default=bw)
    height = pad * 2 + len(entries) * bh + max(0, len(entries) - 1) * gap_y
    boxes: dict[str, tuple[float, float, float, float]] = {}
    way: dict[int, dict[int, float]] = {}  # edge index -> row -> x of its waypoint
    for i, r in enumerate(entries):
        x = (width - row_width(r)) / 2
        y = pad + i * (bh + gap_y)
        for v in r:
            if isinstance(v, str):
                boxes[v] = (x, y, bw, bh)
            else:
                way.setdefault(v[1], {})[i] = x + slot / 2
            x += size(v) + gap_x
    routes = []
    for k, (a, b) in enumerate(edges):
        if a not in boxes or b not in boxes:
            continue
        (xa, ya, _, _), (xb, yb, _, _) = boxes[a], boxes[b]
        ca, cb = xa + bw / 2, xb + bw / 2
        if row_of[b] <= row_of[a]:  # same row or upward (only in a cyclic model): from side to side
            routes.append((a, b, [(ca, ya + bh / 2), (cb, yb + bh / 2)]))
            continue
        mids = way.get(k, {})
        first = mids[min(mids)] if mids else cb
        last = mids[max(mids)] if mids else ca
        # Spread the ends along the box edges so arrows into one node do not pile up on one point.
        x1 = ca + max(-bw / 2 + 12, min(bw / 2 - 12, (first - ca) * 0.25))
        x2 = cb + max(-bw / 2 + 12, min(bw / 2 - 12, (last - cb) * 0.25))
        points = [(x1, ya + bh)]
        for i in sorted(mids):
            y = pad + i * (bh + gap_y)
            points += [(mids[i], y), (mids[i], y + bh)]
        points.append((x2, yb))
        routes.append((a, b, points))
    return {"width": width, "height": height, "boxes": boxes, "edges": routes}


def causal_graph_svg(model: dict[str, Any], name: str = "") -> str:
    """The causal model as a top-down layered graph: boxes labelled name and domain, coloured by kind;
    edges are polylines that go round, never through, the boxes between their ends."""
    graph = model.get("graph") or {}
    by_id = {n["id"]: n for n in graph.get("nodes") or []}
    geo = graph_geometry(model)
    width, height = round(geo["width"]), round(geo["height"])
    bw, bh = GRAPH_BOX
    out = [f'<svg class="graph" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
           f"<title>{_e('causal graph of ' + name if name else 'causal graph')}</title>"]
    for a, b, points in geo["edges"]:
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        out.append(f'<polyline class="edge" points="{pts}" fill="none" stroke="#8a8f98" stroke-width="1.4">'
                   f'<title>{_e(a)} → {_e(b)}</title></polyline>')
        (x1, y1), (x2, y2) = points[-2], points[-1]
        out.append(_arrowhead(x1, y1, x2, y2))
    for v, (x, y, _, _) in geo["boxes"].items():
        n = by_id.get(v, {"kind": "intermediate"})
        kind = n.get("kind", "intermediate")
        label = v if len(v) <= 13 else v[:12] + "…"
        dom = str(n.get("domain") or "")
        dom = dom if len(dom) <= 17 else dom[:16] + "…"
        tip = f"{v} : {n.get('domain')} ({kind})" + (f" = {n['mechanism']}" if n.get("mechanism") else "")
        out.append(f'<g><title>{_e(tip)}</title><rect class="box" x="{x:.1f}" y="{y:.1f}" width="{bw}" '
                   f'height="{bh}" rx="8" fill="{KIND_FILL.get(kind, "#eee")}" stroke="{KIND_STROKE.get(kind, "#666")}"'
                   f' stroke-width="1.5"/>'
                   f'<text x="{x + bw / 2:.1f}" y="{y + 18:.1f}" text-anchor="middle" class="node">{_e(label)}</text>'
                   f'<text x="{x + bw / 2:.1f}" y="{y + 33:.1f}" text-anchor="middle" class="dom">{_e(dom)}</text></g>')
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
