"""A jointly trained group (``train ... joint true``) shows up in every output a person or CI
reads: the HTML report, the console summary and the JUnit properties."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from abstract.report import render_html
from abstract.verify.junit import build_junit
from abstract.verify.summary import format_summary

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "results_example.json"


@pytest.fixture
def joint_doc():
    doc = json.loads(FIXTURE.read_text())
    h = doc["hypotheses"][0]
    for var, block in (("left", [0, 8]), ("right", [8, 16])):
        h["variables"][var]["joint"] = {"group": ["left", "right"], "block": block, "training": "multi_source"}
        h["variables"][var]["grid"]["training"] = "separate"
    h["multi"]["joint"] = {"left,right": {"value": 0.912, "correct": 1824, "n": 2000, "mean": 0.9,
                                          "site": {"layer": 1, "component": "block_output", "position": None}}}
    return doc


def test_html_shows_the_joint_iia_and_each_block(joint_doc):
    html = render_html(joint_doc)
    assert "joint(left, right)" in html and "1824/2000" in html and "0.912" in html
    assert "trained jointly" in html and "columns 0..7 are left" in html and "columns 8..15 are right" in html
    assert "grid comes from separate per-variable training" in html


def test_summary_lists_the_joint_row(joint_doc):
    text = format_summary(joint_doc, unicode=False)
    row = next(line for line in text.splitlines() if "joint(left, right)" in line)
    assert "L1" in row and "0.912" in row and "2000" in row


def test_junit_carries_the_group_and_block(joint_doc):
    root = build_junit(joint_doc)
    props = {p.get("name"): p.get("value") for case in root.iter("testcase") if "iia(left)" in case.get("name")
             for p in case.iter("property")}
    assert props["joint.group"] == "left,right" and props["joint.block"] == "[0, 8]"
    assert props["joint.iia_all_interchanged"] == "0.9120"


def test_junit_site_keeps_position_zero():
    doc = json.loads(FIXTURE.read_text())
    doc = copy.deepcopy(doc)
    doc["hypotheses"][0]["variables"]["left"]["site"]["position"] = 0
    root = build_junit(doc)
    sites = [p.get("value") for case in root.iter("testcase") if "iia(left)" in case.get("name")
             for p in case.iter("property") if p.get("name") == "site"]
    assert sites == ["layer 1 block_output 0"]
