"""Terminating cancelled tasks: a periodic job of the beacon asks the transport which of the
tasks this cluster's workers run are to be terminated (``cancel(task_id, terminate=True)``),
marks those workers, and wakes the sentinel, which kills them (:mod:`qcluster.deadlines`) and
sends each task's cancelled twin on (:mod:`qcluster.losses`)."""

from __future__ import annotations

from collections.abc import Callable

from qcluster.spawning import WorkerPool
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
        running = {}
        for handle in self.pool.live():
            view = handle.slot.read()
            if view.running is not None and handle.kill is None:
                running[view.running] = (handle, view.token)
        if running:
            doomed = self.transport.terminations(running)
            for task_id in doomed:
                handle, token = running[task_id]
                handle.terminate = token
            if doomed:
                self.wake()
        return TERMINATION_POLL
