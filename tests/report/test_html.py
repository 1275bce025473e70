"""The HTML report: well-formed, self-contained, one heatmap per variable, spec text escaped."""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from abstract.report import render_html, write_report
from abstract.report.svg import graph_layers, iia_color

ROOT = Path(__file__).resolve().parent.parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "results_example.json"
VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr", "source", "area", "base"}
SVG_EMPTY = {"rect", "line", "polygon", "path", "circle"}


class Structure(HTMLParser):
    """Collects tags and checks nesting (every non-void element closed, in order)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.svgs: list[dict[str, str]] = []
        self.tags: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "svg":
            self.svgs.append(dict(attrs))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


@pytest.fixture
def doc():
    return json.loads(FIXTURE.read_text())


def parse(html: str) -> Structure:
    p = Structure()
    p.feed(html)
    p.close()
    return p


def test_structure(doc):
    html = render_html(doc)
    p = parse(html)
    assert not p.problems and p.stack == []
    assert html.startswith("<!DOCTYPE html>")
    n_vars = sum(len(h["variables"]) for h in doc["hypotheses"])
    heatmaps = [s for s in p.svgs if s.get("class") == "heatmap"]
    assert len(heatmaps) == n_vars == 3
    assert len([s for s in p.svgs if s.get("class") == "graph"]) == len(doc["models"])
    assert "script" not in p.tags and "link" not in p.tags and "img" not in p.tags


def test_self_contained(doc):
    html = render_html(doc)
    assert "http://" not in html and "https://" not in html and "url(" not in html


def test_content(doc):
    html = render_html(doc)
    for text in ("both_equalities", "first_identity", "iia(left) &gt;= 0.9", "[0.966, 0.980]", "1948/2000",
                 "untrained network", "random rotation", "seed 1", "a = 0, b = 0, c = 0, d = 1", "FAIL",
                 "cpu", "torch 2.13.0", doc["spec"]["sha256"][:16], 'id="L79"', 'href="#L79"'):
        assert text in html, text
    assert html.count('class="chosen"') == 3


def test_spec_is_escaped(doc):
    evil = copy.deepcopy(doc)
    evil["spec"]["text"] += '\n# <script>alert("x")</script> & "quotes"\n'
    evil["hypotheses"][0]["name"] = "<img src=x onerror=alert(1)>"
    evil["checks"][0]["message"] = "</td><script>"
    html = render_html(evil)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp;" in html
    assert not parse(html).problems


def test_positions_and_tokens(doc):
    """A language-model grid: several positions, columns labelled with their tokens."""
    lm = copy.deepcopy(doc)
    var = lm["hypotheses"][0]["variables"]["left"]
    var["grid"].update(positions=["first", -2, "last"], position_tokens=["When", " to", " ="],
                       iia_max=[[0.5, 0.6, 0.7], [0.55, 0.8, 0.99], [0.5, 0.5, 0.4]],
                       iia_mean=[[0.5, 0.6, 0.7], [0.55, 0.8, 0.9], [0.5, 0.5, 0.4]])
    var["site"] = {"layer": 1, "component": "resid_post", "position": "last"}
    html = render_html(lm)
    assert "␣=" in html and "␣to" in html and "0.99" in html
    assert not parse(html).problems


def test_minimal_document_renders():
    """Fields the pipeline may leave out (no grid, no controls, no run info) must not break the page."""
    doc = {"schema": "abstract.results/1", "spec": {"path": "x.causal", "sha256": "", "text": "model M {}"},
           "checks": [], "models": {}, "errors": [{"message": "boom", "location": None}],
           "hypotheses": [{"name": "h", "model": "M", "network": "n", "expectations": [
               {"text": "iia(v) >= 0.9", "value": None, "ci_low": None, "ci_high": None, "correct": 0, "n": 0,
                "passed": False, "reason": "iia(v) was not measured"}],
               "variables": {"v": {"iia": {"mean": 0.5, "max": 0.6, "correct": 6, "n": 10}, "site": {"layer": 2}}},
               "multi": {"cause": {"v": 0.7}, "isolate": {}}}]}
    html = render_html(doc)
    assert "ERROR" in html and "boom" in html and "was not measured" in html
    assert not parse(html).problems


def test_write_report(doc, tmp_path):
    path = write_report(doc, tmp_path / "sub" / "report.html")
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_colour_scale_and_layers():
    assert iia_color(0.3) == iia_color(0.5)  # below chance is clamped
    assert iia_color(1.0)[1] == "#ffffff" and iia_color(0.5)[1] == "#1a1a1a"
    nodes = [{"id": i, "kind": k} for i, k in [("a", "input"), ("b", "input"), ("m", "intermediate"), ("y", "output")]]
    assert graph_layers(nodes, [("a", "m"), ("b", "m"), ("m", "y"), ("a", "y")]) == [["a", "b"], ["m"], ["y"]]
    flat = [{"id": "a", "kind": "input"}, {"id": "y", "kind": "output"}]
    assert graph_layers(flat, [("a", "y")]) == [["a"], ["y"]]



def test_a_heatmap_cell_that_is_not_a_number_is_blank_not_a_crash(doc, tmp_path):
    """Python's json reads NaN and Infinity; a hand-edited document may hold them."""
    assert iia_color(float("nan")) == iia_color(float("inf")) == iia_color(None)
    doc = copy.deepcopy(doc)
    grid = next(iter(doc["hypotheses"][0]["variables"].values()))["grid"]
    grid["iia_max"][0][0] = float("nan")
    html = write_report(doc, tmp_path / "nan.html").read_text(encoding="utf-8")
    assert "best nan" in html  # the cell is drawn (blank), its tooltip says what it holds

@pytest.mark.skipif(not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
                    reason="no chromium installed")
def test_screenshot(tmp_path):
    out = tmp_path / "shot.png"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "screenshot_report.py"), "-o", str(out),
                    "--height", "1200"], check=True, timeout=120)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_colour_scale_extends_to_zero_when_a_cell_is_below_chance():
    from abstract.report.svg import heatmap_svg, scale_low
    assert scale_low([[0.6, 0.9], [None, 1.0]]) == 0.5
    assert scale_low([[0.05, 0.9]]) == 0.0
    assert iia_color(0.3, low=0.0) != iia_color(0.05, low=0.0)  # structure below 0.5 stays visible
    svg = heatmap_svg({"layers": [0], "positions": ["x", "y"], "iia_max": [[0.05, 0.3]]})
    assert ">0<" in svg and ">0.5<" in svg  # legend ticks 0, 0.5, 1
