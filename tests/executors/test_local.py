"""The executor seam, in process: the local executor gives exactly what the engine gave before
executors existed; a failing cell is retried once, then reported without stopping the sweep;
finished cells are cached and an interrupted sweep resumes from them. (The same contract on
Ray workers: test_ray.py.)"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kit import Faults, assert_same_cells, cells, figures, inject, run  # noqa: E402

from abstract.executors import CellCache, LocalExecutor  # noqa: E402
from abstract.language.errors import SpecError  # noqa: E402
from abstract.verify.summary import format_summary  # noqa: E402


@pytest.fixture(scope="module")
def legacy():
    return run("grid", legacy=True)


def test_local_executor_is_the_old_path_bit_for_bit(legacy):
    """The JSON figures and every trained cell (weights, losses, predictions) are those of the
    engine's path before cells were planned as data; the default executor is the local one."""
    for r in (run("grid", executor=LocalExecutor()), run("grid")):
        assert figures(r) == figures(legacy)
        assert_same_cells(cells(r), cells(legacy))
    doc = figures(legacy)
    grid = doc["variables"]["x"]["grid"]
    assert len(grid["iia_mean"]) == 3 and all(v is not None for row in grid["iia_mean"] for v in row)
    assert len(doc["variables"]["x"]["seeds"]) == 2 and len(doc["variables"]["z"]["seeds"]) == 2
    assert "cell_errors" not in doc


def test_a_cell_that_fails_once_is_retried_and_changes_nothing(legacy, tmp_path, monkeypatch):
    faults = Faults(tmp_path, "x", "L1.resid_post", seed=legacy.plan.train.seeds[0], times=1)
    inject(monkeypatch, faults)
    r = run("grid")
    assert faults.attempts == 2
    assert figures(r) == figures(legacy)
    assert_same_cells(cells(r), cells(legacy))


def test_a_cell_that_keeps_failing_is_reported_and_the_sweep_goes_on(legacy, tmp_path, monkeypatch):
    first = legacy.plan.train.seeds[0]
    faults = Faults(tmp_path, "x", "L2.resid_post", seed=first)
    inject(monkeypatch, faults)
    r = run("grid")
    doc = figures(r)
    assert faults.attempts == 2  # tried, retried once, given up
    assert doc["cell_errors"] == [{"variable": "x", "sites": ["L2.resid_post"], "seed": first,
                                   "error": "RuntimeError: injected failure 2 at L2.resid_post", "attempts": 2}]
    want = figures(legacy)["variables"]["x"]["grid"]
    got = doc["variables"]["x"]["grid"]
    assert got["iia_mean"][:2] == want["iia_mean"][:2] and got["iia_mean"][2] == [None]
    assert doc["variables"]["z"] == figures(legacy)["variables"]["z"]  # the other variable's sweep went on
    summary = format_summary({"spec": {"path": "sweep.causal"}, "checks": [], "hypotheses": [doc]}, width=400)
    assert "CELL ERROR: x L2.resid_post seed" in summary and "injected failure 2" in summary


def test_a_variable_left_without_seeds_fails_with_its_cells_error(legacy, tmp_path, monkeypatch):
    """One seed lost: reported from the others. All lost: the cells' own error, as itself."""
    seeds = legacy.plan.train.seeds
    with monkeypatch.context() as m:  # z's named site loses one seed: z is reported from the other
        inject(m, Faults(tmp_path, "z", "L1.resid_post", seed=seeds[1]))
        r = run("grid")
    assert [s["seed"] for s in figures(r)["variables"]["z"]["seeds"]] == [seeds[0]]
    (tmp_path / "all").mkdir()
    inject(monkeypatch, Faults(tmp_path / "all", "z", "L1.resid_post", seed=tuple(seeds)))
    with pytest.raises(RuntimeError, match="injected failure") as err:
        run("grid")
    assert not isinstance(err.value, SpecError)


def test_finished_cells_are_cached_and_an_interrupted_sweep_resumes(legacy, tmp_path, monkeypatch):
    cache = CellCache(tmp_path / "cells")
    faults = Faults(tmp_path / "f", "x", "L2.resid_post", seed=legacy.plan.train.seeds[0])
    (tmp_path / "f").mkdir()
    with monkeypatch.context() as m:  # a first run that loses one cell
        inject(m, faults)
        first = run("grid", cell_cache=cache)
    assert figures(first)["cell_errors"]
    stored = len(list((tmp_path / "cells").glob("*.pt")))
    assert stored > 0
    ran = []
    plain = LocalExecutor.run

    def counting(self, tasks, job):
        ran.extend(t.label for t in tasks)
        return plain(self, tasks, job)
    monkeypatch.setattr(LocalExecutor, "run", counting)
    again = run("grid", cell_cache=cache)  # resumes: only the lost cell is trained
    assert ran == [label for label in ran if label.startswith("x L2.resid_post")] and len(ran) == 1
    assert figures(again) == figures(legacy)
    assert_same_cells(cells(again), cells(legacy))
    ran.clear()
    run("grid", cell_cache=cache)
    assert ran == []
