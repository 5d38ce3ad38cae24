"""Terminating cancelled tasks: a periodic job of the beacon asks the transport which of the
tasks this cluster's workers run are to be terminated (``cancel(task_id, terminate=True)``).

A task a worker runs on its own (the one its slot shows) costs that worker: the job marks
it, and wakes the sentinel, which kills it (:mod:`qcluster.deadlines`) and sends the task's
cancelled twin on (:mod:`qcluster.losses`). A coroutine task awaited beside others
(``async_concurrency`` > 1) is marked in its slot's awaiting entry instead: the worker's loop
sees the mark within its tick and cancels that coroutine alone, saving it as cancelled. One
still listed ``LOOP_BACKSTOP`` seconds after its mark (sync code blocks the loop) has its
worker killed, the same way."""

from __future__ import annotations

import time
from collections.abc import Callable

from qcluster.awaits import LOOP_BACKSTOP
from qcluster.slot import AwaitingTask
from qcluster.spawning import WorkerHandle, WorkerPool
from qcore import Transport

__all__ = ["TERMINATION_POLL", "TerminationWatch"]

TERMINATION_POLL = 0.5
"""Seconds between looks (one Redis call each, only while a worker runs a task)."""


class TerminationWatch:
    """The periodic job (see :class:`qcluster.beacon.PeriodicJob`)."""

    name = "terminations"

    def __init__(self, pool: WorkerPool, transport: Transport, wake: Callable[[], None]) -> None:
        self.pool = pool
        self.transport = transport
        self.wake = wake

    def run(self) -> float:
        running: dict[str, tuple[WorkerHandle, int, AwaitingTask | None]] = {}
        for handle in self.pool.live():
            if handle.kill is not None:
                continue
            view = handle.slot.read()
            if view.running is not None:
                running[view.running] = (handle, view.token, None)
            for task in handle.slot.awaiting(live=True):
                running[task.task_id] = (handle, task.token, task)
        if not running:
            return TERMINATION_POLL
        doomed = self.transport.terminations(running)
        now = time.monotonic()
        woken = False
        for task_id in doomed:
            handle, token, awaited = running[task_id]
            if awaited is None:
                handle.terminate = token
                woken = True
                continue
            asked = handle.cancelling.setdefault(task_id, now)
            if asked == now:
                handle.slot.ask_cancel(awaited.index, token)
            elif now - asked >= LOOP_BACKSTOP:
                handle.terminate_awaited = awaited
                woken = True
        for handle in self.pool.live():
            for task_id in [t for t in handle.cancelling if t not in running]:
                del handle.cancelling[task_id]  # it ended
        if woken:
            self.wake()
        return TERMINATION_POLL
