"""Coroutine tasks awaited side by side in a worker's event loop (``async_concurrency`` > 1).

:class:`Awaits` keeps what a processor awaits: it starts each task's awaitable in the
:class:`~qcluster.eventloop.TaskLoop` with its timeout, lists it in the worker's slot (so a
worker lost mid-await has each attempt counted), and shows the sentinel the one with the
nearest deadline, ``LOOP_BACKSTOP`` seconds past its timeout: the loop cancels a task at its
timeout, the sentinel's kill is for a loop that sync code blocks.

Each slot entry carries what the status shows of a running task (id, name, func, start,
attempt), and the sentinel's mark when the task's termination was asked: at least every
``CANCEL_TICK`` seconds while it waits, the processor looks for marks and cancels those
coroutines in the loop (their record is a cancelled task's); the sentinel's kill stays the
backstop for a loop that sync code blocks.
"""

from __future__ import annotations

import time

from qcluster.eventloop import Settled, TaskLoop
from qcluster.execution import Awaiting
from qcluster.tracking import InFlight, Tracker
from qcore import Delivery, TaskMessage

__all__ = ["CANCEL_TICK", "LOOP_BACKSTOP", "Awaits"]

CANCEL_TICK = 0.1
"""Seconds between looks for the sentinel's termination marks while the loop runs."""
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
        self._terminated: set[int] = set()
        """Keys of the coroutines cancelled at the sentinel's mark."""
        self._next_look = 0.0

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
        self.tracker.awaiting_start(
            index,
            message.id,
            delivery.attempt,
            delivery.max_attempts,
            token=delivery.token,
            started=entry.started,
            name=message.name,
            func=message.func_path,
        )
        self.loop.start(key, awaiting.awaitable, timeout)
        watched = self._watched
        if watched is None or _nearest(entry) < _nearest(watched):
            watched = self._watched = entry
        if watched.deadline:
            # The slot shows this task as begun, killed at its timeout: show the one whose
            # backstop comes first instead. Without timeouts, what it shows is all the same.
            self.watch()

    def wait(self, timeout: float | None) -> list[tuple[InFlight, Settled, bool]]:
        """Run the loop until some ended (or ``timeout`` seconds passed); what ended, each
        with True when it was cancelled at the sentinel's mark (its termination asked)."""
        until = None if timeout is None else time.monotonic() + timeout
        while True:
            now = time.monotonic()
            step = CANCEL_TICK if until is None else max(0.0, min(CANCEL_TICK, until - now))
            ended = self.loop.wait(step)
            if time.monotonic() >= self._next_look:
                self._cancel_marked()
            if ended or (until is not None and time.monotonic() >= until):
                break
        out = []
        for key, settled in ended:
            entry = self._inflight.pop(key)
            if entry is self._watched:
                self._watched = None
            self.tracker.awaiting_end(entry.entry)
            if entry.entry >= 0:
                self._free.append(entry.entry)
            terminated = key in self._terminated
            if terminated:
                self._terminated.discard(key)
            out.append((entry, settled, terminated))
        return out

    def _cancel_marked(self) -> None:
        """Cancel the coroutines whose entry the sentinel marked with their token."""
        self._next_look = time.monotonic() + CANCEL_TICK
        asked = self.tracker.cancel_asked
        for key, entry in self._inflight.items():
            token = entry.delivery.token
            marked = token and key not in self._terminated and asked(entry.entry) == token
            if marked and self.loop.cancel(key):
                self._terminated.add(key)

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
