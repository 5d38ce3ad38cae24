"""The sentinel: supervises one cluster's workers from start to stop.

It blocks in ``multiprocessing.connection.wait`` on every worker's process sentinel and on a
self-pipe written by its signal handlers, so a worker's death is noticed at once and a signal
is handled at once; between events it wakes at the nearest task deadline, at most every
``guard_cycle`` seconds, to enforce timeouts. It touches no worker's data but the worker's own
slot, which it only reads. Its parts: starting and replacing workers (:mod:`qcluster.spawning`),
deadlines (:mod:`qcluster.deadlines`), what a worker's exit means for its tasks
(:mod:`qcluster.losses`), the status (:mod:`qcluster.status`), the beacon (:mod:`qcluster.beacon`).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from qcluster import deadlines
from qcluster.beacon import Beacon, PeriodicJob
from qcluster.errors import ClusterError
from qcluster.exporter import ClusterCollector, MetricsServer
from qcluster.forking import ForkGuard
from qcluster.hookcalls import HookCalls
from qcluster.lifeline import watch_parent
from qcluster.losses import ExitHandler
from qcluster.ownership import ProcessIdentity, Reclaimer
from qcluster.preflight import preflight
from qcluster.records import DeadLetterBounds, OwedRecords
from qcluster.spawning import WorkerPool
from qcluster.states import ClusterState, KillReason
from qcluster.statewatch import Glance
from qcluster.status import Totals, cluster_status, queue_sizes
from qcluster.terminations import TerminationWatch
from qcluster.worker import WorkerSpec
from qcore import Owners, Preflight, StatusBoard, get_logger

__all__ = ["Sentinel"]

log = get_logger("qcluster.sentinel")

SIZES_EVERY = 1.0
"""Fewest seconds between reads of the queue's sizes for the status (they are read for the
publications every ``status_interval``, not for those of a worker's change)."""


class Sentinel:
    """Supervises one cluster's workers; :meth:`run` blocks until the cluster stopped."""

    def __init__(
        self,
        spec: WorkerSpec,
        *,
        status_board: StatusBoard | None = None,
        watch_parent: bool = False,
        ready: Any = None,
        jobs: Sequence[PeriodicJob] = (),
    ) -> None:
        self.spec = spec
        self.config = spec.config
        self.cluster_id = spec.cluster_id
        self.transport = spec.transport
        self.board = status_board
        self.watch_parent = watch_parent
        self.ready = ready
        ctx = multiprocessing.get_context(self.config.start_method)
        if self.config.start_method == "forkserver":
            # Replacement workers then start without importing Q again.
            ctx.set_forkserver_preload(["qcluster.worker"])
        self.state = ClusterState.STARTING
        self.totals = Totals()
        self._sizes: dict[str, int | None] | None = None
        self._sizes_at = 0.0
        # Published so a producer signing with another key can tell no cluster accepts it.
        self._key_ids = [kid.hex() for kid in spec.codec.signer.key_ids]
        self.started_at = time.time()
        self.stop_requested = False
        self.stop_now = False
        self.log = log.bind(cluster_id=self.cluster_id)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)
        # Held while the pipe is written or closed: a wake-up after the close must not write
        # into whatever file now has that descriptor's number (a Redis connection's socket).
        self._wake_lock = threading.Lock()
        self._reached = False  # Redis answered the start-up checks
        fork_guard = ForkGuard()
        self.pool = WorkerPool(spec, ctx, fork_guard, self.log)
        self.hooks = HookCalls(spec, ctx, fork_guard, self.log, self._wake)
        self.exits = ExitHandler(
            spec, self.pool, self.totals, self.log, self.hooks, owed=lambda: self.beacon.poke()
        )
        # Recorded with the queue so that a cluster on this host can prove us gone.
        identity = ProcessIdentity.here() if isinstance(self.transport, Owners) else None
        self.reclaimer = (
            Reclaimer(self.transport, self.cluster_id, identity, self.config.heartbeat)
            if identity is not None and isinstance(self.transport, Owners)
            else None
        )
        if self.reclaimer is not None:
            jobs = [*jobs, self.reclaimer]
        self.metrics: ClusterCollector | None = None
        self.metrics_server: MetricsServer | None = None
        if spec.metrics is not None and self.config.metrics_port is not None:
            self.metrics = ClusterCollector(
                spec.metrics, self.transport, self.pool.live, fork_guard
            )
            self.metrics_server = MetricsServer(
                self.metrics, host=self.config.metrics_host, port=self.config.metrics_port
            )
        self.beacon = Beacon(
            self.config,
            self.cluster_id,
            self.transport,
            self.pool.consumers,
            self.status,
            status_board,
            fork_guard,
            [
                *jobs,
                OwedRecords(spec, self.hooks),
                DeadLetterBounds(spec),
                TerminationWatch(self.pool, self.transport, self._wake),
            ],
            states=self.worker_states,
        )

    # -- public -----------------------------------------------------------------------------

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT (or :meth:`request_stop`); returns the exit code.

        The process's handlers of those signals are the sentinel's while it runs, and given
        back when it returns or raises (a service embedding a cluster keeps its own)."""
        previous = self._install_signals()
        try:
            return self._run()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _run(self) -> int:
        if self.watch_parent:
            watch_parent(self.request_stop)
        config = self.config
        self.log.info(
            "cluster.starting",
            name=config.name,
            queue=self.transport.queue,
            workers=config.workers,
            start_method=config.start_method,
            pid=os.getpid(),
        )
        self._serve_metrics()
        try:
            parts = [("transport", self.transport), ("store", self.spec.store)]
            parts.append(("status board", self.board))
            if not preflight(
                parts, fail_fast=config.fail_fast, log=self.log, sleep=self._sleep_unless_stopped
            ):
                return 0  # stopped while waiting for Redis: nothing started
            self._reached = True
            self.pool.start(config.workers)
            if self.metrics is not None:
                for index, cell in self.pool.cells.items():
                    self.metrics.cell(index, cell)
            self.beacon.prime()
            self.beacon.start()
            if self.ready is not None:  # someone waits in Cluster.start(): for every worker
                self.pool.wait_started(60, lambda: self.stop_requested)
            self.state = ClusterState.RUNNING
            self.log.info("cluster.started", workers=config.workers)
            # Published before a waiting start() returns: a started cluster is already seen
            # (qinfo, the admin, running tasks), however late this process is scheduled.
            self.beacon.publish()
            self._announce_ready()
            self._supervise()
        finally:
            self._shutdown()
        return 0

    def _serve_metrics(self) -> None:
        """Listen for scrapes before anything starts: a port in use stops the start at once."""
        if self.metrics_server is None:
            return
        try:
            port = self.metrics_server.start()
        except ClusterError as exc:
            self.log.error("cluster.metrics_failed", error=str(exc))
            if self.ready is not None:
                try:
                    self.ready.send(("error", str(exc)))
                    self.ready.close()
                except OSError:
                    pass
                self.ready = None
            self._close_wake()
            raise
        self.log.info("cluster.metrics", host=self.metrics_server.host, port=port)

    def _sleep_unless_stopped(self, seconds: float) -> bool:
        """Wait ``seconds`` (a signal cuts it short); True when a stop was asked for."""
        if not self.stop_requested:
            self._wait(seconds)
        return self.stop_requested

    def request_stop(self, now: bool = False) -> None:
        """Ask for a graceful stop (``now``: kill the workers at once). Thread-safe."""
        if now:
            self.stop_now = True
        self.stop_requested = True
        self._wake()

    def consumers(self) -> list[str]:
        """Consumer ids of the live workers (for heartbeats)."""
        return self.pool.consumers()

    def worker_states(self) -> list[Glance]:
        """Each live worker's state, task and count at a glance (the beacon looks 20 times a
        second)."""
        return [Glance((h.index, h.process.pid), *h.slot.glance()) for h in self.pool.live()]

    # -- signals ----------------------------------------------------------------------------

    def _install_signals(self) -> dict[int, Any]:
        """Handle SIGTERM, SIGINT and SIGQUIT; returns the handlers they had."""
        return {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
        }

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGQUIT or (self.stop_requested and signum == signal.SIGINT):
            self.stop_now = True  # a second Ctrl+C (or Ctrl+\\): no more waiting
        self.stop_requested = True
        self._wake()

    def _wake(self) -> None:
        # Never blocks (a signal handler calls it): when the lock is held the pipe is being
        # written, so a wake-up is on its way, or closed, so none is needed.
        if not self._wake_lock.acquire(blocking=False):
            return
        try:
            if self._wake_w >= 0:
                os.write(self._wake_w, b"!")
        except (BlockingIOError, OSError):
            pass  # the pipe is full: a wake-up is pending
        finally:
            self._wake_lock.release()

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except (BlockingIOError, OSError):
            pass

    # -- supervision ------------------------------------------------------------------------

    def _announce_ready(self) -> None:
        """Tell a waiting ``Cluster.start()`` that every worker is up (or gave up)."""
        if self.ready is None:
            return
        try:
            self.ready.send(os.getpid())
            self.ready.close()
        except OSError:
            pass
        self.ready = None

    def _supervise(self) -> None:
        while not self.stop_requested:
            self._wait(self._next_wake())
            self._collect(replace=True)
            deadlines.enforce(self.pool.live(), self.config)
            self.hooks.collect()
            if not self.stop_requested:
                self.pool.respawn_due()
                self.hooks.start_owed()

    def _next_wake(self) -> float:
        respawn = self.pool.next_respawn(time.monotonic())
        hook = self.hooks.seconds_to_deadline()
        if hook is not None:
            respawn = hook if respawn is None else min(respawn, hook)
        return deadlines.next_deadline(self.pool.live(), self.config, respawn)

    def _wait(self, timeout: float) -> None:
        waitables: list[Any] = [h.process.sentinel for h in self.pool.live()]
        waitables.extend(self.hooks.waitables())
        waitables.append(self._wake_r)
        ready = multiprocessing.connection.wait(waitables, timeout=timeout)
        if self._wake_r in ready:
            self._drain_wake()

    def _collect(self, *, replace: bool) -> None:
        for handle in self.pool.live():
            if handle.process.exitcode is not None:
                replacing = replace and not self.stop_requested
                if replacing:
                    # Counted first: a status published meanwhile (the beacon thread's) never
                    # shows the exit's outcome (timed out, lost) without the replacement.
                    self.totals.replaced += 1
                self.exits.on_exit(handle)
                if self.metrics is not None:
                    self.metrics.worker_gone(handle.index)
                if replacing:
                    self.pool.replace(handle)

    # -- stopping ---------------------------------------------------------------------------

    def _shutdown(self) -> None:
        if not self._reached:  # never reached Redis: no worker, no status, nothing to undo
            if self.metrics_server is not None:
                self.metrics_server.stop()
            self.state = ClusterState.STOPPED
            self.log.info("cluster.stopped", processed=0, failed=0)
            self._close_wake()
            return
        self.state = ClusterState.STOPPING
        self.log.info("cluster.stopping", grace=self.config.grace, now=self.stop_now)
        # One quick look: with Redis down, every call below would ride out the pools' retries
        # and the stop would take minutes. Skipped instead, what the workers hold stays in
        # flight, and a reaper takes it back once Redis returns (nothing is lost).
        offline = isinstance(self.transport, Preflight) and not self.transport.reachable()
        if offline:
            self.log.error(
                "redis.unreachable",
                detail="stopping without releasing the workers' tasks: the reaper returns them",
            )
            self.exits.offline = True
        else:
            self.beacon.publish()
        self.pool.signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self.config.grace
        while self.pool.live() and not self.stop_now:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wait(min(remaining, self._next_wake()))
            self._collect(replace=False)
            deadlines.enforce(self.pool.live(), self.config)
        for handle in self.pool.live():
            if handle.kill is None:
                reason = KillReason.STOP_NOW if self.stop_now else KillReason.GRACE_EXPIRED
                deadlines.kill(handle, reason, handle.slot.read())
        for handle in self.pool.live():
            self.exits.on_exit(handle)
        # The hooks of records saved on this side get what is left of the grace.
        self.hooks.finish(until=0.0 if self.stop_now else deadline)
        self.beacon.stop(timeout=1.0 if offline else 10.0)
        if self.reclaimer is not None and not offline:
            self.reclaimer.close()
        if self.metrics_server is not None:
            self.metrics_server.stop()
        self.state = ClusterState.STOPPED
        if self.board is not None and not offline:
            try:
                self.board.remove(self.cluster_id)
            except Exception as exc:
                self.log.warning("cluster.status_failed", error=str(exc))
        self.log.info("cluster.stopped", processed=self.totals.processed, failed=self.totals.failed)
        self._close_wake()

    def _close_wake(self) -> None:
        with self._wake_lock:
            fds, self._wake_r, self._wake_w = (self._wake_r, self._wake_w), -1, -1
        for fd in fds:
            if fd >= 0:
                os.close(fd)

    # -- status -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The cluster's status, as published to the status board. The queue's sizes are read
        about once per ``status_interval`` (at least :data:`SIZES_EVERY` seconds apart): a
        worker's change of state is published within 0.2 s, and costs no Redis read but the
        publication (on a busy cluster that is five a second; see tools/bench/README.md,
        'Status on change')."""
        now = time.monotonic()
        every = max(SIZES_EVERY, 0.9 * self.config.status_interval)
        if self._sizes is None or now - self._sizes_at >= every:
            self._sizes, self._sizes_at = queue_sizes(self.transport), now
        return cluster_status(
            cluster_id=self.cluster_id,
            config=self.config,
            state=self.state,
            started_at=self.started_at,
            handles=self.pool.live(),
            totals=self.totals,
            transport=self.transport,
            metrics_port=None if self.metrics_server is None else self.metrics_server.port,
            sizes=self._sizes,
            key_ids=self._key_ids,
        )
