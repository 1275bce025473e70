"""The report's training diagnostics: per-seed loss curves (inline SVG) and the failing-pairs
table, from the optional fields; a document without them renders as before."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from abstract.report import render_html
from abstract.report.diagnostics import loss_curve_svg
from abstract.verify.shape import document_problems

from test_html import parse  # noqa: E402 -- the report tests' HTML structure checker

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "results_example.json"


@pytest.fixture
def doc():
    return json.loads(FIXTURE.read_text())


def with_diagnostics(doc):
    h = doc["hypotheses"][0]
    left = h["variables"]["left"]
    for i, s in enumerate(left["seeds"]):
        s["diagnostics"] = {"loss": [2.0, 1.0, 0.5, 0.25, None, 0.2], "steps": 6, "dev_loss": 0.3,
                            "train_iia": 0.99, "converged": i != 1,
                            **({"why": "the loss was still falling over the last 1 of 6 steps"} if i == 1 else {})}
    left["failing_pairs"] = [{"base": {"a": 1, "b": "<b>x</b>"}, "source": {"a": 2, "b": "y"},
                              "expected": {"y": True}, "predicted": {"y": False}, "changed": True}]
    h["multi"]["joint"] = {"left,right": {"value": 0.9, "correct": 9, "n": 10, "site": {"layer": 1},
                                          "seeds": [{"seed": 0, "iia": 0.9, "diagnostics": {
                                              "loss": [1.0, 0.1], "steps": 2, "dev_loss": 0.1, "train_iia": 1.0,
                                              "converged": True}}]}}
    return doc


def test_curves_and_failing_pairs_are_rendered(doc):
    doc = with_diagnostics(doc)
    assert document_problems(doc) == []
    html = render_html(doc)
    page = parse(html)
    assert page.problems == []
    losses = [s for s in page.svgs if s.get("class") == "loss"]
    assert len(losses) == 3 + 1  # three seeds of `left`, one of the joint group
    assert html.count('class="curve"') == 4
    # the null (non-finite) step is left out of the line; the unconverged seed is drawn in the warning colour
    first = re.search(r'<polyline class="curve" points="([^"]*)"', html).group(1)
    assert len(first.split()) == 5
    assert html.count('stroke="#b42318" stroke-width="1.5"') == 1
    assert "not converged" in html and "still falling" in html and "train IIA 0.990" in html
    assert "Training of group left,right" in html
    assert "base inputs" in html and "a=1, b=&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "y=false" in html and "y=true" in html


def test_a_document_without_them_renders_as_before(doc):
    html = render_html(doc)
    assert parse(html).problems == []
    assert 'class="loss"' not in html and "base inputs" not in html and "Training of" not in html


def test_an_untrained_seed_has_no_curve(doc):
    doc = with_diagnostics(doc)
    doc["hypotheses"][0]["variables"]["left"]["seeds"][0]["diagnostics"] = {
        "loss": [], "steps": 0, "dev_loss": 0.2, "train_iia": 1.0, "converged": None}
    html = render_html(doc)
    assert "nothing trained" in html and html.count('<svg class="loss"') == 3
    assert "convergence not judged" in html


def test_a_curve_with_no_finite_point_says_so():
    svg = loss_curve_svg([None, None], "t")
    assert "no finite loss recorded" in svg and "<polyline" not in svg
    assert "<circle" in loss_curve_svg([0.5], "one step")
