"""`abstract init DIR`: the scaffolded project passes `abstract check`, `abstract verify` and
`pytest` as written, and a non-empty folder is refused."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

# Imported before any in-process pytest run (see tests/verify/test_pytest_plugin.py): pytester
# restores sys.modules after a run, and dropping torch's extension modules crashes the next one.
import abstract.engine.networks  # noqa: F401
import torch  # noqa: F401

from abstract.cli import main
from abstract.scaffold import FILES

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]


def test_scaffold_passes_check_verify_and_pytest_out_of_the_box(tmp_path, monkeypatch, request, capsys):
    start = time.monotonic()
    project = tmp_path / "project"
    assert main(["init", str(project)]) == 0
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()) == sorted(FILES.values())
    monkeypatch.chdir(project)

    assert main(["check", "specs/equality.causal", "--json", "out/checks.json"]) == 0
    assert main(["verify", "specs/equality.causal", "--device", "cpu", "--quiet",
                 "--junit", "out/junit.xml", "--json", "out/results.json"]) == 0
    doc = json.loads((project / "out" / "results.json").read_text())
    assert all(e["passed"] for h in doc["hypotheses"] for e in h["expectations"])
    assert (project / "out" / "junit.xml").is_file()
    # the builder cached its weights next to itself, and only there
    assert len(list((project / "specs" / "models" / ".weights").glob("equality-*.pt"))) == 1

    # pytester is set up only now: it restores sys.modules as they were at its set-up, and must
    # not drop what `verify` imported (torch's compiler among them) under the later tests
    pytester = request.getfixturevalue("pytester")
    monkeypatch.chdir(project)
    result = pytester.runpytest_inprocess("--abstract-device", "cpu", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*equality.causal::checks PASSED*", "*equality.causal::two_equalities PASSED*"])
    assert time.monotonic() - start < 120  # about 10 s on two loaded CPU cores


def test_a_non_empty_folder_is_refused_unless_forced(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["init", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not empty" in err and "--force" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing written

    (tmp_path / "README.md").write_text("old")
    assert main(["init", str(tmp_path), "--force"]) == 0
    assert (tmp_path / "notes.txt").read_text() == "mine"  # others kept
    assert (tmp_path / "README.md").read_text().startswith(f"# {tmp_path.name}")  # the scaffold's overwritten
    assert all((tmp_path / dest).is_file() for dest in FILES.values())


def test_a_file_or_a_blocked_path_is_refused(tmp_path, capsys):
    target = tmp_path / "f"
    target.write_text("")
    assert main(["init", str(target)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "specs").write_text("a file where a folder goes")
    assert main(["init", str(tmp_path / "p"), "--force"]) == 2
    assert "is in the way" in capsys.readouterr().err
    assert not (tmp_path / "p" / "pytest.ini").exists()


def test_a_new_folder_is_created(tmp_path, capsys):
    assert main(["init", str(tmp_path / "a" / "b")]) == 0
    assert (tmp_path / "a" / "b" / "specs" / "equality.causal").is_file()
    assert "abstract verify specs/equality.causal" in capsys.readouterr().out


def test_the_ci_workflow_installs_abstract_and_runs_verify_with_junit_and_pytest(tmp_path, capsys):
    main(["init", str(tmp_path)])
    flow = yaml.safe_load((tmp_path / ".github" / "workflows" / "abstract.yml").read_text())
    runs = [s["run"] for s in flow["jobs"]["verify"]["steps"] if "run" in s]
    assert any("pip install" in r and "abstract==" in r for r in runs)
    assert any(r.startswith("abstract verify specs/") and "--junit" in r for r in runs)
    assert "pytest" in runs
    assert "__" not in (tmp_path / ".github" / "workflows" / "abstract.yml").read_text()  # no placeholder left


def test_templates_are_package_data():
    """Every template but the builder (a module) is matched by the package-data patterns, so the
    wheel carries it."""
    from fnmatch import fnmatch
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = data["abstract.scaffold"]
    for name in FILES:
        assert (ROOT / "abstract" / "scaffold" / name).is_file()
        assert name.endswith(".py") or any(fnmatch(name, p) for p in patterns), name
