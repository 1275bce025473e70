"""What `verify`/`align` print, write and return must agree, whatever goes wrong.

* Each output (--json, --junit, --html) is written independently: one bad path is reported
  (exit 2, no traceback) and the others are still written.
* `align` measures and does not judge: it never prints PASS/FAIL and exits 0 unless a run
  errs (2); `verify` on the same spec prints FAIL and exits 1.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from abstract.cli import main
from abstract.verify import pipeline

CHECKS_ONLY = """
model Eq {
    input a, b : 0..3
    output label = a == b
    assert label == (b == a)
}
"""

SPEC = """
model Eq {
    input a, b : 0..3
    output label = a == b
    assert label == (b == a)
}
network net = torch "net.py:build"
hypothesis h : Eq ~ net {
    align label to layer 0 via full
    expect iia(label) >= 0.9
}
"""
NET = "import torch\ndef build():\n    torch.manual_seed(0)\n    return torch.nn.Linear(8, 2)\n"


def _write(tmp_path, text, name="spec.causal"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@pytest.fixture
def blocked(tmp_path):
    """A path that cannot be written: its parent folder is a regular file."""
    (tmp_path / "file").write_text("not a folder")
    return str(tmp_path / "file" / "out")


@pytest.mark.parametrize("bad", ["json", "junit", "html"])
def test_one_unwritable_output_does_not_stop_the_others(tmp_path, capsys, blocked, bad):
    spec = _write(tmp_path, CHECKS_ONLY)
    paths = {"json": str(tmp_path / "r.json"), "junit": str(tmp_path / "j.xml"), "html": str(tmp_path / "r.html")}
    paths[bad] = blocked
    code = main(["verify", spec, "--quiet",
                 "--json", paths["json"], "--junit", paths["junit"], "--html", paths["html"]])
    err = capsys.readouterr().err
    assert code == 2
    assert f"error: cannot write {blocked}" in err and "Traceback" not in err
    for kind, path in paths.items():
        if kind != bad:
            assert f"wrote {path}" in err
    if bad != "json":
        assert json.loads(open(paths["json"]).read())["schema"] == "abstract.results/1"
    if bad != "junit":
        ET.parse(paths["junit"])
    if bad != "html":
        assert "<!DOCTYPE html>" in open(paths["html"]).read()


def test_outputs_written_despite_a_bad_json_path_keep_the_verdict_visible(tmp_path, capsys, blocked):
    spec = _write(tmp_path, CHECKS_ONLY.replace("(b == a)", "(b != a)"))
    assert main(["verify", spec, "--quiet", "--json", blocked, "--junit", str(tmp_path / "j.xml")]) == 2
    assert ET.parse(tmp_path / "j.xml").getroot().get("failures") == "1"


@pytest.fixture
def engine(monkeypatch, tmp_path):
    """A fake alignment whose IIA is set by the test (the spec expects >= 0.9)."""
    (tmp_path / "net.py").write_text(NET)
    state = {"correct": 500, "raise": None}

    def align(spec, name, **kw):
        if state["raise"]:
            raise state["raise"]
        return {"name": name, "variables": {"label": {"iia": {"correct": state["correct"], "n": 1000}}}, "multi": None}

    monkeypatch.setattr(pipeline, "_align", align)
    return state


def _last_line(out: str) -> str:
    return out.strip().splitlines()[-1]


def test_align_prints_no_verdict_and_exits_0_when_an_expectation_is_not_met(tmp_path, capsys, engine):
    spec = _write(tmp_path, SPEC)
    assert main(["align", spec, "--quiet", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "PASS" not in out
    assert _last_line(out).startswith("MEASURED: 1 hypothesis(es)")
    assert "0.500" in out  # the measurement is still shown
    assert main(["verify", spec, "--quiet", "--no-cache"]) == 1
    out = capsys.readouterr().out
    assert _last_line(out).startswith("FAIL:")


def test_align_with_a_counterexample_prints_no_verdict_and_exits_0(tmp_path, capsys, engine):
    engine["correct"] = 990
    spec = _write(tmp_path, SPEC.replace("(b == a)", "(b != a)"))
    assert main(["align", spec, "--quiet", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "PASS" not in out and "COUNTEREXAMPLE" in out
    assert main(["verify", spec, "--quiet", "--no-cache"]) == 1


def test_align_error_prints_error_and_exits_2(tmp_path, capsys, engine):
    engine["raise"] = RuntimeError("out of memory")
    spec = _write(tmp_path, SPEC)
    assert main(["align", spec, "--quiet", "--no-cache"]) == 2
    out = capsys.readouterr().out
    assert _last_line(out) == "ERROR: 1 error(s)" and "out of memory" in out


def test_align_on_an_unreadable_spec_prints_the_error_and_exits_2(tmp_path, capsys):
    assert main(["align", _write(tmp_path, "model {"), "--quiet"]) == 2
    assert "error:" in capsys.readouterr().err


def test_unwritable_cache_warns_on_stderr_and_keeps_the_verdict(tmp_path, capsys, engine, blocked):
    engine["correct"] = 990
    spec = _write(tmp_path, SPEC)
    assert main(["verify", spec, "--quiet", "--cache-dir", blocked]) == 0
    captured = capsys.readouterr()
    assert "warning: hypothesis h: results cache: cannot write" in captured.err
    assert _last_line(captured.out).startswith("PASS:")
