"""Coroutine tasks awaited side by side in a worker's event loop (``async_concurrency`` > 1).

:class:`Awaits` keeps what a processor awaits: it starts each task's awaitable in the
:class:`~qcluster.eventloop.TaskLoop` with its timeout, lists it in the worker's slot (so a
worker lost mid-await has each attempt counted), and shows the sentinel the one with the
nearest deadline, ``LOOP_BACKSTOP`` seconds past its timeout: the loop cancels a task at its
timeout, the sentinel's kill is for a loop that sync code blocks.
"""

from __future__ import annotations

import time

from qcluster.eventloop import Settled, TaskLoop
from qcluster.execution import Awaiting
from qcluster.tracking import InFlight, Tracker
from qcore import Delivery, TaskMessage

__all__ = ["LOOP_BACKSTOP", "Awaits"]

LOOP_BACKSTOP = 2.0
"""Seconds past a coroutine task's timeout before the sentinel kills its worker (the loop
cancels it at its timeout, unless sync code blocks the loop)."""


class Awaits:
    """The coroutine tasks one processor awaits at once, up to ``concurrency``."""

    def __init__(self, loop: TaskLoop, tracker: Tracker, concurrency: int) -> None:
        self.loop = loop
        self.tracker = tracker
        self.concurrency = concurrency
        self._inflight: dict[int, InFlight] = {}
        self._next_key = 0
        self._free = list(range(concurrency)) if concurrency > 1 else []
        """The slot's free entries."""
        self._watched: InFlight | None = None
        """The one the slot shows (found again only when it ends: O(1) per start)."""

    def __len__(self) -> int:
        return len(self._inflight)

    @property
    def room(self) -> int:
        """How many more may start now."""
        return max(0, self.concurrency - len(self._inflight))

    def start(
        self,
        message: TaskMessage,
        delivery: Delivery,
        awaiting: Awaiting,
        attempt: int,
        timeout: float | None,
    ) -> None:
        """Await ``awaiting`` beside the others (it runs while :meth:`wait` does)."""
        key = self._next_key = self._next_key + 1
        deadline = time.monotonic() + timeout + LOOP_BACKSTOP if timeout else 0.0
        index = self._free.pop() if self._free else -1
        entry = InFlight(
            message, delivery, awaiting, attempt, timeout, index, time.time(), deadline
        )
        self._inflight[key] = entry
        self.tracker.awaiting_start(index, message.id, delivery.attempt, delivery.max_attempts)
        self.loop.start(key, awaiting.awaitable, timeout)
        watched = self._watched
        if watched is None or _nearest(entry) < _nearest(watched):
            watched = self._watched = entry
        if watched.deadline:
            # The slot shows this task as begun, killed at its timeout: show the one whose
            # backstop comes first instead. Without timeouts, what it shows is all the same.
            self.watch()

    def wait(self, timeout: float | None) -> list[tuple[InFlight, Settled]]:
        """Run the loop until some ended (or ``timeout`` seconds passed); what ended."""
        out = []
        for key, settled in self.loop.wait(timeout):
            entry = self._inflight.pop(key)
            if entry is self._watched:
                self._watched = None
            self.tracker.awaiting_end(entry.entry)
            if entry.entry >= 0:
                self._free.append(entry.entry)
            out.append((entry, settled))
        return out

    def watch(self) -> None:
        """Show the sentinel the task with the nearest deadline (else the oldest)."""
        entry = self._watched
        if entry is None:
            if not self._inflight:
                return
            entry = self._watched = min(self._inflight.values(), key=_nearest)
        message, delivery = entry.message, entry.delivery
        self.tracker.show(
            message.id,
            message.name,
            message.func_path,
            attempt=delivery.attempt,
            max_attempts=delivery.max_attempts,
            token=delivery.token,
            started=entry.started,
            deadline=entry.deadline,
            timeout=entry.timeout,
            due=message.due,
        )


def _nearest(entry: InFlight) -> tuple[float, float]:
    return (entry.deadline or float("inf"), entry.started)
