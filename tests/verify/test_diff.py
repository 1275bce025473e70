"""`abstract diff`: flipped verdicts, figures beyond their intervals, exit codes, Markdown.

Every document here is derived from tests/fixtures/results_example.json by editing counts and
verdicts, so the reader is exercised on a realistic document.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from abstract.cli import main
from abstract.verify.diff import DiffError, diff_documents, format_markdown

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "results_example.json"


@pytest.fixture
def old() -> dict:
    return json.loads(FIXTURE.read_text())


def _hyp(doc: dict, name: str) -> dict:
    return next(h for h in doc["hypotheses"] if h["name"] == name)


def _write(tmp_path: Path, name: str, obj: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return str(path)


def test_identical_documents_are_unchanged(old: dict) -> None:
    diff = diff_documents([old], [copy.deepcopy(old)])
    assert diff.unchanged and not diff.regression


def test_pass_to_fail_is_a_regression_and_fail_to_pass_an_improvement(old: dict) -> None:
    new = copy.deepcopy(old)
    _hyp(new, "both_equalities")["expectations"][0]["passed"] = False
    _hyp(new, "first_identity")["expectations"][0]["passed"] = True
    diff = diff_documents([old], [new])
    assert diff.regression
    assert diff.regressions == ["specs/hierarchical_equality.causal: both_equalities: expect iia(left) >= 0.9: "
                                "pass -> fail"]
    assert diff.improvements == ["specs/hierarchical_equality.causal: first_identity: expect iia(w) >= 0.9: "
                                 "fail -> pass"]
    # the reverse run is the mirror image
    back = diff_documents([new], [old])
    assert len(back.regressions) == 1 and "first_identity" in back.regressions[0]


def test_check_verdict_flip_counts(old: dict) -> None:
    new = copy.deepcopy(old)
    i = next(i for i, c in enumerate(new["checks"]) if c["verdict"] == "proved")
    new["checks"][i]["verdict"] = "unknown"
    diff = diff_documents([old], [new])
    assert diff.regression and diff.regressions[0].startswith("specs/hierarchical_equality.causal: check ")


def test_a_figure_moves_only_beyond_its_interval(old: dict) -> None:
    new = copy.deepcopy(old)
    iia = _hyp(new, "both_equalities")["variables"]["left"]["iia"]
    iia["correct"] = 1940  # 0.970 vs 0.974 at n=2000: intervals overlap: noise, not a move
    assert diff_documents([old], [new]).moved == []
    iia["correct"] = 1800  # 0.900: far below [0.966, 0.980]
    moved = diff_documents([old], [new]).moved
    assert [m.where for m in moved] == ["both_equalities: iia(left)"]
    assert moved[0].direction == "down" and moved[0].old[3] == 2000
    assert moved[0].new[2] < moved[0].old[1]  # the new upper bound is below the old lower bound


def test_controls_do_nothing_and_multi_figures_are_compared(old: dict) -> None:
    new = copy.deepcopy(old)
    h = _hyp(new, "both_equalities")
    h["variables"]["right"]["controls"]["random_rotation"]["correct"] = 1900
    h["variables"]["right"]["iia"]["do_nothing"]["correct"] = 400
    h["multi"]["isolate"]["left,right"]["correct"] = 1000
    h["multi"]["cause"]["left"]["do_nothing"]["correct"] = 300
    where = {m.where: m.direction for m in diff_documents([old], [new]).moved}
    assert where == {"both_equalities: control(random_rotation) iia(right)": "up",
                     "both_equalities: iia(right) do-nothing": "up",
                     "both_equalities: isolate(left, right)": "down",
                     "both_equalities: cause(left) do-nothing": "up"}


def test_added_and_removed_hypotheses_and_expectations(old: dict) -> None:
    new = copy.deepcopy(old)
    gone = new["hypotheses"].pop(1)
    extra = copy.deepcopy(gone)
    extra["name"] = "second_identity"
    new["hypotheses"].append(extra)
    _hyp(new, "both_equalities")["expectations"].append(
        dict(_hyp(new, "both_equalities")["expectations"][0], text="iia(left) >= 0.95"))
    diff = diff_documents([old], [new])
    assert "specs/hierarchical_equality.causal: hypothesis first_identity" in diff.removed
    assert "specs/hierarchical_equality.causal: hypothesis second_identity" in diff.added
    assert "specs/hierarchical_equality.causal: both_equalities: expect iia(left) >= 0.95 (pass)" in diff.added
    assert "specs/hierarchical_equality.causal: first_identity: expect iia(w) >= 0.9 (was fail)" in diff.removed
    assert not diff.regression


def test_a_new_error_is_a_regression_and_a_fixed_one_is_listed(old: dict) -> None:
    new = copy.deepcopy(old)
    new["errors"] = [{"message": "builder crashed\nTraceback ...", "location": None, "hypothesis": "first_identity"}]
    diff = diff_documents([old], [new])
    assert diff.regression
    assert diff.new_errors == ["specs/hierarchical_equality.causal: error: hypothesis first_identity: builder crashed"]
    assert diff_documents([new], [old]).fixed_errors == diff.new_errors


def test_different_specs_are_refused_unless_allowed(old: dict) -> None:
    new = copy.deepcopy(old)
    new["spec"]["sha256"] = "0" * 64
    with pytest.raises(DiffError, match="sha256 differs"):
        diff_documents([old], [new])
    assert diff_documents([old], [new], allow_spec_change=True).spec_changes
    new["spec"]["path"] = "specs/other.causal"
    with pytest.raises(DiffError, match="spec path differs|only in"):
        diff_documents([old], [new])


def test_results_sets_are_matched_by_spec_path(old: dict) -> None:
    other = copy.deepcopy(old)
    other["spec"]["path"] = "specs/other.causal"
    changed = copy.deepcopy(other)
    _hyp(changed, "both_equalities")["expectations"][1]["passed"] = False
    diff = diff_documents([old, other], [changed, copy.deepcopy(old)])  # order does not matter
    assert diff.regressions == ["specs/other.causal: both_equalities: expect iia(right) >= 0.9: pass -> fail"]
    with pytest.raises(DiffError, match="specs/other.causal is only in OLD"):
        diff_documents([old, other], [old])
    allowed = diff_documents([old, other], [old], allow_spec_change=True)
    assert allowed.removed == ["spec specs/other.causal"] and not allowed.regression


def test_markdown_summary(old: dict) -> None:
    new = copy.deepcopy(old)
    _hyp(new, "both_equalities")["expectations"][2]["passed"] = False
    _hyp(new, "both_equalities")["multi"]["isolate"]["left,right"]["correct"] = 1000
    text = format_markdown(diff_documents([old], [new]), "main.json", "pr.json")
    assert text.startswith("## ❌ abstract diff")
    assert "| `specs/hierarchical_equality.causal` | both_equalities: isolate(left, right) | 0.942" in text
    assert "### Regressions" in text and "isolate(left, right) &gt;= 0.8" not in text
    assert "expect isolate(left, right) >= 0.8: pass → fail" in text


# ------------------------------------------------------------------ the command
def test_cli_exit_codes_and_markdown(old: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path, "old.json", old)
    assert main(["diff", a, a]) == 0
    assert "UNCHANGED" in capsys.readouterr().out
    new = copy.deepcopy(old)
    _hyp(new, "both_equalities")["expectations"][0]["passed"] = False
    b = _write(tmp_path, "new.json", new)
    md = tmp_path / "summary" / "diff.md"
    assert main(["diff", a, b, "--markdown", str(md)]) == 1
    out = capsys.readouterr().out
    assert "Regressions (1):" in out and out.rstrip().splitlines()[-1].startswith("REGRESSION")
    assert "pass → fail" in md.read_text()
    assert main(["diff", b, a]) == 0  # the improvement direction is not a regression
    assert "Improvements (1):" in capsys.readouterr().out


def test_cli_results_set_document(old: dict, tmp_path: Path) -> None:
    other = copy.deepcopy(old)
    other["spec"]["path"] = "specs/other.causal"
    a = _write(tmp_path, "old.json", {"schema": "abstract.results-set/1", "results": [old, other]})
    b = _write(tmp_path, "new.json", {"schema": "abstract.results-set/1", "results": [other, old]})
    assert main(["diff", a, b]) == 0


@pytest.mark.parametrize("content, why", [
    ("{not json", "cannot read results"),
    (json.dumps({"schema": "abstract.checks/1"}), "not an abstract results document"),
    (json.dumps({"schema": "abstract.results/1", "spec": {"path": 3}}), "malformed"),
])
def test_cli_refuses_unusable_input(old: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    content: str, why: str) -> None:
    good = _write(tmp_path, "old.json", old)
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main(["diff", good, str(bad)]) == 2
    assert why in capsys.readouterr().err
    assert main(["diff", str(tmp_path / "missing.json"), good]) == 2


def test_cli_refuses_another_spec(old: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = copy.deepcopy(old)
    new["spec"]["sha256"] = "f" * 64
    a, b = _write(tmp_path, "old.json", old), _write(tmp_path, "new.json", new)
    assert main(["diff", a, b]) == 2
    err = capsys.readouterr().err
    assert "sha256 differs" in err and "--allow-spec-change" in err
    assert main(["diff", a, b, "--allow-spec-change"]) == 0
    assert "Spec changes (allowed) (1):" in capsys.readouterr().out
