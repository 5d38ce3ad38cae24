"""What a processor tells its worker's slot (:class:`Tracker`), and the records of a batch
on their way: :class:`Done` (ran, waiting to be saved and acked) and :class:`InFlight` (a
coroutine task awaited beside others)."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from qcluster.execution import Awaiting
from qcluster.states import WorkerState
from qcore import Delivery, TaskMessage
from qcore.events import TaskOutcome

__all__ = ["Done", "InFlight", "NoTracker", "Tracker"]


class Tracker(Protocol):
    """Who is told what the processor is doing: a worker's slot, read by its sentinel."""

    def begin(
        self,
        task_id: str,
        name: str,
        func: str,
        *,
        attempt: int,
        max_attempts: int,
        token: int,
        timeout: float | None,
        due: float = 0.0,
    ) -> None: ...

    def end(self, success: bool, run_time: float | None = None) -> None: ...

    def set_state(self, state: WorkerState) -> None: ...

    def show(
        self,
        task_id: str,
        name: str,
        func: str,
        *,
        attempt: int,
        max_attempts: int,
        token: int,
        started: float,
        deadline: float,
        timeout: float | None,
        due: float = 0.0,
    ) -> None: ...

    def awaiting_start(
        self,
        index: int,
        task_id: str,
        attempt: int,
        max_attempts: int,
        *,
        token: int = 0,
        started: float = 0.0,
        name: str = "",
        func: str = "",
    ) -> None: ...

    def awaiting_end(self, index: int) -> None: ...

    def cancel_asked(self, index: int) -> int: ...


class NoTracker:
    """Nobody watches: the in-process ``join()`` has no sentinel."""

    def begin(self, *args: Any, **kwargs: Any) -> None:
        pass

    def end(self, success: bool, run_time: float | None = None) -> None:
        pass

    def set_state(self, state: WorkerState) -> None:
        pass

    def show(self, *args: Any, **kwargs: Any) -> None:
        pass

    def awaiting_start(self, *args: Any, **kwargs: Any) -> None:
        pass

    def awaiting_end(self, index: int) -> None:
        pass

    def cancel_asked(self, index: int) -> int:
        return 0


Done = TaskOutcome
"""A task that ran (or could not be opened) and waits to be saved and acked, or (with
``retry``, seconds) to go back for another attempt: what a batch's
:class:`~qcore.events.TasksSettled` carries, as it is."""


class InFlight(NamedTuple):
    """A coroutine task being awaited beside others (``async_concurrency`` > 1)."""

    message: TaskMessage
    delivery: Delivery
    awaiting: Awaiting
    attempt: int
    timeout: float | None
    entry: int
    """Its entry in the slot's list of awaited tasks."""
    started: float
    """Wall-clock time it started."""
    deadline: float
    """``time.monotonic()`` past which the sentinel kills the worker (0: never)."""
