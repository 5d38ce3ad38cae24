"""The sentinel's background thread: heartbeats, the reaper, status publication and periodic
jobs (the scheduler).

The status is published every ``status_interval`` seconds, and also as soon as a worker's state
changes (a task starts or ends, a worker is replaced): the thread glances at the workers' slots
every :data:`WATCH` seconds (memory reads, no I/O) and publishes a change that held for one
glance (:mod:`qcluster.statewatch`) at most every :data:`MIN_GAP` seconds, so a live view shows
it within half a second whatever the load, at a bounded cost (a flood of short tasks is
published when it starts and when it ends, not five times a second).

Heartbeats come from this thread and not from workers' fetches, so a worker busy for an hour
in one CPU-bound task keeps its tasks: only a dead sentinel stops the heartbeat, and then
another cluster's reaper takes the work back after ``retry`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from qcluster.config import ClusterConfig
from qcluster.forking import ForkGuard
from qcluster.statewatch import Glance, StateWatch
from qcore import StatusBoard, Transport, get_logger

__all__ = ["Beacon", "PeriodicJob"]

log = get_logger("qcluster.beacon")

JOB_RETRY = 1.0
"""Seconds before a job whose pass raised runs again."""
WATCH = 0.1
"""Seconds between glances at the workers' states, for publishing a change (a change that held
for one glance is on the board within ``2 * WATCH + MIN_GAP``: 0.4 s). Each wake-up of this
thread costs tens of microseconds of CPU on a loaded machine: 20 a second were most of what
publishing on change cost (tools/bench/README.md, 'Status on change')."""
MIN_GAP = 0.2
"""Fewest seconds between two publications of the status (changes are published no faster)."""


class PeriodicJob(Protocol):
    """A job the beacon runs at once, then again after the seconds each ``run()`` returns
    (under the fork guard; what it raises is logged, and it runs again a second later)."""

    name: str

    def run(self) -> float: ...


class Beacon(threading.Thread):
    """Heartbeat every ``heartbeat`` s, reap as often, publish status every ``status_interval``."""

    def __init__(
        self,
        config: ClusterConfig,
        cluster_id: str,
        transport: Transport,
        consumers: Callable[[], list[str]],
        status: Callable[[], Mapping[str, Any]],
        board: StatusBoard | None,
        guard: ForkGuard | None = None,
        jobs: Sequence[PeriodicJob] = (),
        states: Callable[[], Sequence[Glance]] | None = None,
    ) -> None:
        super().__init__(name="q-beacon", daemon=True)
        # Held around each call that does I/O (and logs): the sentinel forks only while it
        # holds the guard itself, so no lock of this thread's is ever copied held.
        self.guard = guard if guard is not None else ForkGuard()
        self.config = config
        self.cluster_id = cluster_id
        self.transport = transport
        self.consumers = consumers
        self.status = status
        self.board = board
        self.jobs = list(jobs)
        self.watch = None if states is None else StateWatch(states)
        """What the workers are doing, glanced at in their slots (None: publish on the
        interval only)."""
        self._published_at = 0.0
        self._first_job_runs: list[float] = []
        self._stop_event = threading.Event()
        # Held while nobody poked: released by poke(), taken back by the waiting thread. A
        # plain lock's timed acquire costs less than Event.wait (a Condition) at each wake-up.
        self._poked = threading.Lock()
        self._poked.acquire()
        self.last_beat_ok = time.monotonic()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop, waiting up to ``timeout`` s for a pass under way (a daemon thread: one
        stuck in a call to an unreachable Redis is left behind)."""
        self._stop_event.set()
        self.poke()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=timeout)

    def prime(self) -> None:
        """Run each job's first pass now, in the caller's thread (the sentinel, before it says
        the cluster is ready: a Django site's schedules are reconciled by then); the thread
        takes over from there. A pass that fails is retried by the thread a second later."""
        now = time.monotonic()
        self._first_job_runs = []
        for job in self.jobs:
            with self.guard:
                delay = self._run_job(job)
            self._first_job_runs.append(now + (JOB_RETRY if delay is None else delay))

    def run(self) -> None:
        config = self.config
        now = time.monotonic()
        next_beat = next_reap = now
        next_status = now + min(0.5, config.status_interval)
        next_job = self._first_job_runs or [now] * len(self.jobs)
        watching = self.board is not None and self.watch is not None
        next_watch = now + WATCH
        while True:
            now = time.monotonic()
            if now >= next_beat:
                with self.guard:
                    self.beat()
                next_beat = now + config.heartbeat
            if now >= next_reap:
                with self.guard:
                    self._reap()
                next_reap = now + config.heartbeat
            if self.board is not None and now >= next_status:
                with self.guard:
                    self.publish()
                next_status = now + config.status_interval
            elif watching and now >= next_watch:
                # Every glance counts (a change must hold for one); the gap only delays it.
                if self._changed() and now - self._published_at >= MIN_GAP:
                    with self.guard:
                        self.publish()
                next_watch = now + WATCH
            for i, job in enumerate(self.jobs):
                if now >= next_job[i]:
                    with self.guard:
                        delay = self._run_job(job)
                    next_job[i] = time.monotonic() + (JOB_RETRY if delay is None else delay)
            wake = min(next_beat, next_reap, *next_job)
            if self.board is not None:
                wake = min(wake, next_status)
            if watching:
                wake = min(wake, next_watch)
            if self._poked.acquire(timeout=max(0.0, wake - time.monotonic())):
                next_job = [time.monotonic()] * len(self.jobs)
            if self._stop_event.is_set():
                return

    def poke(self) -> None:
        """Run every periodic job now (a dead letter is owed its record, say). Thread-safe."""
        try:
            self._poked.release()
        except RuntimeError:
            pass  # poked already, and not yet woken

    def beat(self) -> None:
        """One heartbeat for every live consumer of this cluster."""
        try:
            self.transport.heartbeat(self.consumers(), ttl=self.config.retry)
        except Exception as exc:
            silent = time.monotonic() - self.last_beat_ok
            log.error(
                "cluster.heartbeat_failed",
                cluster_id=self.cluster_id,
                error=str(exc),
                silent_for=round(silent, 1),
                detail="after retry seconds without a heartbeat, other clusters take our tasks",
            )
            return
        self.last_beat_ok = time.monotonic()

    def _run_job(self, job: PeriodicJob) -> float | None:
        try:
            return job.run()
        except Exception as exc:
            log.error(
                "cluster.job_failed", cluster_id=self.cluster_id, job=job.name, error=repr(exc)
            )
            return None

    def _reap(self) -> None:
        try:
            reaped = self.transport.reap()
        except Exception as exc:
            log.error("cluster.reap_failed", cluster_id=self.cluster_id, error=str(exc))
            return
        if reaped.consumers or reaped.requeued or reaped.dead_lettered:
            log.warning(
                "cluster.reaped",
                cluster_id=self.cluster_id,
                consumers=reaped.consumers,
                requeued=reaped.requeued,
                dead_lettered=reaped.dead_lettered,
            )

    def _changed(self) -> bool:
        assert self.watch is not None
        try:
            return self.watch.look()
        except Exception:  # a slot read while its worker is replaced: look again next time
            return False

    def publish(self) -> None:
        """Publish the status now (also called by the sentinel on state changes)."""
        if self.board is None:
            return
        if self.watch is not None:
            self.watch.published()
        self._published_at = time.monotonic()
        try:
            ttl = max(self.config.status_interval * 3, 10.0)
            self.board.publish(self.cluster_id, self.status(), ttl=ttl)
        except Exception as exc:
            log.warning("cluster.status_failed", cluster_id=self.cluster_id, error=str(exc))
