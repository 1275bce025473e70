"""The report draws a path-patching claim: a line listing the holds, and the held components beside
each variable's site grid (hatched, marked H), the aligned site outlined."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

from abstract.report import render_html
from abstract.report.holds import held_path_svg, holds_line
from abstract.verify.shape import document_problems

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "results_example.json"
HOLDS = [{"components": ["attn_out"], "layers": [10, 11], "positions": None,
          "text": "hold component attn_out, layer 10..11", "location": "ioi.causal:40:5"},
         {"components": ["mlp_out"], "layers": [11], "positions": ["last"],
          "text": "hold component mlp_out, layer 11, position last", "location": "ioi.causal:41:5"}]


def _doc(holds=HOLDS):
    doc = json.loads(FIXTURE.read_text())
    h = doc["hypotheses"][0]
    h["holds"] = copy.deepcopy(holds)
    for v in h["variables"].values():
        v["site"] = {"layer": 8, "component": "resid_post", "position": "last"}
    return doc


def test_held_components_are_drawn_beside_every_grid():
    doc = _doc()
    assert not document_problems(doc)
    html = render_html(doc)
    assert "path patching: " in html and "hold component attn_out, layer 10..11" in html
    strips = re.findall(r'<svg class="holds".*?</svg>', html, re.S)
    assert len(strips) == len(doc["hypotheses"][0]["variables"])
    strip = strips[0]
    # layers 8 (the site) .. 11 as columns; attn_out 10, 11 held at every token, mlp_out 11 at `last`
    assert strip.count('<g class="held">') == 3
    assert "layer 10 attn_out: held at base (every token)" in strip
    assert "layer 11 mlp_out: held at base (last)" in strip
    assert strip.count('class="site"') == 1
    for layer in (8, 9, 10, 11):
        assert f'class="axis">{layer}</text>' in strip


def test_no_holds_no_drawing():
    doc = json.loads(FIXTURE.read_text())
    html = render_html(doc)
    assert 'class="holds"' not in html and "path patching" not in html
    assert held_path_svg(None, {"layer": 1}) == "" and holds_line([]) == ""


def test_hold_text_is_escaped():
    line = holds_line([{"text": "hold <script>", "layers": [1], "components": ["attn_out"]}])
    assert "<script>" not in line and "&lt;script&gt;" in line


def test_torch_holds_draw_layer_outputs():
    svg = held_path_svg([{"components": ["resid_post"], "layers": [2], "positions": None}],
                        {"layer": 0, "component": "resid_post"})
    assert "layer out" in svg and "attn_out" not in svg and svg.count('<g class="held">') == 1


def test_a_malformed_holds_entry_is_a_document_problem():
    doc = _doc([{"components": "attn_out", "layers": [10]}])
    assert any("holds" in p for p in document_problems(doc))
