"""The default executor: every task in this process, in order, on the driver's own network
and contexts -- the path the engine always took, with a retry and a recorded error added for
a failing cell (a cell that passes the first time is trained exactly as before)."""
from __future__ import annotations

from typing import Sequence

from .base import ATTEMPTS, Job, failure, is_user_error
from .cells import CellOutcome, CellTask


class LocalExecutor:
    name = "local"

    def run(self, tasks: Sequence[CellTask], job: Job) -> list[CellOutcome]:
        out = []
        for task in tasks:
            outcome = None
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    cells = job.local(task)
                except Exception as err:  # noqa: BLE001 - a failing cell is recorded, the sweep goes on
                    if is_user_error(err):
                        raise
                    outcome = CellOutcome(task, [], failure(err), attempt, exception=err)
                    continue
                outcome = CellOutcome(task, [], None, attempt, live=list(cells))
                break
            assert outcome is not None
            job.done(outcome)
            out.append(outcome)
        return out

    def close(self) -> None:
        pass
