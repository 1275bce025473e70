"""JUnit XML: parses, counts right, one case per check and expectation, failures carry the reason."""
from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from abstract.verify.junit import build_junit, junit_xml, write_junit

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "results_example.json"


@pytest.fixture
def doc():
    return json.loads(FIXTURE.read_text())


def test_counts_match_cases(doc, tmp_path):
    path = write_junit([doc], tmp_path / "out" / "junit.xml")
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    n_exp = sum(len(h["expectations"]) for h in doc["hypotheses"])
    assert len(cases) == len(doc["checks"]) + n_exp == int(suite.get("tests")) == int(root.get("tests"))
    failures = [c for c in cases if c.find("failure") is not None]
    assert int(suite.get("failures")) == len(failures) == 2
    assert suite.get("errors") == "0" and suite.get("name") == "hierarchical_equality"


def test_expectation_failure_has_reason_and_properties(doc):
    root = build_junit(doc)
    case = next(c for c in root.iter("testcase") if c.get("name") == "iia(w) >= 0.9")
    assert case.get("classname") == "hierarchical_equality.first_identity"
    assert case.get("line") == "79"
    fail = case.find("failure")
    assert "lower bound 0.490 is not >= 0.9" in fail.get("message")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["n"] == "2000" and props["ci"] == "[0.4901, 0.5339]"
    assert props["control.random_network"] == "0.5010"


def test_passing_expectation_lists_controls(doc):
    root = build_junit(doc)
    case = next(c for c in root.iter("testcase") if c.get("name") == "iia(left) >= 0.9")
    assert case.find("failure") is None
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert {"control.random_network", "control.random_rotation", "value", "ci"} <= set(props)


def test_counterexample_shows_concrete_input(doc):
    root = build_junit(doc)
    case = next(c for c in root.iter("testcase") if c.get("name") == "assert label == (a == b)")
    fail = case.find("failure")
    assert fail.get("type") == "counterexample"
    assert "a = 0, b = 0, c = 0, d = 1" in fail.get("message") and "label = false" in fail.get("message")


def test_errors_and_several_specs(doc):
    other = copy.deepcopy(doc)
    other["spec"]["path"] = "specs/other.causal"
    other["hypotheses"] = []
    other["errors"] = [{"hypothesis": "h", "message": "hypothesis h: RuntimeError: no GPU", "location": "x.causal:3:1"}]
    root = ET.fromstring(junit_xml([doc, other]).split("\n", 1)[1])
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["hierarchical_equality", "other"]
    assert suites[1].get("errors") == "1" and root.get("errors") == "1"
    assert int(root.get("tests")) == sum(int(s.get("tests")) for s in suites)
    err = suites[1].find("testcase/error")
    assert "no GPU" in err.get("message")


def test_unknown_verdict_is_a_failure():
    doc = {"spec": {"path": "a.causal"}, "checks": [{"model": "M", "name": "x is total", "kind": "total",
                                                      "verdict": "unknown", "message": "rlimit", "counterexample": None,
                                                      "location": None}]}
    root = build_junit(doc)
    assert root.get("failures") == "1"
    assert root.find(".//failure").get("type") == "unknown"
