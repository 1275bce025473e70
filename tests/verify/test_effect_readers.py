"""Effect sizes as the readers show them: the console's compact table and the report's table."""
from __future__ import annotations

import json
from pathlib import Path

from abstract.report import render_html
from abstract.verify.summary import format_summary

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "results_example.json"


def with_effects() -> dict:
    doc = json.loads(FIXTURE.read_text())
    h = doc["hypotheses"][0]
    mean = {"value": 2.5, "ci_low": 2.1, "ci_high": 2.9, "n": 40}
    nothing = {"value": 0.125, "ci_low": -0.1, "ci_high": 0.35, "n": 40}
    h["variables"]["left"]["effects"] = {"scored": "logprob_sum", "logit_diff": {**mean, "do_nothing": nothing},
                                         "prob": {"value": 0.75, "ci_low": 0.7, "ci_high": 0.8, "n": 40}}
    h["variables"]["left"].setdefault("controls", {})["noise"] = {
        "iia": 0.1, "n": 40, "correct": 4, "effects": {"scored": "logprob_sum",
                                                       "logit_diff": {**mean, "value": -1.25}}}
    return doc


def test_console_shows_a_compact_effect_table_beside_doing_nothing_and_controls():
    text = format_summary(with_effects(), unicode=False)
    head = next(line for line in text.splitlines() if line.strip().startswith("effect (summed log-probs)"))
    assert "do-nothing" in head and "noise" in head
    row = next(line for line in text.splitlines() if line.strip().startswith("logit_diff(left)"))
    assert "2.500" in row and "[2.100, 2.900]" in row and "0.125" in row and "-1.250" in row
    assert any(line.strip().startswith("prob(left)") for line in text.splitlines())


def test_report_has_an_effect_table_per_variable():
    page = render_html(with_effects())
    table = page[page.index('<table class="effects"'):]
    table = table[:table.index("</table>")]
    assert "summed log-probabilities" in table and "control: noise" in table and "do nothing" in table
    assert "2.500" in table and "[2.100, 2.900]" in table and "-1.250" in table


def test_documents_without_effects_show_no_effect_table():
    doc = json.loads(FIXTURE.read_text())
    assert '<table class="effects"' not in render_html(doc)
    assert not any(line.strip().startswith("effect") for line in format_summary(doc).splitlines())
