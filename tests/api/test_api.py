"""The Python API (abstract/api.py): a light import, typed views that agree with the results
document, the CLI's options and errors, and displays that are the report's sections."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import abstract
from abstract.api import Results, _scoped
from abstract.report.style import CSS

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "engine" / "fixtures"

SPEC = """
model Pair {
    input a, b : 0..2
    output y = 3 * a + b
}
network net = torch "nets.py:good"
network broken = torch "nets.py:crash"
hypothesis right : Pair ~ net {
    align a to layer 0 via neurons(0, 1, 2)
    train samples 20, seeds 1
    data test 40, dev 20
    expect iia(a) >= 0.9
}
hypothesis wrong : Pair ~ net {
    align a to layer 0 via neurons(3, 4, 5)
    train samples 20, seeds 1
    data test 40, dev 20
    expect iia(a) >= 0.9
}
hypothesis crashes : Pair ~ broken {
    align a to layer 0 via neurons(0, 1, 2)
    train samples 20, seeds 1
    data test 40, dev 20
    expect iia(a) >= 0.9
}
"""

NETS = f"""
import sys
sys.path.insert(0, {str(FIXTURES)!r})
from hand_nets import CopyTwo


def good():
    return CopyTwo(n=3, rotate=False)


def crash():
    raise RuntimeError("no weights here")
"""


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("api")
    (d / "nets.py").write_text(NETS)
    (d / "pair.causal").write_text(SPEC)
    return d / "pair.causal"


@pytest.fixture(scope="module")
def results(spec_path) -> Results:
    return abstract.load(spec_path).verify(device="cpu", cache=False, progress=False)


def test_import_abstract_is_light():
    code = ("import sys, abstract; "
            "heavy = [m for m in ('torch', 'z3', 'lark', 'abstract.api') if m in sys.modules]; "
            "assert not heavy, heavy; assert callable(abstract.load); assert 'torch' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_loading_and_checking_stay_torch_free(spec_path):
    code = (f"import sys, abstract; s = abstract.load({str(spec_path)!r}); c = s.check(); "
            "assert c.ok and s.hypotheses == ['right', 'wrong', 'crashes']; "
            "assert 'torch' not in sys.modules, 'loading or checking imported torch'")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError):
        abstract.no_such_thing  # noqa: B018
    assert "load" in dir(abstract)


def test_a_bad_spec_raises_a_located_spec_error(tmp_path):
    bad = tmp_path / "bad.causal"
    bad.write_text("model M {\n    input a : 0..2\n    output y = a +\n}\n")
    with pytest.raises(abstract.SpecError) as info:
        abstract.load(bad)
    rendered = info.value.render()
    assert "bad.causal:4:1" in rendered and "^" in rendered, rendered


def test_check_finds_a_counterexample_and_bounds_are_validated(tmp_path):
    f = tmp_path / "m.causal"
    f.write_text("model M {\n    input a : 0..2\n    output y : 0..1 = a\n}\n")
    checks = abstract.load(f).check(timeout=30)
    assert not checks.ok and checks.failed
    failed = checks.failed[0]
    assert failed.verdict == "counterexample" and failed.counterexample and failed.location
    assert "FAIL" in str(checks) and "counterexample" in checks._repr_html_()
    with pytest.raises(ValueError):
        abstract.load(f).check(rlimit=0)
    with pytest.raises(ValueError):
        abstract.load(f).check(timeout=-1)


def test_typed_results_agree_with_the_document(results):
    doc = results.to_json()
    assert list(results) == ["right", "wrong"] and len(results) == 2
    assert results.exit_code == 2 and not results.passed  # `crashes` errored
    assert [e["hypothesis"] for e in results.errors] == ["crashes"]
    assert "no weights here" in results.errors[0]["message"]
    with pytest.raises(KeyError, match="errored"):
        results["crashes"]
    with pytest.raises(KeyError, match="no result"):
        results["nope"]
    for h in results.hypotheses:
        entry = next(x for x in doc["hypotheses"] if x["name"] == h.name)
        assert h.passed == all(e["passed"] for e in entry["expectations"])
        v = h.variables["a"]
        assert (v.correct, v.n) == (entry["variables"]["a"]["iia"]["correct"], entry["variables"]["a"]["iia"]["n"])
        assert v.do_nothing == entry["variables"]["a"]["iia"]["do_nothing"]["value"]
        lo, hi = v.interval
        assert lo is not None and hi is not None and lo <= v.iia <= hi
        [e] = h.expectations
        assert e.interval == (entry["expectations"][0]["ci_low"], entry["expectations"][0]["ci_high"])
    assert results["right"].passed and results["right"].variables["a"].iia == 1.0
    assert not results["wrong"].passed and results["wrong"].variables["a"].iia < 0.5
    assert [c.to_json() for c in results.checks] == doc["checks"]


def test_to_json_is_a_copy(results):
    doc = results.to_json()
    doc["hypotheses"].clear()
    assert len(results) == 2


def test_save_and_reload(results, tmp_path):
    results.save_json(tmp_path / "r.json")
    again = abstract.load_results(tmp_path / "r.json")
    assert again.to_json() == json.loads(json.dumps(results.to_json(), default=str))
    page = results.save_html(tmp_path / "sub" / "r.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and 'id="h-right"' in page


def test_load_results_refuses_other_documents(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"schema": "abstract.checks/1"}))
    with pytest.raises(ValueError, match="not an abstract.results/1"):
        abstract.load_results(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({"schema": "abstract.results/1", "hypotheses": 3}))
    with pytest.raises(ValueError, match="malformed"):
        abstract.load_results(tmp_path / "y.json")


def test_displays_are_the_reports_sections(results):
    from abstract.report.html import render_hypothesis
    html = results._repr_html_()
    for section in ("Alignment report", 'id="h-right"', 'id="h-wrong"', "Symbolic checks", "Causal models",
                    'id="L7"', "no weights here"):
        assert section in html, section
    card = results["wrong"]._repr_html_()
    assert render_hypothesis(results["wrong"].raw, results.spec_path) in card
    assert card.startswith('<div class="abstract-report"><style>')
    assert "<html" not in html and "<body" not in html


def test_the_stylesheet_is_scoped_to_the_output():
    scoped = _scoped(CSS)
    for rule in scoped.split("}"):
        head = rule.split("{")[0].strip()
        if head and ":" not in head.split(".abstract-report")[0]:
            for selector in head.split(","):
                assert selector.strip().startswith(".abstract-report"), selector
    assert "@media" not in scoped and "body" not in scoped.split("{")[0]


def test_verify_options_match_the_cli(spec_path, tmp_path):
    spec = abstract.load(spec_path)
    with pytest.raises(ValueError, match="device"):
        spec.verify(device="nonsense", progress=False)
    with pytest.raises(abstract.SpecError, match="no hypothesis named"):
        spec.verify("missing", device="cpu", progress=False, cache=False)
    first = spec.verify("right", device="cpu", cache=tmp_path / "cache", progress=False, seed=3)
    again = spec.verify(["right"], device="cpu", cache=tmp_path / "cache", progress=False, seed=3)
    assert list(first) == ["right"] and not first.cached and again.cached
    assert first.to_json()["run"]["seed"] == 3 and not first.errors


def test_progress_false_prints_nothing(spec_path, capsys):
    abstract.load(spec_path).verify("right", device="cpu", cache=False, progress=False)
    captured = capsys.readouterr()
    assert "[abstract]" not in captured.err


def test_progress_true_prints_the_steps(spec_path, capsys):
    abstract.load(spec_path).verify("right", device="cpu", cache=False, progress=True)
    assert "[abstract] aligning hypothesis right" in capsys.readouterr().err
