"""The scheduler: a periodic job of the sentinel's beacon that fires due schedules.

Each pass asks the store what is due (one call: the earliest entries of a sorted set by due
time, and the next due time after now), builds each firing and hands them all to the store,
which applies each atomically and at most once however many clusters race for it. Between
passes it sleeps until the next due time, but never longer than ``poll`` seconds, so a schedule
added elsewhere, due a second from now, still starts within that second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from qcore import EventBus, ScheduleSpec, ScheduleStore, get_logger
from qcore.events import TaskEnqueued

__all__ = ["ScheduleFired", "Scheduler"]

log = get_logger("qcluster.scheduler")


@dataclass(frozen=True, slots=True)
class ScheduleFired:
    """A schedule this cluster fired (``queued``) or found already fired and only advanced:
    what a store of record (Django's ``Schedule`` rows) copies. ``next_ms`` None: it will not
    fire again (done; a Once schedule)."""

    schedule_id: str
    due_ms: int
    next_ms: int | None
    repeats: int
    task_id: str
    queued: bool


class Scheduler:
    """Fires the schedules of ``store`` that are due for a cluster named ``cluster``.

    ``clock`` (epoch seconds) defaults to the store's, Redis's, which every cluster shares.
    ``on_fired`` is called with a :class:`ScheduleFired` after each firing this cluster applied
    (its errors are logged, never raised); ``events`` gets a ``TaskEnqueued`` for each firing
    this cluster queued, as a producer's bus does; ``on_start`` runs once at :meth:`start`.
    ``schedules`` are added at :meth:`start`;
    one already stored with the same definition keeps its state (a restart neither loses nor
    repeats a due time). A scheduler is a :class:`~qcluster.beacon.PeriodicJob`.
    """

    name = "scheduler"

    def __init__(
        self,
        store: ScheduleStore,
        *,
        cluster: str,
        catch_up: bool = True,
        schedules: Sequence[ScheduleSpec] = (),
        clock: Callable[[], float] | None = None,
        on_fired: Callable[[ScheduleFired], Any] | None = None,
        events: EventBus | None = None,
        on_start: Callable[[], Any] | None = None,
        poll: float = 0.5,
        batch: int = 1000,
    ) -> None:
        if not isinstance(store, ScheduleStore):
            raise TypeError(f"store must implement qcore.ScheduleStore, not {type(store).__name__}")
        self.store = store
        self.cluster = cluster
        self.catch_up = catch_up
        self.schedules = tuple(schedules)
        self.clock = clock
        self.on_fired = on_fired
        self.events = events
        self.on_start = on_start
        self.poll = poll
        self.batch = batch
        self.fired = 0
        self._started = False

    def _now_ms(self) -> int | None:
        return None if self.clock is None else int(self.clock() * 1000)

    def start(self) -> None:
        """Store the declared schedules (kept as they are when unchanged), then call
        ``on_start`` (a Django site's reconciliation of its rows with Redis). Runs on the first
        pass, and again on the next until it succeeds (Redis may be down at start-up)."""
        for spec in self.schedules:
            self.store.add(spec, keep=True, now_ms=self._now_ms())
        if self.on_start is not None:
            self.on_start()

    def run(self) -> float:
        """One pass: fire what is due; returns the seconds until the next pass."""
        if not self._started:
            self.start()
            self._started = True
        batch = self.store.due(self.cluster, now_ms=self._now_ms(), limit=self.batch)
        now = batch.now_ms
        again = False
        if batch.entries:
            loaded = self.store.load([sid for sid, _ in batch.entries])
            firings = []
            for sid, due in batch.entries:
                stored = loaded.get(sid)
                if stored is None:
                    continue  # removed meanwhile, or unverifiable (logged by the store)
                try:
                    firings.append(self.store.plan(stored, due, now, catch_up=self.catch_up))
                except Exception as exc:
                    log.error("schedule.plan_failed", schedule=sid, error=f"{exc!r}")
            results = self.store.fire(firings)
            for firing, result in zip(firings, results, strict=True):
                if result:
                    self._fired(firing, queued=result == 1)
                if firing.next_ms is not None and firing.next_ms <= now:
                    again = True  # catching up: the next occurrence is due already
            again = again or len(batch.entries) >= self.batch
        if again:
            return 0.0
        wait = self.poll
        if batch.next_ms is not None:
            wait = min(wait, max(0.0, (batch.next_ms - now) / 1000))
        return wait

    def _fired(self, firing: Any, *, queued: bool) -> None:
        spec = firing.stored.spec
        if queued:
            self.fired += 1
            log.info(
                "schedule.fired",
                schedule=spec.id,
                task_id=firing.task_id,
                due=firing.due_ms,
                late_ms=max(0, int(time.time() * 1000) - firing.due_ms),
            )
            events = self.events
            if events is not None and events.wants(TaskEnqueued):
                message = firing.message
                events.emit(TaskEnqueued(message.id, message, self.store.queue))
        if self.on_fired is None:
            return
        event = ScheduleFired(
            schedule_id=spec.id,
            due_ms=firing.due_ms,
            next_ms=firing.next_ms,
            repeats=firing.repeats,
            task_id=firing.task_id,
            queued=queued,
        )
        try:
            self.on_fired(event)
        except Exception as exc:
            log.error("schedule.on_fired_failed", schedule=spec.id, error=f"{exc!r}")
