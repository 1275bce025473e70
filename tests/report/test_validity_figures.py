"""The validity figures (do-nothing baselines, trivial sites, the better site, the preflight,
shortfalls) are shown by every reader: console, JUnit and HTML, and accepted by the shape.

Each test reads a document holding exactly one kind of figure, so a figure a reader forgets
fails its own test; a document without any of them (older documents) still renders the same way.
"""
from __future__ import annotations

import copy
import json
import re
from html import escape, unescape
from pathlib import Path
from typing import Any

import pytest

from abstract.report import render_html
from abstract.report.svg import TRIVIAL_LEGEND, heatmap_svg
from abstract.verify import shape
from abstract.verify.junit import build_junit
from abstract.verify.summary import format_summary

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "results_example.json"
NEW_FIELDS = ("do_nothing", "trivial", "better_site", "preflight", "shortfalls")


def fixture() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def stripped(value: Any) -> Any:
    """`value` without any of the validity fields (a document written before they existed)."""
    if isinstance(value, dict):
        return {k: stripped(v) for k, v in value.items() if k not in NEW_FIELDS}
    if isinstance(value, list):
        return [stripped(v) for v in value]
    return value


def props(doc: dict[str, Any], name: str) -> dict[str, str]:
    case = next(c for c in build_junit(doc).iter("testcase") if c.get("name") == name)
    return {p.get("name"): p.get("value") for p in case.iter("property")}


def row(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.strip().startswith(start))


def cell(text: str, start: str, column: str) -> str:
    """The console table's cell under `column` (right-aligned) in the row starting with `start`."""
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if line.strip().startswith(start))
    head = next(lines[k] for k in range(i, -1, -1) if lines[k].strip().startswith("variable "))
    end = head.index(column) + len(column)
    return lines[i][:end].split()[-1]


@pytest.fixture
def doc() -> dict[str, Any]:
    return fixture()


# ------------------------------------------------------------------ the shipped example holds them
def test_the_example_document_carries_the_new_fields_and_passes_the_shape(doc):
    h = doc["hypotheses"][0]
    assert h["variables"]["left"]["iia"]["do_nothing"]["n"] == 2000
    assert h["variables"]["left"]["grid"]["trivial"] == [[True], [False], [False]]
    assert h["variables"]["left"]["site"]["trivial"] is False
    assert h["multi"]["cause"]["left"]["do_nothing"] and h["multi"]["isolate"]["left,right"]["do_nothing"]
    assert h["preflight"]["task_accuracy"] > 0.9 and h["preflight"]["sites_checked"]
    assert all("do_nothing" in e for hh in doc["hypotheses"] for e in hh["expectations"])
    assert shape.document_problems(doc) == []


def test_the_schema_page_documents_every_new_field():
    text = (ROOT / "docs" / "results-schema.md").read_text()
    for path in ("iia.do_nothing", "site.trivial", "grid.trivial", "better_site", "preflight", "task_accuracy",
                 "sites_checked", "shortfalls", "multi.cause", "expectations[].do_nothing"):
        assert path in text, path


# ------------------------------------------------------------------ console
def test_console_shows_do_nothing_beside_every_figure(doc):
    text = format_summary(doc, unicode=False)
    assert cell(text, "left ", "do-nothing") == "0.004"  # 7/2000
    assert cell(text, "right ", "do-nothing") == "0.004"  # 8/2000
    assert cell(text, "w ", "do-nothing") == "0.004"  # 9/2000 = 0.0045
    assert cell(text, "cause(left)", "do-nothing") == "0.004"
    assert cell(text, "isolate(left, right)", "do-nothing") == "0.498"
    assert cell(text, "isolate(left, right)", "IIA") == "0.942" and cell(text, "cause(right)", "n") == "2000"
    assert row(text, "PASS  iia(left) >= 0.9").endswith("n=2000  (do-nothing 0.004)")
    assert row(text, "PASS  isolate(left, right) >= 0.8").endswith("(do-nothing 0.498)")


def test_console_shows_the_joint_do_nothing(doc):
    h = doc["hypotheses"][0]
    h["multi"]["joint"] = {"left,right": {"value": 0.912, "correct": 1824, "n": 2000,
                                          "do_nothing": {"value": 0.0125, "correct": 25, "n": 2000},
                                          "site": {"layer": 1, "component": "block_output", "position": None}}}
    line = row(format_summary(doc, unicode=False), "joint(left, right)")
    assert "L1.block_output" in line and "0.912" in line and line.rstrip().endswith("0.013")


def test_console_names_each_site_with_its_component(doc):
    vs = doc["hypotheses"][0]["variables"]
    vs["left"]["site"] = {"layer": 0, "component": "resid_post", "position": "last"}
    vs["right"]["site"] = {"layer": 0, "component": "attn_out", "position": "last"}
    text = format_summary(doc, unicode=False)
    assert "L0.resid_post@last" in row(text, "left ") and "L0.attn_out@last" in row(text, "right ")
    assert "L1.block_output" in row(text, "w ")


def test_console_marks_a_trivial_site(doc):
    doc["hypotheses"][0]["variables"]["right"]["site"]["trivial"] = True
    text = format_summary(doc, unicode=False)
    assert "L1.block_output trivial" in row(text, "right ")
    assert "trivial" not in row(text, "left ")
    # the grid's trivial cells the search passed over are named, once per hypothesis
    notes = " ".join(text.split())
    assert "trivial grid sites (realised by swapping the variable's inputs; a search skips them unless named): " \
           "left L0.block_output, right L0.block_output" in notes


def test_console_notes_a_better_site(doc):
    doc["hypotheses"][0]["variables"]["left"]["better_site"] = {
        "layer": 2, "component": "block_output", "position": None, "iia": 0.991, "ci_low": 0.985}
    text = " ".join(format_summary(doc, unicode=False).split())
    assert ("NOTE: left: the grid's best non-trivial site L2.block_output scores 0.991 (lower bound 0.985), "
            "beyond the interval of the named site L1.block_output") in text
    assert "NOTE: right" not in text


def test_console_shows_preflight_and_shortfalls(doc):
    doc["hypotheses"][1]["dataset"]["shortfalls"] = {"train": [376, 400], "test": [90, 100]}
    text = format_summary(doc, unicode=False, width=200)
    first, second = text.split("hypothesis first_identity")
    assert "preflight: task accuracy 0.996 on 256 sample inputs; sites checked L0.block_output, " \
           "L1.block_output, L2.block_output" in first
    assert "WARNING: fewer pairs than requested" not in first
    assert "WARNING: fewer pairs than requested: train 376 of 400, test 90 of 100" in second


def test_console_keeps_its_width_with_the_new_figures(doc):
    doc["hypotheses"][0]["dataset"]["shortfalls"] = {"train": [376, 400]}
    doc["hypotheses"][0]["variables"]["left"]["better_site"] = {"layer": 2, "iia": 0.99, "ci_low": 0.98}
    text = format_summary(doc, unicode=False, width=60)
    assert all(len(line) <= 60 for line in text.splitlines())


def test_an_expectation_without_its_own_baseline_shows_its_figures(doc):
    """The engine writes the figures' baselines; an expectation judged before expectations
    carried one still shows the baseline of what it measured (console and HTML alike)."""
    for h in doc["hypotheses"]:
        for e in h["expectations"]:
            e.pop("do_nothing")
    text = format_summary(doc, unicode=False)
    assert row(text, "PASS  iia(right) >= 0.9").endswith("(do-nothing 0.004)")
    assert row(text, "PASS  isolate(left, right) >= 0.8").endswith("(do-nothing 0.498)")
    html = render_html(doc)
    exp = re.search(r'isolate\(left, right\) &gt;= 0.8</td>.*?</tr>', html).group(0)
    assert '<td class="num dn">0.498 <span class="sub">[0.477, 0.520]</span></td>' in exp


# ------------------------------------------------------------------ JUnit
def test_junit_carries_do_nothing_trivial_and_task_accuracy(doc):
    p = props(doc, "iia(left) >= 0.9")
    assert p["do_nothing"] == "0.0035" and p["do_nothing.correct"] == "7" and p["do_nothing.n"] == "2000"
    assert p["do_nothing.ci"] == "[0.0017, 0.0072]"
    assert p["site.trivial"] == "false"
    assert p["preflight.task_accuracy"] == "0.9961" and p["preflight.n"] == "256"
    assert props(doc, "isolate(left, right) >= 0.8")["do_nothing"] == "0.4985"
    suite = next(build_junit(doc).iter("testsuite"))
    suite_props = {q.get("name"): q.get("value") for q in suite.find("properties")}
    assert suite_props["preflight.first_identity.task_accuracy"] == "0.9961"


def test_junit_falls_back_to_the_metrics_own_baseline(doc):
    """An expectation judged without a baseline of its own still shows the figure's."""
    for e in doc["hypotheses"][0]["expectations"]:
        e.pop("do_nothing")
    assert props(doc, "iia(right) >= 0.9")["do_nothing"] == "0.0040"
    p = props(doc, "isolate(left, right) >= 0.8")
    assert p["do_nothing"] == "0.4985" and "do_nothing.ci" not in p


def test_junit_carries_trivial_site_better_site_and_shortfall(doc):
    h = doc["hypotheses"][0]
    h["variables"]["left"]["site"]["trivial"] = True
    h["variables"]["left"]["better_site"] = {"layer": 2, "component": "block_output", "position": None,
                                             "iia": 0.991, "ci_low": 0.985}
    h["dataset"]["shortfalls"] = {"train": [376, 400]}
    p = props(doc, "iia(left) >= 0.9")
    assert p["site.trivial"] == "true"
    assert p["better_site"] == "L2.block_output" and p["better_site.iia"] == "0.9910"
    assert p["better_site.ci_low"] == "0.9850"
    assert p["dataset.shortfall.train"] == "376/400"
    assert "better_site" not in props(doc, "iia(right) >= 0.9")


# ------------------------------------------------------------------ HTML
def test_html_shows_do_nothing_beside_the_controls_and_every_figure(doc):
    html = render_html(doc)
    rows = re.findall(r"<tr><th>do nothing \(site left unchanged\)</th>.*?</tr>", html)
    assert len(rows) == 3  # left, right, w
    assert "0.004" in rows[0] and "7/2000" in rows[0] and "[0.002, 0.007]" in rows[0]
    # the expectations table and the several-variable table have a do-nothing column
    assert html.count('<th class="num dn" title="what leaving the site unchanged scores on the same pairs">') == 3
    isolate = re.search(r'<td class="mono">isolate\(left, right\)</td>.*?</tr>', html).group(0)
    assert "0.498" in isolate and "997/2000" in isolate


def test_html_marks_trivial_cells_and_the_trivial_site(doc):
    html = render_html(doc)
    assert html.count(">T</text>") == 3  # layer 0 of left, right and w
    assert html.count('class="hatch"') == 6  # those cells and each legend's swatch
    assert TRIVIAL_LEGEND == "trivial: realised by swapping the variable's inputs"
    assert html.count(escape(TRIVIAL_LEGEND) + " (T)</text>") == 3
    assert 'class="tag trivial"' not in html  # no chosen site is trivial in the example
    doc["hypotheses"][1]["variables"]["w"]["site"]["trivial"] = True
    html = render_html(doc)
    assert html.count('class="tag trivial"') == 1
    assert html.count('class="chosen"') == 3  # the chosen site is outlined as before


def test_heatmap_hatches_exactly_the_trivial_cells():
    grid = {"layers": [0, 1], "positions": ["first", "last"], "iia_max": [[1.0, 0.9], [0.6, 0.97]],
            "trivial": [[True, False], [False, True]]}
    svg = heatmap_svg(grid, {"layer": 1, "position": "first"})
    cells = re.findall(r"<g><title>(.*?)</title>(.*?)</g>(?=<g><title>|<rect class)", svg)
    marked = [unescape(title) for title, body in cells if 'class="hatch"' in body]
    assert marked == ["layer 0, position first: best 1.00 (trivial: realised by swapping the variable's inputs)",
                      "layer 1, position last: best 0.97 (trivial: realised by swapping the variable's inputs)"]
    assert svg.count(">T</text>") == 2 and svg.count(escape(TRIVIAL_LEGEND) + " (T)</text>") == 1
    plain = heatmap_svg({**grid, "trivial": None}, {"layer": 1, "position": "first"})
    assert 'class="hatch"' not in plain and escape(TRIVIAL_LEGEND) not in plain


def test_html_shows_the_better_site(doc):
    doc["hypotheses"][0]["variables"]["left"]["better_site"] = {
        "layer": 2, "component": "block_output", "position": None, "iia": 0.991, "ci_low": 0.985}
    html = render_html(doc)
    assert html.count('<rect class="better"') == 1 and "better site than the named one" in html
    assert "best non-trivial site L2.block_output scores 0.991 (lower bound 0.985)" in html


def test_html_shows_preflight_and_shortfalls(doc):
    doc["hypotheses"][0]["dataset"]["shortfalls"] = {"train": [376, 400]}
    html = render_html(doc)
    assert html.count("preflight (the unmodified network, before scoring): task accuracy 0.996 on 256 sample "
                      "inputs; sites checked L0.block_output, L1.block_output, L2.block_output") == 2
    assert html.count("warning: fewer pairs than requested: train 376 of 400") == 1


def test_html_escapes_the_new_strings(doc):
    h = doc["hypotheses"][0]
    h["preflight"]["sites_checked"] = ["<script>x</script>"]
    h["dataset"]["shortfalls"] = {"<b>train</b>": [1, 2]}
    h["variables"]["left"]["better_site"] = {"layer": 2, "component": "<img src=x>", "iia": 0.99}
    html = render_html(doc)
    assert "<script>x" not in html and "<b>train" not in html and "<img" not in html
    assert "&lt;script&gt;x" in html and "&lt;b&gt;train" in html and "&lt;img src=x&gt;" in html


# ------------------------------------------------------------------ older documents
def test_a_document_without_the_new_fields_still_renders_without_them():
    old = stripped(fixture())
    assert shape.document_problems(old) == []
    text = format_summary(old, unicode=False)
    assert "do-nothing" not in text and "preflight" not in text and "trivial" not in text
    assert "L1.block_output" in row(text, "left ")
    html = render_html(old)
    assert "do nothing" not in html and "preflight" not in html and 'class="hatch"' not in html
    assert escape(TRIVIAL_LEGEND) not in html and "better site" not in html
    names = {p.get("name") for p in build_junit(old).iter("property")}
    assert not {n for n in names if n.startswith(("do_nothing", "preflight", "better_site", "site.trivial"))}


# ------------------------------------------------------------------ shape
@pytest.mark.parametrize("edit, said", [
    (lambda h: h["variables"]["left"]["iia"].__setitem__("do_nothing", {"value": 0.1, "correct": 9, "n": 5}),
     "variables.left.iia.do_nothing: expected 0 <= correct <= n"),
    (lambda h: h["variables"]["left"]["grid"].__setitem__("trivial", [[1]]),
     "variables.left.grid.trivial[0][0]: expected true/false or null, got int"),
    (lambda h: h["variables"]["left"]["site"].__setitem__("trivial", "yes"),
     "variables.left.site.trivial: expected true/false or null, got str"),
    (lambda h: h["variables"]["left"].__setitem__("better_site", {"layer": "2"}),
     "variables.left.better_site.layer: expected an integer or null, got str"),
    (lambda h: h.__setitem__("preflight", {"task_accuracy": "high"}),
     "preflight.task_accuracy: expected a number or null, got str"),
    (lambda h: h["dataset"].__setitem__("shortfalls", {"train": ["376", 400]}),
     "dataset.shortfalls.train[0]: expected an integer, got str"),
    (lambda h: h["multi"]["cause"]["left"].__setitem__("do_nothing", 0.5),
     "multi.cause.left.do_nothing: expected an object or null, got float"),
    (lambda h: h["expectations"][0].__setitem__("do_nothing", {"ci_low": "0"}),
     "expectations[0].do_nothing.ci_low: expected a number or null, got str"),
])
def test_the_shape_refuses_new_fields_of_the_wrong_type(doc, edit, said):
    bad = copy.deepcopy(doc)
    edit(bad["hypotheses"][0])
    problems = shape.document_problems(bad)
    assert problems and problems[0].startswith("document.hypotheses[0].") and said in problems[0], problems
