"""One colour scale per report page, chance and do-nothing marked on it, and Wilson intervals in
the several-variables table."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from abstract.report import render_html
from abstract.report.html import chance_level, domain_size, page_scale
from abstract.report.svg import document_scale, heatmap_svg, iia_color
from abstract.verify.stats import fmt_ci, wilson_interval

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "results_example.json"


@pytest.fixture
def doc():
    return json.loads(FIXTURE.read_text())


def _legend_fills(svg: str) -> list[str]:
    return re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="16" height="12" fill="(#[0-9a-f]{6})"/>', svg)


def test_document_scale_is_min_max_on_a_005_grid() -> None:
    assert document_scale([0.506, 0.9965, None, float("nan")]) == (0.5, 1.0)
    assert document_scale([0.62, 0.81]) == (0.6, 0.85)
    assert document_scale([0.9]) == (0.85, 0.9)  # never zero-wide
    assert document_scale([0.0]) == (0.0, 0.05)
    assert document_scale([]) == (0.5, 1.0)


def test_every_heatmap_of_a_page_shares_one_scale(doc) -> None:
    low, high = page_scale(doc)
    assert (low, high) == (0.5, 1.0)  # cells range 0.506 .. 0.9965
    html = render_html(doc)
    svgs = re.findall(r'<svg class="heatmap".*?</svg>', html)
    assert len(svgs) == 3
    legends = {tuple(_legend_fills(s)) for s in svgs}
    assert len(legends) == 1 and len(next(iter(legends))) == 10  # the same ten swatches under every heatmap
    assert "one scale for every heatmap in this report, 0.5–1." in html


def test_a_colour_means_the_same_figure_in_every_heatmap(doc) -> None:
    doc = copy.deepcopy(doc)
    # make one grid low: the other grids' colours must change with the page's scale, and agree with it
    doc["hypotheses"][1]["variables"]["w"]["grid"]["iia_max"] = [[0.9965], [0.21], [0.2]]
    low, high = page_scale(doc)
    assert (low, high) == (0.2, 1.0)
    html = render_html(doc)
    fill = iia_color(0.974, low, high)[0]
    left = re.findall(r'<svg class="heatmap".*?</svg>', html)[0]
    assert f'fill="{fill}"' in left
    assert fill != iia_color(0.974)[0]


def test_chance_and_do_nothing_are_marked_on_the_legend(doc) -> None:
    html = render_html(doc)
    assert chance_level(doc, doc["hypotheses"][0]) == 0.5
    svg = re.findall(r'<svg class="heatmap".*?</svg>', html)[0]
    assert svg.count('class="level"') == 2
    assert "chance: 0.50" in svg
    assert "do nothing: 0.00 (below the scale)" in svg  # 0.0035, clamped to the scale's low end


def test_heatmap_levels_sit_where_their_values_are() -> None:
    svg = heatmap_svg({"layers": [0], "positions": ["x"], "iia_max": [[0.7]]}, scale=(0.0, 1.0),
                      levels={"chance": 0.25, "do nothing": None, "junk": float("nan")})
    assert svg.count('class="level"') == 1
    x = float(re.search(r'<g class="level"><title>[^<]*</title><line x1="([\d.]+)"', svg).group(1))
    assert x == pytest.approx(56 + 0.25 * 160)


def test_domain_sizes_and_chance() -> None:
    assert domain_size("bool") == 2
    assert domain_size("0..9") == 10
    assert domain_size("{Alice, Bob, Carol, Dave}") == 4
    assert domain_size("str") is None and domain_size("5..1") is None and domain_size("{}") is None
    two_outputs = {"models": {"M": {"graph": {"nodes": [{"id": "a", "kind": "output", "domain": "bool"},
                                                        {"id": "b", "kind": "output", "domain": "bool"}]}}}}
    assert chance_level(two_outputs, {"model": "M"}) is None  # not one label: no single chance figure
    assert chance_level({"models": []}, {"model": ["x"]}) is None


def test_several_variables_table_has_wilson_intervals(doc) -> None:
    html = render_html(doc)
    table = html[html.index("Several variables at once"):]
    table = table[:table.index("</table>")]
    assert "95% CI" in table
    assert fmt_ci(*wilson_interval(1927, 2000)) in table
    assert fmt_ci(*wilson_interval(1883, 2000)) in table


def test_several_variables_without_counts_show_a_dash(doc) -> None:
    doc = copy.deepcopy(doc)
    doc["hypotheses"][0]["multi"] = {"cause": {"left": 0.9}, "isolate": {"left,right": {"value": 0.5, "correct": 9,
                                                                                      "n": 3}}}
    html = render_html(doc)
    table = html[html.index("Several variables at once"):]
    assert "—" in table[:table.index("</table>")]
