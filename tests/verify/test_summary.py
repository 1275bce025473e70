"""The console summary: verdicts, controls and reasons, aligned and within the width asked for."""
from __future__ import annotations

import json
from pathlib import Path

from abstract.verify.summary import format_summary, table

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "results_example.json"


def test_summary_of_fixture():
    text = format_summary(json.loads(FIXTURE.read_text()), unicode=True)
    assert "✓ PASS  hypothesis both_equalities" in text
    assert "✗ FAIL  hypothesis first_identity" in text
    assert "untrained" in text and "0.503" in text and "rand.rot" in text  # controls beside IIA
    assert "counterexample a = 0, b = 0, c = 0, d = 1" in text
    assert "lower bound 0.490 is not >= 0.9" in " ".join(text.split())  # the reason may wrap
    assert text.splitlines()[-1] == "FAIL: 1 check(s) not proved, 1 of 4 expectation(s) not met"


def test_summary_width_and_ascii():
    text = format_summary(json.loads(FIXTURE.read_text()), unicode=False, width=60)
    assert all(len(line) <= 60 for line in text.splitlines())
    text.encode("ascii")


def test_summary_pass_and_errors():
    doc = {"spec": {"path": "x.causal"}, "run": {}, "checks": [], "hypotheses": [], "errors": []}
    assert format_summary(doc).splitlines()[-1].startswith("PASS")
    doc["errors"] = [{"message": "boom", "location": None}]
    assert format_summary(doc).splitlines()[-1].startswith("ERROR")


def test_table_aligns_columns():
    lines = table([["a", "1"], ["long", "22"]], indent="", right=(1,))
    assert lines == ["a      1", "long  22"]
