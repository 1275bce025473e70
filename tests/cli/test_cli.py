"""The `abstract` command's contract with CI: exit codes and readable errors."""
from __future__ import annotations

import json

import pytest

from abstract.cli import main

GOOD = """
model Eq {
    input a, b : 0..3
    same = a == b
    output label = not same
    assert label == (a != b)
}
"""

FAILING_ASSERT = """
model Eq {
    input a, b : 0..3
    output label = a == b
    assert label
}
"""

SYNTAX_ERROR = """
model Eq {
    input a, b : 0..3
    output label = a == == b
}
"""


def _write(tmp_path, text, name="spec.causal"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_check_passes_with_exit_0(tmp_path, capsys):
    assert main(["check", _write(tmp_path, GOOD)]) == 0
    out = capsys.readouterr().out
    assert "counterexample" in out and "0 counterexample" in out


def test_check_failing_assert_exits_1_and_shows_counterexample(tmp_path, capsys):
    assert main(["check", _write(tmp_path, FAILING_ASSERT)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "counterexample: a=" in out


def test_spec_error_exits_2_with_location_and_caret(tmp_path, capsys):
    path = _write(tmp_path, SYNTAX_ERROR)
    assert main(["check", path]) == 2
    err = capsys.readouterr().err
    assert f"{path}:4:25: error: unexpected '=='" in err
    assert "    4 |     output label = a == == b" in err
    assert "^" in err and "Traceback" not in err


def test_missing_file_exits_2(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope.causal")]) == 2
    assert "no such spec file" in capsys.readouterr().err


def test_worst_exit_code_wins_across_files(tmp_path, capsys):
    good = _write(tmp_path, GOOD, "good.causal")
    bad = _write(tmp_path, FAILING_ASSERT, "bad.causal")
    broken = _write(tmp_path, SYNTAX_ERROR, "broken.causal")
    assert main(["check", good, bad]) == 1
    assert main(["check", good, bad, broken]) == 2


def test_check_json_output(tmp_path):
    out = tmp_path / "checks.json"
    assert main(["check", _write(tmp_path, FAILING_ASSERT), "--json", str(out)]) == 1
    doc = json.loads(out.read_text())
    failing = [c for c in doc["checks"] if c["verdict"] == "counterexample"]
    assert failing and failing[0]["kind"] == "assert"
    assert failing[0]["counterexample"]["a"] != failing[0]["counterexample"]["b"]


def test_no_command_prints_help(capsys):
    assert main([]) == 2


def test_report_on_unreadable_results_exits_2(tmp_path, capsys):
    bad = tmp_path / "r.json"
    bad.write_text("{not json")
    assert main(["report", str(bad)]) == 2


@pytest.mark.parametrize("content", ["{}", "[]", '"x"', "null", '{"schema": "abstract.checks/1", "checks": []}'])
def test_report_refuses_what_is_not_a_results_document(tmp_path, capsys, content):
    bad = tmp_path / "r.json"
    bad.write_text(content)
    assert main(["report", str(bad), "-o", str(tmp_path / "r.html")]) == 2
    assert "is not an abstract results document" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_verify_writes_json_and_junit_even_for_an_unreadable_spec(tmp_path, capsys):
    """CI reads the files: a spec that does not parse must show up there as an error."""
    import xml.etree.ElementTree as ET
    broken = _write(tmp_path, SYNTAX_ERROR, "broken.causal")
    good = _write(tmp_path, GOOD, "good.causal")
    out_json, out_xml = tmp_path / "r.json", tmp_path / "j.xml"
    assert main(["verify", good, broken, "--json", str(out_json), "--junit", str(out_xml), "--quiet"]) == 2
    docs = json.loads(out_json.read_text())["results"]
    assert [d["spec"]["path"] for d in docs] == [good, broken]
    assert docs[1]["errors"][0]["location"] == f"{broken}:4:25"
    suites = ET.parse(out_xml).getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["good", "broken"]
    error = suites[1].find("testcase/error")
    assert "unexpected '=='" in error.get("message") and "^" in error.text


def test_unwritable_output_is_a_clean_error(tmp_path, capsys):
    assert main(["check", _write(tmp_path, GOOD), "--json", "/dev/null/x.json"]) == 2
    err = capsys.readouterr().err
    assert "error: cannot write" in err and "Traceback" not in err


@pytest.mark.parametrize("value", ["0", "-1", "lots"])
def test_rlimit_must_be_a_positive_integer(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as info:
        main(["check", "--rlimit", value, _write(tmp_path, GOOD)])
    assert info.value.code == 2 and "expected a positive integer" in capsys.readouterr().err


@pytest.mark.parametrize("device, said", [("gpu", "not a device name"), ("mps", "not supported")]
                         + ([] if __import__("torch").cuda.is_available() else [("cuda", "no CUDA device")]))
def test_unusable_device_is_refused_before_any_work(tmp_path, capsys, device, said):
    assert main(["verify", _write(tmp_path, GOOD), "--device", device, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"error: --device {device}: " in err and said in err
