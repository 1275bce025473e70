"""Cells on Ray actors: long-lived workers, each holding one copy of the frozen network.

* Actors: one per ``--gpus-per-worker`` share of the cluster's GPUs (fractions allowed: two
  workers at 0.5 share one device), else one per CPU (``--workers`` overrides). Each loads
  the network once (from the spec and its builder, not by pickling a model; the weights'
  fingerprint must match the driver's) and keeps each variable's encoded pairs, fetched from
  the object store the first time it needs them.
* Queue: tasks (a task is a whole grid row, so a layer's positions stay on one actor and
  train in stacked passes) go to whichever actor is idle (``ray.wait``): uneven costs even out.
* Failures: a task that raises, or whose actor dies (out of memory, a crash; the actor is
  replaced), is tried once more, then reported as that task's error; the sweep goes on.
  A spec error raised in a task, or a worker that cannot load the network, stops the run.
* Connection: ``address`` joins an existing cluster (``ray start --head`` prints it; checked
  to be reachable first: Ray itself waits minutes on a wrong address); without one a local
  node is started on demand (and stopped by :meth:`close`), its workers importing this very
  ``abstract`` package.
"""
from __future__ import annotations

import collections
import dataclasses
import math
import os
import socket
from pathlib import Path
from typing import Any, Optional, Sequence

from .base import ATTEMPTS, ExecutorError, Job, failure, is_user_error
from .cells import CellOutcome, CellTask
from .worker import WorkerConfig

INSTALL = "pip install 'abstract[ray]'  (or: pip install 'ray>=2.9')"
CONNECT_TIMEOUT = 5.0  # seconds to reach --ray-address before calling it unreachable


def import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise ExecutorError(f"--executor ray needs Ray, which is not installed ({err}); install it: {INSTALL}") \
            from None
    return ray


def check_address(address: str) -> None:
    """Fail fast on an address nothing listens at (``auto`` is left to Ray)."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ExecutorError(f"--ray-address {address!r}: expected HOST:PORT (as `ray start --head` prints), "
                            "ray://HOST:PORT or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as err:
        raise ExecutorError(f"--ray-address {address}: no Ray cluster reachable there ({err}); start one with "
                            "`ray start --head` and pass the address it prints") from None


class RayExecutor:
    name = "ray"

    def __init__(self, address: Optional[str] = None, gpus_per_worker: float = 0.0, workers: Optional[int] = None,
                 cpus_per_worker: float = 1.0, init_options: Optional[dict[str, Any]] = None):
        if gpus_per_worker < 0 or (gpus_per_worker > 1 and gpus_per_worker != int(gpus_per_worker)):
            raise ExecutorError(f"--gpus-per-worker {gpus_per_worker}: expected a fraction in (0, 1] or a whole "
                                "number of GPUs")
        if workers is not None and workers < 1:
            raise ExecutorError(f"--workers {workers}: expected at least 1")
        self.address, self.gpus, self.workers, self.cpus = address, float(gpus_per_worker), workers, cpus_per_worker
        self.init_options = init_options or {}
        self.ray: Any = None
        self._started = False
        self._pools: dict[tuple[str, ...], list[Any]] = {}
        self._data: dict[str, Any] = {}

    # ----- connecting and checking (before any work) --------------------------------------
    def start(self) -> "RayExecutor":
        ray = self.ray = import_ray()
        if not ray.is_initialized():
            if self.address is not None:
                check_address(self.address)
            self._init(ray)
        self.check_resources()
        return self

    def _init(self, ray: Any) -> None:
        options = {"include_dashboard": False, "logging_level": "ERROR", "log_to_driver": False,
                   **self.init_options}
        saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "RAY_worker_niceness")}
        if self.address is None:  # a local node: its workers inherit this environment, so they import this abstract
            root = str(Path(__file__).resolve().parent.parent.parent)
            os.environ["PYTHONPATH"] = os.pathsep.join([root] + ([saved["PYTHONPATH"]] if saved["PYTHONPATH"] else []))
            # Ray lowers its workers' priority (nice 15) by default; here they *are* the work
            # (the driver waits), and on a busy machine a niced worker would crawl
            os.environ["RAY_worker_niceness"] = "0"
        try:
            ray.init(address=self.address, **options)
        except Exception as err:  # noqa: BLE001 - any way of not connecting is bad input
            raise ExecutorError(f"cannot start or join Ray ({failure(err)})") from None
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self._started = True

    def check_resources(self) -> None:
        """More GPUs per worker than any node has can never be scheduled: say so now."""
        ray = self.ray
        if self.gpus <= 0:
            return
        per_node = [float((n.get("Resources") or {}).get("GPU", 0.0)) for n in ray.nodes() if n.get("Alive")]
        most = max(per_node, default=0.0)
        if self.gpus > most:
            self.close()
            raise ExecutorError(f"--gpus-per-worker {self.gpus:g}: the Ray cluster's largest node has "
                                f"{most:g} GPU(s)" + ("" if most else " (none: run workers on CPU without the flag)"))

    def worker_count(self) -> int:
        if self.workers is not None:
            return self.workers
        resources = self.ray.cluster_resources()
        if self.gpus > 0:
            return max(1, math.floor(float(resources.get("GPU", 0.0)) / self.gpus + 1e-9))
        return max(1, math.floor(float(resources.get("CPU", 1.0)) / self.cpus + 1e-9))

    # ----- the actors ----------------------------------------------------------------------
    def _actor(self, config: WorkerConfig) -> Any:
        cpus = self.cpus
        if self.workers is not None and self.gpus <= 0:  # as many as asked must fit, or some never start
            cpus = min(cpus, float(self.ray.cluster_resources().get("CPU", 1.0)) / self.workers)
        cls = self.ray.remote(_CellActor).options(num_cpus=cpus, num_gpus=self.gpus)
        return cls.remote(config)

    def _pool(self, config: WorkerConfig) -> list[Any]:
        """The long-lived actors for this network (made, and checked to load it, on first use)."""
        config = dataclasses.replace(config, device="cuda" if self.gpus > 0 else "cpu",
                                     spec_path=str(Path(config.spec_path).resolve()))
        key = config.pool_key
        if key not in self._pools:
            self._release()  # one network's workers at a time: the next ones need their CPUs and GPUs
            actors = [self._actor(config) for _ in range(self.worker_count())]
            try:
                self.ray.get([a.ready.remote() for a in actors])
            except Exception as err:  # noqa: BLE001 - a worker that cannot load the network stops the run
                for a in actors:
                    self.ray.kill(a)
                raise RuntimeError(f"a Ray worker could not load the network: {failure(_cause(err))}") from None
            self._pools[key] = actors
        return self._pools[key]

    # ----- running a sweep -----------------------------------------------------------------
    def run(self, tasks: Sequence[CellTask], job: Job) -> list[CellOutcome]:
        ray = self.ray
        if not tasks:
            return []
        config = dataclasses.replace(job.remote, device="cuda" if self.gpus > 0 else "cpu",
                                     spec_path=str(Path(job.remote.spec_path).resolve()))
        pool = self._pool(job.remote)
        idle = collections.deque(pool)
        queue = collections.deque((i, 1) for i in range(len(tasks)))
        inflight: dict[Any, tuple[int, int, Any]] = {}
        out: dict[int, CellOutcome] = {}

        def submit() -> None:
            while idle and queue:
                i, attempt = queue.popleft()
                actor = idle.popleft()
                ref = actor.run.remote(tasks[i], [self._data_ref(tasks[i].context, job)])
                inflight[ref] = (i, attempt, actor)

        submit()
        try:
            while inflight:
                [ref], _ = ray.wait(list(inflight), num_returns=1)
                i, attempt, actor = inflight.pop(ref)
                try:
                    records = ray.get(ref)
                except ray.exceptions.RayActorError as err:  # died: out of memory, a crash
                    pool[pool.index(actor)] = actor = self._actor(config)
                    error, raised = f"worker died (out of memory, or a crash): {failure(err)}", err
                except ray.exceptions.RayTaskError as err:
                    cause = _cause(err)
                    if is_user_error(cause):
                        raise cause from None
                    error, raised = failure(cause), cause
                except ray.exceptions.RayError as err:  # object lost, out of memory ...
                    error, raised = failure(err), err
                else:
                    out[i] = CellOutcome(tasks[i], records, None, attempt)
                    job.done(out[i])
                    idle.append(actor)
                    submit()
                    continue
                if attempt < ATTEMPTS:
                    queue.appendleft((i, attempt + 1))
                else:
                    out[i] = CellOutcome(tasks[i], [], error, attempt, exception=raised)
                    job.done(out[i])
                idle.append(actor)
                submit()
        finally:
            for ref in inflight:  # a spec error (or ^C): stop what is still running
                ray.cancel(ref, force=False)
        return [out[i] for i in range(len(tasks))]

    def _data_ref(self, key: str, job: Job) -> Any:
        if key not in self._data:
            self._data[key] = self.ray.put(job.contexts[key]())
        return self._data[key]

    def _release(self) -> None:
        for actors in self._pools.values():
            for a in actors:
                try:
                    self.ray.kill(a)
                except Exception:  # noqa: BLE001 - already gone
                    pass
        self._pools.clear()
        self._data.clear()

    def close(self) -> None:
        ray = self.ray
        if ray is None:
            return
        self._release()
        if self._started:
            ray.shutdown()
            self._started = False


def _cause(err: BaseException) -> BaseException:
    """The exception a task raised, inside Ray's wrapper."""
    cause = getattr(err, "cause", None)
    return cause if isinstance(cause, BaseException) else err


class _CellActor:
    """The actor body (wrapped by ``ray.remote`` at use, so that importing this module does
    not need Ray): a :class:`NetworkWorker` and the data fetch."""

    def __init__(self, config: WorkerConfig):
        self.worker = config.build()

    def ready(self) -> bool:
        return True

    def run(self, task: CellTask, data_box: list[Any]) -> Any:
        import ray
        return self.worker.run(task, lambda: ray.get(data_box[0]))
