"""Small things a daily user notices (issue 12 item 8): a counterexample printed once, in
`check` and in `verify`; JUnit test cases carrying their real times."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from abstract.cli import main
from abstract.verify.junit import build_junit
from abstract.verify.summary import check_reason

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "results_example.json"

ASSERT_SPEC = """
model Eq {
    input a, b : 0..3
    output label = a == b
    assert label == (a == 1)
}
"""

KINDS_SPEC = """
model M {
    input a, b : 0..3
    x : 0..3 = a + b
    y : 0..3 = a // b
    output label = x == y
}
model N {
    input a, b : 0..3
    output label = a == 1
}
equivalent M, N
"""


@pytest.mark.parametrize("command", ["check", "verify"])
def test_a_failing_asserts_counterexample_is_printed_once(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          command: str) -> None:
    spec = tmp_path / "cex.causal"
    spec.write_text(ASSERT_SPEC)
    assert main([command, str(spec)]) == 1
    out = capsys.readouterr().out
    shown = [line for line in out.splitlines() if re.search(r"\bb ?= ?\d", line)]
    assert len(shown) == 1, out  # the one failing check's input, once
    assert re.search(r"counterexample:? a ?= ?\d, b ?= ?\d, label ?= ?(true|false)", shown[0]), out


def test_check_keeps_what_a_message_says_beyond_the_counterexample(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "kinds.causal"
    spec.write_text(KINDS_SPEC)
    assert main(["check", str(spec)]) == 1
    out = capsys.readouterr().out
    assert "y = a // b is undefined (division by zero)\n" in out
    assert "x = a + b is " in out and ", outside 0..3" in out
    assert re.search(r"\n +M (is undefined|gives label=\w+) but N ", out), out
    assert out.count("counterexample: ") == 3


def test_check_reason_drops_only_the_restated_counterexample() -> None:
    cex = {"a": 1, "b": 2, "label": False}
    assert check_reason({"message": "the assert is false when a=1, b=2, label=false", "counterexample": cex}) \
        == "the assert is false"
    assert check_reason({"message": "on input a=0, b=0, M gives o=1 but N gives o=2",
                         "counterexample": {"a": 0, "b": 0, "M.o": 1, "N.o": 2}}) == "M gives o=1 but N gives o=2"
    assert check_reason({"message": "x = a + b is 4, outside 0..3", "counterexample": {"a": 1, "b": 3, "x": 4}}) \
        == "x = a + b is 4, outside 0..3"
    assert check_reason({"message": "z3 gave up", "counterexample": None}) == "z3 gave up"


def test_junit_cases_carry_their_hypothesis_time() -> None:
    doc = json.loads(FIXTURE.read_text())
    root = build_junit(doc)
    times: dict[str, list[float]] = {}
    for case in root.iter("testcase"):
        times.setdefault(case.get("classname", ""), []).append(float(case.get("time", "nan")))
    # both_equalities took 41.7 s for 3 expectations, first_identity 18.2 s for 1
    assert times["hierarchical_equality.both_equalities"] == [13.9, 13.9, 13.9]
    assert times["hierarchical_equality.first_identity"] == [18.2]
    assert all(t == 0 for k, ts in times.items() if ".checks." in k for t in ts)
    expectations = sum(t for k, ts in times.items() if ".checks." not in k for t in ts)
    assert expectations == pytest.approx(41.7 + 18.2, abs=0.01)
    assert float(root.find("testsuite").get("time")) == 63.4  # type: ignore[union-attr]


@pytest.mark.parametrize("seconds", [None, "slow", -3, float("nan"), True])
def test_junit_time_without_a_usable_hypothesis_time_is_zero(seconds: object) -> None:
    doc = json.loads(FIXTURE.read_text())
    for h in doc["hypotheses"]:
        h["seconds"] = seconds
    xml = ET.tostring(build_junit(doc), encoding="unicode")
    assert {float(c.get("time", "nan")) for c in ET.fromstring(xml).iter("testcase")} == {0.0}
