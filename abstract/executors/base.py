"""What every executor does with a sweep's tasks, and what it is given to do it.

An executor takes the tasks of one sweep and a :class:`Job` and returns one
:class:`CellOutcome` per task, in task order. The contract every executor keeps (the
contract tests in tests/executors run the same tasks through each):

* results do not depend on the executor: a task's cells are those the in-process path
  trains (each cell is seeded by its own training seed; the order tasks run in is free);
* a task that raises, or whose worker dies (out of memory, a crash), is tried once more;
  if it fails again it becomes that task's error (``CellOutcome.error``) and the sweep goes
  on. A problem the user must fix in the spec (``SpecError``: an impossible intervention
  size, ...) is not a cell's fault: it stops the sweep and is raised as itself;
* ``job.done`` is called once per finished task as it finishes (progress).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

from ..language.errors import SpecError
from .cells import CellOutcome, CellTask, ContextData
from .worker import WorkerConfig

ATTEMPTS = 2  # a failing task is retried once


class ExecutorError(Exception):
    """An executor cannot be used as asked (not installed, unreachable, too few resources):
    bad input, reported before any work starts (exit 2)."""


@dataclass
class Job:
    """One sweep's tasks' surroundings.

    ``contexts``: each task's ``ContextData`` by key (built on first use: only remote workers
    need it); ``local``: runs a task in this process (the driver's own contexts);
    ``remote``: how a remote worker loads the network; ``done``: progress callback."""

    contexts: Mapping[str, Callable[[], ContextData]]
    local: Callable[[CellTask], Any]
    remote: WorkerConfig
    done: Callable[[CellOutcome], None] = field(default=lambda outcome: None)


class Executor(Protocol):
    name: str

    def run(self, tasks: Sequence[CellTask], job: Job) -> list[CellOutcome]: ...

    def close(self) -> None: ...


def failure(err: BaseException) -> str:
    """A cell's error as one line for results and the summary."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def is_user_error(err: BaseException) -> bool:
    """Errors that are the spec's, not the cell's: raised, never retried or recorded."""
    return isinstance(err, SpecError)
