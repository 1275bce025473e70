"""Where a hypothesis's sweep cells run: in this process (``local``) or on Ray actors (``ray``).

The engine plans the cells of its train phase (variable x grid row x training seed) as data
(:mod:`.cells`, :mod:`.sweep`) and hands them to an executor (:mod:`.base` states the
contract). :func:`make_executor` builds one from the CLI's / API's options and checks them
before any work starts (:class:`ExecutorError`: exit 2).
"""
from __future__ import annotations

from typing import Optional

from .base import Executor, ExecutorError, Job
from .cache import DEFAULT_CELL_DIR, CellCache
from .cells import CellOutcome, CellRecord, CellTask, ContextData
from .local import LocalExecutor
from .sweep import Sweep
from .worker import WorkerConfig

EXECUTORS = ("local", "ray")

__all__ = ["EXECUTORS", "CellCache", "CellOutcome", "CellRecord", "CellTask", "ContextData", "DEFAULT_CELL_DIR",
           "Executor", "ExecutorError", "Job", "LocalExecutor", "Sweep", "WorkerConfig", "make_executor"]


def make_executor(name: str = "local", *, address: Optional[str] = None, gpus_per_worker: float = 0.0,
                  workers: Optional[int] = None) -> Executor:
    """An executor by name, its options checked now (ExecutorError says what is wrong)."""
    if name == "local":
        if address is not None or gpus_per_worker or workers is not None:
            raise ExecutorError("--ray-address, --gpus-per-worker and --workers need --executor ray")
        return LocalExecutor()
    if name == "ray":
        from .ray_executor import RayExecutor
        executor = RayExecutor(address=address, gpus_per_worker=gpus_per_worker, workers=workers)
        executor.start()
        return executor
    raise ExecutorError(f"unknown executor {name!r}; known: {', '.join(EXECUTORS)}")
