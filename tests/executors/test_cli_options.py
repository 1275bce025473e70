"""The executor options of `verify`/`align`, checked before any work starts (exit 2, one line
saying what is wrong and what to do), and the local executor with a cell cache through the CLI
and the API (no Ray node needed here; test_ray.py starts one)."""
from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

import pytest

from abstract.cli import main

SPEC = str(Path(__file__).resolve().parent / "sweep.causal")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_not_installed_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["align", SPEC, "--executor", "ray", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--executor ray needs Ray" in err and "pip install 'abstract[ray]'" in err


def test_an_unreachable_ray_address_is_refused_at_once(capsys):
    pytest.importorskip("ray")
    t = time.time()
    assert main(["align", SPEC, "--executor", "ray", "--ray-address", f"127.0.0.1:{_free_port()}", "--quiet"]) == 2
    assert time.time() - t < 20  # Ray itself would wait minutes
    err = capsys.readouterr().err
    assert "no Ray cluster reachable there" in err and "ray start --head" in err
    assert main(["align", SPEC, "--executor", "ray", "--ray-address", "nowhere", "--quiet"]) == 2
    assert "expected HOST:PORT" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--gpus-per-worker", "0.5"], "need --executor ray"),
    (["--ray-address", "127.0.0.1:6379"], "need --executor ray"),
    (["--executor", "ray", "--gpus-per-worker", "1.5"], "a fraction in (0, 1] or a whole number"),
])
def test_options_that_cannot_work_are_refused(argv, message, capsys):
    if "ray" in argv:
        pytest.importorskip("ray")
    assert main(["align", SPEC, "--quiet", *argv]) == 2
    assert message in capsys.readouterr().err


def test_bad_numbers_are_argparse_errors(capsys):
    with pytest.raises(SystemExit) as e:
        main(["align", SPEC, "--gpus-per-worker", "-1"])
    assert e.value.code == 2
    assert "expected a number of GPUs >= 0" in capsys.readouterr().err


def test_cli_cell_cache_then_the_api_resumes_from_it(tmp_path, monkeypatch):
    """`--cell-cache DIR` keeps the local sweep's cells; the API (executor "local", the same
    folder) then trains nothing and gives the same figures."""
    import abstract
    from abstract.executors import LocalExecutor
    out = tmp_path / "a.json"
    assert main(["align", SPEC, "--hypothesis", "grid", "--quiet", "--device", "cpu", "--cache-dir",
                 str(tmp_path / "results"), "--cell-cache", str(tmp_path / "cells"), "--json", str(out)]) == 0
    assert list((tmp_path / "cells").glob("*.pt"))
    ran = []
    plain = LocalExecutor.run
    monkeypatch.setattr(LocalExecutor, "run", lambda self, tasks, job: ran.extend(tasks) or plain(self, tasks, job))
    spec = abstract.load(SPEC)
    with pytest.raises(ValueError, match="unknown executor 'slurm'"):
        spec.verify("grid", device="cpu", cache=False, progress=False, executor="slurm")
    res = spec.verify("grid", device="cpu", cache=False, progress=False, executor="local",
                      cell_cache=tmp_path / "cells")
    assert ran == []
    a, b = json.loads(out.read_text())["hypotheses"][0], res["grid"].to_json()
    for doc in (a, b):
        doc.pop("timing"), doc.pop("seconds"), doc.pop("location")
    assert a == b
