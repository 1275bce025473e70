"""The causal graphs' layout: no edge segment passes through a node box other than its own ends,
checked geometrically on every model of every shipped spec and on hand-built awkward graphs."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from abstract.language.compiler import load_spec
from abstract.report.svg import causal_graph_svg, graph_geometry
from abstract.verify.pipeline import model_summaries

SPECS = sorted((Path(__file__).resolve().parents[2] / "specs").glob("*.causal"))


def _segment_hits_box(p: tuple[float, float], q: tuple[float, float], box: tuple[float, float, float, float],
                      margin: float = 1.0) -> bool:
    """Liang-Barsky clipping: whether segment p-q meets the box shrunk by `margin`."""
    x, y, w, h = box
    xmin, xmax, ymin, ymax = x + margin, x + w - margin, y + margin, y + h - margin
    dx, dy = q[0] - p[0], q[1] - p[1]
    t0, t1 = 0.0, 1.0
    for pk, qk in ((-dx, p[0] - xmin), (dx, xmax - p[0]), (-dy, p[1] - ymin), (dy, ymax - p[1])):
        if pk == 0:
            if qk < 0:
                return False
            continue
        t = qk / pk
        if pk < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return False
    return True


def _crossings(geo: dict) -> list[str]:
    bad = []
    for a, b, points in geo["edges"]:
        for p, q in zip(points, points[1:]):
            for v, box in geo["boxes"].items():
                if v not in (a, b) and _segment_hits_box(p, q, box):
                    bad.append(f"{a}->{b} crosses {v}")
    return bad


def test_the_clipping_helper() -> None:
    assert _segment_hits_box((0, 0), (100, 100), (40, 40, 10, 10))
    assert not _segment_hits_box((0, 0), (100, 0), (40, 40, 10, 10))
    assert not _segment_hits_box((0, 0), (30, 30), (40, 40, 10, 10))


@pytest.mark.parametrize("spec", SPECS, ids=[p.name for p in SPECS])
def test_no_edge_crosses_a_node_in_shipped_specs(spec: Path) -> None:
    models = model_summaries(load_spec(spec))
    assert models
    for name, model in models.items():
        geo = graph_geometry(model)
        edges = model["graph"]["edges"]
        assert len(geo["edges"]) == len(edges), name
        assert set(geo["boxes"]) == {n["id"] for n in model["graph"]["nodes"]}, name
        assert _crossings(geo) == [], f"{spec.name}: {name}"
        for _, _, points in geo["edges"]:  # every edge goes downwards, from its source's bottom to its target's top
            assert all(p[1] <= q[1] for p, q in zip(points, points[1:]))
        svg = causal_graph_svg(model, name)
        assert svg.count('class="edge"') == len(edges)
        assert svg.count('<rect class="box"') == len(geo["boxes"])  # not "node": that class styles the labels


def _chain_with_skips(n: int) -> dict:
    nodes = [{"id": "x", "kind": "input"}] + [{"id": f"m{k}", "kind": "intermediate"} for k in range(n)]
    nodes.append({"id": "y", "kind": "output"})
    edges = [["x", "m0"]] + [[f"m{k}", f"m{k + 1}"] for k in range(n - 1)] + [[f"m{n - 1}", "y"]]
    edges += [["x", "y"], ["x", f"m{n - 1}"], ["m0", "y"]]  # long edges that a straight line would draw through m*
    return {"graph": {"nodes": nodes, "edges": edges}}


def test_long_edges_go_round_the_rows_between() -> None:
    model = _chain_with_skips(4)
    geo = graph_geometry(model)
    assert _crossings(geo) == []
    long = [pts for a, b, pts in geo["edges"] if (a, b) == ("x", "y")][0]
    assert len(long) > 2  # it bends through waypoints


def test_wide_graphs_and_diamonds() -> None:
    nodes = ([{"id": f"i{k}", "kind": "input"} for k in range(5)] + [{"id": f"h{k}", "kind": "intermediate"}
                                                                        for k in range(3)]
             + [{"id": "g", "kind": "intermediate"}, {"id": "o", "kind": "output"}])
    edges = [[f"i{k}", f"h{k % 3}"] for k in range(5)] + [["h0", "g"], ["h1", "g"], ["g", "o"], ["h2", "o"],
                                                         ["i0", "o"], ["i4", "g"], ["i2", "o"]]
    geo = graph_geometry({"graph": {"nodes": nodes, "edges": edges}})
    assert _crossings(geo) == []


def test_hostile_names_are_escaped_in_edge_titles() -> None:
    model = {"graph": {"nodes": [{"id": "<a>", "kind": "input"}, {"id": "b&", "kind": "output"}],
                       "edges": [["<a>", "b&"]]}}
    svg = causal_graph_svg(model)
    assert "<a>" not in svg and "&lt;a&gt;" in svg and "b&amp;" in svg
    assert not re.search(r"&(?![a-z]+;|#)", svg)
