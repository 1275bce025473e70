"""The executor contract on a real local Ray node (2 CPUs, 2 long-lived workers): the same
cells as the local executor, bit for bit (figures and trained weights), for position-free
sites and for LM rows of positions trained in stacked passes; a cell that fails once, keeps
failing, or kills its worker is retried once and then reported, and the sweep goes on; bad
options fail before any work.

Ray needs a loopback-only network namespace on this project's machines, so these run only
when ABSTRACT_RAY_TESTS=1 (scripts/test.sh runs them so, under `unshare -n`).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

if not os.environ.get("ABSTRACT_RAY_TESTS"):
    pytest.skip("Ray tests run only under scripts/test.sh (ABSTRACT_RAY_TESTS=1, in a loopback-only network "
                "namespace: `unshare -n sh -c 'ip link set lo up && ...'`)", allow_module_level=True)
pytest.importorskip("ray", reason="Ray is not installed: pip install 'abstract[ray]'")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kit  # noqa: E402
from kit import Faults, assert_same_cells, cells, figures, inject, run  # noqa: E402

from abstract.executors import ExecutorError, LocalExecutor, make_executor  # noqa: E402
from abstract.executors.ray_executor import RayExecutor  # noqa: E402


@pytest.fixture(scope="module")
def ray_executor():
    from ray import cloudpickle
    cloudpickle.register_pickle_by_value(kit)  # the fault-injecting worker config travels by value
    executor = RayExecutor(workers=2, init_options={"num_cpus": 2}).start()
    yield executor
    executor.close()


@pytest.fixture(scope="module")
def local_grid():
    return run("grid", executor=LocalExecutor())


def test_ray_gives_the_local_cells_bit_for_bit(ray_executor, local_grid):
    r = run("grid", executor=ray_executor)
    assert figures(r) == figures(local_grid)
    assert_same_cells(cells(r), cells(local_grid))
    assert len(ray_executor._pools) == 1 and len(next(iter(ray_executor._pools.values()))) == 2


def test_lm_rows_of_positions_stay_together_and_match(ray_executor):
    local = run("rows", executor=LocalExecutor())
    remote = run("rows", executor=ray_executor)
    assert figures(remote) == figures(local)
    assert_same_cells(cells(remote), cells(local))
    assert len(figures(local)["variables"]["x"]["grid"]["positions"]) == 3


@pytest.mark.parametrize("times,how", [(1, "raise"), (99, "raise"), (99, "die")])
def test_failing_cells_on_ray(ray_executor, local_grid, tmp_path, monkeypatch, times, how):
    """Fails once: retried, nothing changes. Keeps failing (or kills its worker, as an
    out-of-memory kill would): reported after two tries, everything else as locally."""
    first = local_grid.plan.train.seeds[0]
    faults = Faults(tmp_path, "x", "L2.resid_post", seed=first, times=times, how=how)
    inject(monkeypatch, faults)
    doc = figures(run("grid", executor=ray_executor))
    assert faults.attempts == 2
    want = figures(local_grid)
    if times == 1:
        assert doc == want
        return
    [error] = doc.pop("cell_errors")
    assert (error["variable"], error["sites"], error["seed"], error["attempts"]) == ("x", ["L2.resid_post"], first, 2)
    assert ("injected failure 2" in error["error"]) if how == "raise" else error["error"].startswith("worker died")
    assert doc["variables"]["z"] == want["variables"]["z"]
    assert doc["variables"]["x"]["grid"]["iia_mean"][:2] == want["variables"]["x"]["grid"]["iia_mean"][:2]


def test_more_gpus_per_worker_than_the_cluster_has_is_refused(ray_executor):
    with pytest.raises(ExecutorError, match="--gpus-per-worker 1: the Ray cluster's largest node has 0 GPU"):
        make_executor("ray", gpus_per_worker=1)
