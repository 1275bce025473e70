"""Readers of a results document under hostile or partial input.

* JUnit stays well-formed XML whatever the strings hold (control characters, ``]]>``,
  lone surrogates, U+FFFF): parsed back with xml.etree.
* Every user-controlled string in the HTML report is escaped, dict keys included
  (counterexample variables, variable and model names, intervention options ...).
* Every field docs/results-schema.md marks optional can be missing: HTML, JUnit and the
  console summary still render; `abstract report` refuses malformed documents with exit 2
  and a path to the bad field, never a traceback.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Iterator

import pytest

from abstract.cli import main
from abstract.report import render_html
from abstract.verify import shape
from abstract.verify.junit import build_junit, junit_xml
from abstract.verify.summary import format_summary

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "results_example.json"
SCHEMA_DOC = ROOT / "docs" / "results-schema.md"


def rich_document() -> dict[str, Any]:
    """The shipped example plus every optional part it lacks (joint training, errors, warnings,
    a better site and a shortfall)."""
    doc = json.loads(FIXTURE.read_text())
    h = doc["hypotheses"][0]
    for var, block in (("left", [0, 8]), ("right", [8, 16])):
        h["variables"][var]["joint"] = {"group": ["left", "right"], "block": block, "training": "multi_source"}
        h["variables"][var]["grid"]["training"] = "separate"
        h["variables"][var]["intervention"]["effective_dim"] = 8
    h["multi"]["joint"] = {"left,right": {"value": 0.912, "correct": 1824, "n": 2000, "mean": 0.9, "best_seed": 0,
                                          "selected_by": "dev",
                                          "seeds": [{"seed": 0, "iia": 0.912, "correct": 1824, "n": 2000,
                                                     "dev_iia": 0.9}],
                                          "site": {"layer": 1, "component": "block_output", "position": None}}}
    h["dataset"]["joint"] = {"left,right": {"train": 100, "dev": 50, "test": 50, "informativeness": 0.5,
                                            "held_out": True}}
    h["multi"]["joint"]["left,right"]["do_nothing"] = {"value": 0.0, "correct": 0, "n": 2000}
    h["dataset"]["shortfalls"] = {"test": [1880, 2000]}
    h["variables"]["right"]["better_site"] = {"layer": 2, "component": "block_output", "position": None,
                                              "iia": 0.99, "ci_low": 0.985}
    h["train"]["joint"] = True
    mean = {"value": 2.5, "ci_low": 2.1, "ci_high": 2.9, "n": 40}
    h["variables"]["left"]["effects"] = {"scored": "logit", "logit_diff": {**mean, "do_nothing": dict(mean)},
                                         "prob": {**mean, "value": 0.8, "ci_low": 0.7, "ci_high": 0.9},
                                         "kl": dict(mean)}
    h["variables"]["left"].setdefault("controls", {})["noise"] = {
        "iia": 0.1, "n": 40, "correct": 4, "effects": {"scored": "logit", "logit_diff": dict(mean)}}
    h["expectations"].append({"text": "logit_diff(left) >= 2.0", "passed": True, "metric": "logit_diff",
                              "args": ["left"], "op": ">=", "threshold": 2.0, **mean, "confidence": 0.95,
                              "reason": "logit_diff(left) 2.500 [2.100, 2.900], n=40: lower bound 2.100 >= 2",
                              "do_nothing": dict(mean)})
    h["timing"] = {"total": 1.5}
    doc["errors"] = [{"message": "hypothesis x: RuntimeError: boom", "location": "specs/x.causal:3:1",
                      "hypothesis": "x", "traceback": "Traceback ..."}]
    doc["warnings"] = ["hypothesis x: results cache: cannot write /x: Permission denied"]
    assert shape.document_problems(doc) == []
    return doc


def render_all(doc: dict[str, Any]) -> None:
    """Every reader of a results document, as `abstract verify`/`report` run them."""
    render_html(doc)
    ET.fromstring(junit_xml(doc).split("\n", 1)[1])
    format_summary(doc)
    format_summary(doc, judge=False, unicode=False)


# ------------------------------------------------------------------ walking a document with its shape
def fields(value: Any, sh: shape.Shape, path: str = "") -> Iterator[tuple[str, dict, str, bool]]:
    """(normalised path, the object holding the field, field name, required) for every field
    present in `value`, following the shape (lists -> [], maps -> *)."""
    if isinstance(sh, shape.OneOf):  # the option of the value's JSON kind (null: none to walk)
        kind = shape.ListOf if isinstance(value, list) else shape.Obj if isinstance(value, dict) else None
        accepted = (kind, shape.MapOf) if kind is shape.Obj else kind
        option = next((o for o in sh.options if kind and isinstance(o, accepted)), None)
        if option is not None:
            yield from fields(value, option, path)
        return
    if isinstance(sh, shape.ListOf) and isinstance(value, list):
        for item in value:
            yield from fields(item, sh.item, f"{path}[]")
    elif isinstance(sh, shape.MapOf) and isinstance(value, dict):
        for item in value.values():
            yield from fields(item, sh.value, f"{path}.*")
    elif isinstance(sh, shape.Obj) and isinstance(value, dict):
        for name, item in value.items():
            here = f"{path}.{name}" if path else name
            sub, required = sh.fields.get(name, (shape.JSON, False))
            yield here, value, name, required
            yield from fields(item, sub, here)


def optional_paths(doc: dict[str, Any]) -> list[str]:
    return sorted({p for p, _, _, required in fields(doc, shape.DOCUMENT) if not required})


def small_document() -> dict[str, Any]:
    """The rich document with one check per verdict: every kind of field, fewer repeats (fuzzing is per field)."""
    doc = rich_document()
    doc["checks"] = list({c["verdict"]: c for c in doc["checks"]}.values())
    return doc


def _copy(doc: Any) -> Any:
    return json.loads(json.dumps(doc))


def without(doc: dict[str, Any], path: str) -> dict[str, Any]:
    out = _copy(doc)
    for p, holder, name, _ in list(fields(out, shape.DOCUMENT)):
        if p == path and name in holder:
            del holder[name]
    return out


def replaced(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = _copy(doc)
    for p, holder, name, _ in list(fields(out, shape.DOCUMENT)):
        if p == path and name in holder:
            holder[name] = _copy(value)
    return out


# ------------------------------------------------------------------ optional fields
def test_the_schema_document_lists_exactly_the_required_fields():
    """docs/results-schema.md and abstract.verify.shape say the same thing."""
    text = SCHEMA_DOC.read_text()
    block = re.search(r"<!-- required-fields -->\n```text\n(.*?)```", text, re.S)
    assert block, "docs/results-schema.md lost its list of required fields"
    assert block.group(1).split() == shape.required_paths()


def test_every_optional_field_may_be_missing():
    doc = rich_document()
    paths = optional_paths(doc)
    assert len(paths) > 80  # the walk really visits the document
    for path in paths:
        partial = without(doc, path)
        assert shape.document_problems(partial) == [], path
        try:
            render_all(partial)
        except Exception as err:  # pragma: no cover - the message names the field
            pytest.fail(f"without {path}: {type(err).__name__}: {err}")


def test_every_optional_field_may_be_null_where_the_schema_allows():
    doc = rich_document()
    for path in optional_paths(doc):
        partial = replaced(doc, path, None)
        if shape.document_problems(partial):
            continue  # not nullable: refused up front, tested below
        try:
            render_all(partial)
        except Exception as err:  # pragma: no cover
            pytest.fail(f"{path} = null: {type(err).__name__}: {err}")


def test_a_document_without_a_required_field_is_refused():
    doc = rich_document()
    for path in sorted({p for p, _, _, required in fields(doc, shape.DOCUMENT) if required}):
        problems = shape.document_problems(without(doc, path))
        assert problems and "missing (required)" in problems[0], path


WRONG = [[], {}, "text", 7, None]


def test_fuzzed_field_types_are_refused_or_rendered():
    """Replace every field, in turn, by values of other JSON types: a reader either refuses
    the document (with the field's path) or renders it; it never crashes."""
    doc = small_document()
    refused = rendered = 0
    for path in optional_paths(doc) + ["schema", "spec", "checks", "hypotheses"]:
        for value in WRONG:
            mutated = replaced(doc, path, value)
            problems = shape.document_problems(mutated)
            if problems:
                assert problems[0].startswith("document."), problems
                refused += 1
                continue
            try:
                render_all(mutated)
            except Exception as err:  # pragma: no cover
                pytest.fail(f"{path} = {value!r}: {type(err).__name__}: {err}")
            rendered += 1
    assert refused > 200 and rendered > 50


@pytest.mark.parametrize("content, said", [
    ("[]", "not an abstract results document"),
    ('{"schema": "abstract.results/1"}', "document.spec: missing (required)"),
    ('{"schema": "abstract.results/1", "spec": [], "checks": [], "hypotheses": []}',
     "document.spec: expected an object, got a list"),
    ('{"schema": "abstract.results/1", "spec": {"path": "x"}, "checks": {}, "hypotheses": []}',
     "document.checks: expected a list"),
    ('{"schema": "abstract.results/1", "spec": {"path": "x"}, "checks": [], "hypotheses": [{"name": "h", '
     '"variables": {"v": {"iia": {"correct": "12", "n": 20}}}}]}',
     "document.hypotheses[0].variables.v.iia.correct: expected an integer or null, got str"),
    ('{"schema": "abstract.results/1", "spec": {"path": "x"}, "checks": [], "hypotheses": [{"name": "h", '
     '"expectations": [{"text": "iia(v) >= 0.9", "passed": true, "confidence": "high"}]}]}',
     "confidence: expected a number or null, got str"),
    ('{"schema": "abstract.results-set/1", "results": [{"schema": "abstract.results/1", "spec": {"path": "x"}, '
     '"checks": [], "hypotheses": []}, {"schema": "abstract.results/1", "spec": 3, "checks": [], '
     '"hypotheses": []}]}', "results[1]: document.spec: expected an object, got int"),
])
def test_report_refuses_malformed_documents_with_exit_2(tmp_path, capsys, content, said):
    bad = tmp_path / "r.json"
    bad.write_text(content)
    assert main(["report", str(bad), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.html"))


def test_report_renders_a_document_with_only_the_required_fields(tmp_path, capsys):
    minimal = {"schema": "abstract.results/1", "spec": {"path": "x.causal"}, "checks": [], "hypotheses": []}
    (tmp_path / "r.json").write_text(json.dumps(minimal))
    assert main(["report", str(tmp_path / "r.json"), "-o", str(tmp_path / "r.html")]) == 0
    assert "x.causal" in (tmp_path / "r.html").read_text()


# ------------------------------------------------------------------ hostile strings
EVIL = '<script>alert("x")</script>\x00\x1b\x0c]]>&\'\ud800\uffff'


def hostile(value: Any, structural: set[str]) -> Any:
    """Every string value gets EVIL prepended; every key that is a user name (not a schema
    field) too; every object gains an extra EVIL key (readers must tolerate unknown fields)."""
    if isinstance(value, dict):
        out = {(k if k in structural or k == "schema" else EVIL + k): (v if k == "schema" else hostile(v, structural))
               for k, v in value.items()}
        if any(k in structural for k in value) or not any(isinstance(v, (dict, list)) for v in value.values()):
            out[EVIL] = EVIL  # an unknown field (not an entry of a map of objects, which must stay objects)
        return out
    if isinstance(value, list):
        return [hostile(v, structural) for v in value]
    if isinstance(value, str):
        return EVIL + value
    return value


def structural_names(sh: shape.Shape, seen: set[str] | None = None) -> set[str]:
    seen = set() if seen is None else seen
    if isinstance(sh, shape.Obj):
        for name, (sub, _) in sh.fields.items():
            seen.add(name)
            structural_names(sub, seen)
    elif isinstance(sh, shape.ListOf):
        structural_names(sh.item, seen)
    elif isinstance(sh, shape.MapOf):
        structural_names(sh.value, seen)
    elif isinstance(sh, shape.OneOf):
        for o in sh.options:
            structural_names(o, seen)
    return seen


@pytest.fixture
def evil_doc():
    doc = rich_document()
    # the names the hostile keys replace must still be found: keep structure, poison content
    return hostile(doc, structural_names(shape.DOCUMENT) - {"random_network", "random_rotation"})


def test_html_escapes_every_user_controlled_string_and_key(evil_doc, tmp_path):
    html = render_html(evil_doc)
    assert "<script" not in html and "&lt;script&gt;" in html
    # counterexample keys (user variable names) are escaped too
    cex_keys = [k for c in evil_doc["checks"]
                for k in (c.get(EVIL + "counterexample") or c.get("counterexample") or {})]
    assert cex_keys
    from abstract.report import write_report
    written = write_report(evil_doc, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script" not in written


def test_junit_is_well_formed_whatever_the_strings_hold(evil_doc, tmp_path):
    from abstract.verify.junit import write_junit
    text = write_junit([evil_doc, rich_document()], tmp_path / "j.xml").read_text(encoding="utf-8")
    root = ET.parse(tmp_path / "j.xml").getroot()
    assert root.tag == "testsuites" and len(root.findall("testsuite")) == 2
    assert "\\x1b" in text and "\\x00" in text and "\\ud800" in text and "]]&gt;" in text
    messages = [f.get("message") for f in root.iter("failure")]
    assert any(m and m.startswith("<script>") for m in messages)  # the text survives, escaped


def test_junit_from_a_spec_with_control_characters(tmp_path, capsys):
    """End to end: a spec whose text holds control characters, its error echoed into JUnit."""
    spec = tmp_path / "ctl.causal"
    spec.write_text("model M {\n    input a : 0..3\n    output o = a \x1b\x07 + 1\n}\n")
    assert main(["verify", str(spec), "--quiet", "--junit", str(tmp_path / "j.xml"),
                 "--html", str(tmp_path / "r.html")]) == 2
    root = ET.parse(tmp_path / "j.xml").getroot()
    assert root.get("errors") == "1"
    assert "<script" not in (tmp_path / "r.html").read_text()


def test_the_report_shows_warnings():
    assert "results cache: cannot write /x: Permission denied" in render_html(rich_document())


def test_build_junit_accepts_the_rich_document():
    root = build_junit(rich_document())
    assert int(root.get("tests")) > 0
