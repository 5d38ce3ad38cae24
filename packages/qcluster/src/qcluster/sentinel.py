"""The sentinel: starts the workers, watches them, replaces them, and stops them.

It blocks in ``multiprocessing.connection.wait`` on every worker's process sentinel and on a
self-pipe written by its signal handlers, so a worker's death is noticed at once and a signal
is handled at once; between events it wakes at the nearest task deadline, at most every
``guard_cycle`` seconds, to enforce timeouts. It touches no worker's data but the worker's own
slot, which it only reads.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from qcluster.beacon import Beacon
from qcluster.forking import ForkGuard
from qcluster.lifeline import watch_parent
from qcluster.losses import describe_exit, lost_record
from qcluster.slot import Slot, SlotView
from qcluster.states import ClusterState, ExitCode, KillReason, WorkerState
from qcluster.worker import WorkerSpec, worker_main
from qcore import Delivery, StatusBoard, TaskResult, get_logger

__all__ = ["Sentinel"]

log = get_logger("qcluster.sentinel")

_MIN_WAIT = 0.005
_SAVE_TRIES = 5


@dataclass(eq=False)
class _Handle:
    index: int
    generation: int
    consumer: str
    process: BaseProcess
    slot: Slot
    born: float = field(default_factory=time.monotonic)
    kill: KillReason | None = None
    kill_view: SlotView | None = None


@dataclass
class _Totals:
    processed: int = 0
    failed: int = 0
    replaced: int = 0
    timed_out: int = 0
    lost: int = 0
    recycled: int = 0


class Sentinel:
    """Supervises one cluster's workers; :meth:`run` blocks until the cluster stopped."""

    def __init__(
        self,
        spec: WorkerSpec,
        *,
        status_board: StatusBoard | None = None,
        watch_parent: bool = False,
        ready: Any = None,
    ) -> None:
        self.spec = spec
        self.config = spec.config
        self.cluster_id = spec.cluster_id
        self.transport = spec.transport
        self.board = status_board
        self.watch_parent = watch_parent
        self.ready = ready
        self.ctx = multiprocessing.get_context(self.config.start_method)
        if self.config.start_method == "forkserver":
            # Replacement workers then start without importing Q again.
            self.ctx.set_forkserver_preload(["qcluster.worker"])
        self.state = ClusterState.STARTING
        self.handles: dict[int, _Handle] = {}
        self.generations: dict[int, int] = {}
        self.slots: dict[int, Slot] = {}
        self.totals = _Totals()
        self.started_at = time.time()
        self.stop_requested = False
        self.stop_now = False
        self.respawn_at: dict[int, float] = {}
        self.init_failures: dict[int, int] = {}
        self.log = log.bind(cluster_id=self.cluster_id)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)
        self._lock = threading.Lock()
        self._fork_guard = ForkGuard()
        self.beacon = Beacon(
            self.config,
            self.cluster_id,
            self.transport,
            self.consumers,
            self.status,
            status_board,
            self._fork_guard,
        )

    # -- public -----------------------------------------------------------------------------

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT (or :meth:`request_stop`); returns the exit code."""
        self._install_signals()
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
        try:
            for index in range(config.workers):
                self.slots[index] = Slot(self.ctx)
                self._spawn(index)
            self.beacon.start()
            # After the workers are off: it is advice, and costs round trips.
            self._check_server()
            self._announce_ready()
            self.state = ClusterState.RUNNING
            self.log.info("cluster.started", workers=config.workers)
            self.beacon.publish()
            self._supervise()
        finally:
            self._shutdown()
        return 0

    def _check_server(self) -> None:
        """Warn at start-up when the transport's server could lose queued tasks.

        A transport may offer ``check_server()`` (``qredis.RedisTransport`` does: appendonly
        off, or a ``maxmemory-policy`` that evicts). Q's promises assume neither.
        """
        check = getattr(self.transport, "check_server", None)
        if not callable(check):
            return
        try:
            warnings = list(check())
        except Exception as exc:
            self.log.warning("redis.settings_unknown", error=str(exc))
            return
        for warning in warnings:
            self.log.warning("redis.settings", detail=warning)

    def request_stop(self, now: bool = False) -> None:
        """Ask for a graceful stop (``now``: kill the workers at once). Thread-safe."""
        if now:
            self.stop_now = True
        self.stop_requested = True
        self._wake()

    def consumers(self) -> list[str]:
        """Consumer ids of the live workers (for heartbeats)."""
        with self._lock:
            return [h.consumer for h in self.handles.values()]

    # -- signals ----------------------------------------------------------------------------

    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGQUIT, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGQUIT or (self.stop_requested and signum == signal.SIGINT):
            self.stop_now = True  # a second Ctrl+C (or Ctrl+\\): no more waiting
        self.stop_requested = True
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"!")
        except (BlockingIOError, OSError):
            pass  # the pipe is full or closed: a wake-up is pending or not needed

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except (BlockingIOError, OSError):
            pass

    # -- workers ----------------------------------------------------------------------------

    def _spawn(self, index: int) -> _Handle:
        generation = self.generations.get(index, 0) + 1
        self.generations[index] = generation
        consumer = f"{self.cluster_id}.{index}.{generation}"
        try:
            # Registered with our time-to-live before it can fetch anything.
            self.transport.heartbeat([consumer], ttl=self.config.retry)
        except Exception as exc:
            self.log.warning("cluster.heartbeat_failed", consumer=consumer, error=str(exc))
        # The dead worker's record must not be read as the new one's (a past deadline).
        self.slots[index].reset(0)
        process = self.ctx.Process(  # type: ignore[attr-defined]
            target=worker_main,
            args=(self.spec, self.slots[index], consumer),
            name=f"qcluster-worker-{index}",
        )
        self._fork_guard.start(process, freeze=self.config.start_method == "fork")
        handle = _Handle(index, generation, consumer, process, self.slots[index])
        with self._lock:
            self.handles[index] = handle
        self.log.debug("worker.spawned", index=index, pid=process.pid, consumer=consumer)
        return handle

    def _announce_ready(self) -> None:
        """Tell a waiting ``Cluster.start()`` once every worker is up (or gave up)."""
        if self.ready is None:
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not self.stop_requested:
            views = [h.slot.read() for h in self.handles.values()]
            exited = [h for h in self.handles.values() if h.process.exitcode is not None]
            if exited or all(v.state is not WorkerState.STARTING for v in views):
                break
            time.sleep(0.005)
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
            self._enforce_deadlines()
            self._respawn_due()

    def _respawn_due(self) -> None:
        now = time.monotonic()
        for index, when in list(self.respawn_at.items()):
            if now >= when and not self.stop_requested:
                del self.respawn_at[index]
                self._spawn(index)

    def _next_wake(self) -> float:
        wake = self.config.guard_cycle
        now = time.monotonic()
        for when in self.respawn_at.values():
            wake = min(wake, when - now)
        hook_timeout = self.config.hook_timeout
        for handle in self.handles.values():
            if handle.kill is not None:
                continue
            view = handle.slot.read()
            if view.state is WorkerState.RUNNING and view.deadline:
                wake = min(wake, view.deadline - now)
            elif view.state is WorkerState.HOOK:
                wake = min(wake, view.since + hook_timeout - now)
        return max(wake, _MIN_WAIT)

    def _wait(self, timeout: float) -> None:
        waitables: list[Any] = [h.process.sentinel for h in self.handles.values()]
        waitables.append(self._wake_r)
        ready = multiprocessing.connection.wait(waitables, timeout=timeout)
        if self._wake_r in ready:
            self._drain_wake()

    def _collect(self, *, replace: bool) -> None:
        for handle in list(self.handles.values()):
            if handle.process.exitcode is not None:
                self._on_exit(handle)
                if replace and not self.stop_requested:
                    self.totals.replaced += 1
                    self._replace(handle)

    def _replace(self, handle: _Handle) -> None:
        """Start a worker in the dead one's place; back off if workers fail to start."""
        if handle.process.exitcode == ExitCode.INIT_FAILED:
            failures = self.init_failures.get(handle.index, 0) + 1
            self.init_failures[handle.index] = failures
            delay = min(0.5 * 2 ** (failures - 1), 30.0)
            self.log.warning("worker.respawn_delayed", index=handle.index, delay=delay)
            self.respawn_at[handle.index] = time.monotonic() + delay
            return
        self.init_failures.pop(handle.index, None)
        self._spawn(handle.index)

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for handle in list(self.handles.values()):
            if handle.kill is not None:
                continue
            view = handle.slot.read()
            if view.torn:
                continue
            if view.state is WorkerState.RUNNING and view.deadline and now >= view.deadline:
                self._kill(handle, KillReason.TIMEOUT, view)
            elif view.state is WorkerState.HOOK and now - view.since >= self.config.hook_timeout:
                self._kill(handle, KillReason.HOOK_TIMEOUT, view)

    def _kill(self, handle: _Handle, reason: KillReason, view: SlotView | None = None) -> None:
        """SIGKILL: a task that ignores SIGTERM or is stuck in a system call still dies."""
        handle.kill = reason
        handle.kill_view = view
        pid = handle.process.pid
        if pid is not None and handle.process.exitcode is None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # -- a worker ended ---------------------------------------------------------------------

    def _on_exit(self, handle: _Handle) -> None:
        handle.process.join()
        code = handle.process.exitcode
        view = handle.slot.read(tries=3)
        with self._lock:
            self.handles.pop(handle.index, None)
        self.totals.processed += view.processed
        self.totals.failed += view.failed
        consumer = handle.consumer
        running = view.running
        fields = {"index": handle.index, "pid": handle.process.pid, "consumer": consumer}
        try:
            if handle.kill is KillReason.TIMEOUT and self._same_task(handle.kill_view, view):
                self._timed_out(handle, view)
            elif running is not None:
                self._lost_running(handle, view, code)
            else:
                self.transport.release(consumer)
            self.transport.forget([consumer])
        except Exception as exc:
            # The consumer's heartbeat stops with it: the reaper returns its tasks after retry.
            self.log.error("worker.release_failed", error=str(exc), **fields)
        self._log_exit(handle, view, code, fields)

    @staticmethod
    def _same_task(before: SlotView | None, after: SlotView) -> bool:
        return (
            before is not None
            and after.running is not None
            and (before.task_id, before.token) == (after.task_id, after.token)
        )

    def _timed_out(self, handle: _Handle, view: SlotView) -> None:
        self.totals.timed_out += 1
        self.totals.failed += 1
        error = (
            f"TimeoutError: the task timed out after {view.timeout:g} s "
            f"(its worker, pid {handle.process.pid}, was killed)"
        )
        record = self._record(view, error)
        self.log.warning(
            "task.timed_out",
            task_id=view.task_id,
            name=view.name,
            func=view.func,
            attempt=view.attempt,
            timeout=view.timeout,
        )
        if self._save(record):
            self.transport.ack([self._delivery(handle, view)])
            self.transport.release(handle.consumer)
        else:
            # Unsaved work is never acked: run it again rather than lose it.
            self.transport.release(handle.consumer, started={view.task_id})

    def _lost_running(self, handle: _Handle, view: SlotView, code: int | None) -> None:
        self.totals.lost += 1
        how = describe_exit(code)
        task_id = view.task_id
        if view.attempt >= view.max_attempts:
            error = (
                f"WorkerLost: the worker running the task was lost ({how}) on attempt "
                f"{view.attempt} of {view.max_attempts}; the task was dead-lettered"
            )
            record = self._record(view, error)
            self._save(record)
            reaped = self.transport.release(handle.consumer, started={task_id})
            self.totals.failed += 1
            self.log.error(
                "task.dead_lettered",
                task_id=task_id,
                name=view.name,
                func=view.func,
                attempt=view.attempt,
                reason=error,
                dead_lettered=reaped.dead_lettered,
            )
            return
        self.transport.release(handle.consumer, started={task_id})
        self.log.warning(
            "task.requeued",
            task_id=task_id,
            name=view.name,
            func=view.func,
            attempt=view.attempt,
            max_attempts=view.max_attempts,
            reason=f"worker {how}",
        )

    def _record(self, view: SlotView, error: str) -> TaskResult:
        return lost_record(
            view,
            error,
            transport=self.transport,
            codec=self.spec.codec,
            cluster_id=self.cluster_id,
        )

    def _save(self, record: TaskResult) -> bool:
        for attempt in range(1, _SAVE_TRIES + 1):
            try:
                self.spec.store.save_many([record])
                return True
            except Exception as exc:
                self.log.error(
                    "store.save_failed", task_id=record.id, error=str(exc), attempt=attempt
                )
                time.sleep(min(0.1 * 2**attempt, 2.0))
        return False

    @staticmethod
    def _delivery(handle: _Handle, view: SlotView) -> Delivery:
        return Delivery(
            task_id=view.task_id,
            payload=b"",
            attempt=view.attempt,
            max_attempts=view.max_attempts,
            token=view.token,
            consumer=handle.consumer,
        )

    def _log_exit(
        self, handle: _Handle, view: SlotView, code: int | None, fields: dict[str, Any]
    ) -> None:
        fields |= {"processed": view.processed, "exitcode": code}
        if handle.kill is KillReason.HOOK_TIMEOUT:
            self.log.error("worker.hook_timed_out", hook_timeout=self.config.hook_timeout, **fields)
        elif handle.kill is not None:
            self.log.warning("worker.killed", reason=handle.kill.value, **fields)
        elif code in (ExitCode.RECYCLED, ExitCode.MAX_RSS):
            self.totals.recycled += 1
            reason = "recycle" if code == ExitCode.RECYCLED else "max_rss"
            self.log.info("worker.recycled", reason=reason, **fields)
        elif code == ExitCode.OK:
            self.log.info("worker.stopped", **fields)
        else:
            self.log.error("worker.lost", how=describe_exit(code), **fields)

    # -- stopping ---------------------------------------------------------------------------

    def _shutdown(self) -> None:
        self.state = ClusterState.STOPPING
        self.log.info("cluster.stopping", grace=self.config.grace, now=self.stop_now)
        self.beacon.publish()
        for handle in list(self.handles.values()):
            self._signal(handle, signal.SIGTERM)
        deadline = time.monotonic() + self.config.grace
        while self.handles and not self.stop_now:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wait(min(remaining, self._next_wake()))
            self._collect(replace=False)
            self._enforce_deadlines()
        for handle in list(self.handles.values()):
            if handle.kill is None:
                reason = KillReason.STOP_NOW if self.stop_now else KillReason.GRACE_EXPIRED
                self._kill(handle, reason, handle.slot.read())
        for handle in list(self.handles.values()):
            self._on_exit(handle)
        self.beacon.stop()
        self.state = ClusterState.STOPPED
        if self.board is not None:
            try:
                self.board.remove(self.cluster_id)
            except Exception as exc:
                self.log.warning("cluster.status_failed", error=str(exc))
        self.log.info("cluster.stopped", processed=self.totals.processed, failed=self.totals.failed)
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    @staticmethod
    def _signal(handle: _Handle, sig: int) -> None:
        pid = handle.process.pid
        if pid is not None and handle.process.exitcode is None:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    # -- status -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The cluster's status, as published to the status board."""
        now = time.monotonic()
        with self._lock:
            handles = list(self.handles.values())
        workers = []
        processed, failed = self.totals.processed, self.totals.failed
        for handle in sorted(handles, key=lambda h: h.index):
            view = handle.slot.read()
            processed += view.processed
            failed += view.failed
            workers.append(
                {
                    "index": handle.index,
                    "pid": handle.process.pid,
                    "consumer": handle.consumer,
                    "state": view.state.name.lower(),
                    "task_id": view.running,
                    "task_name": view.name if view.running else None,
                    "func": view.func if view.running else None,
                    "running_for": round(now - view.since, 3) if view.running else None,
                    "processed": view.processed,
                    "failed": view.failed,
                    "uptime": round(now - handle.born, 1),
                }
            )
        sizes = _sizes(self.transport)
        return {
            "cluster_id": self.cluster_id,
            "name": self.config.name,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "state": self.state.value,
            "queue": self.transport.queue,
            "started_at": self.started_at,
            "uptime": round(time.time() - self.started_at, 1),
            "updated_at": time.time(),
            "workers": workers,
            "processed": processed,
            "failed": failed,
            "replaced": self.totals.replaced,
            "timed_out": self.totals.timed_out,
            "lost": self.totals.lost,
            "recycled": self.totals.recycled,
            **sizes,
        }


def _sizes(transport: Any) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    reads: dict[str, Callable[[], int]] = {
        "queue_size": transport.queue_size,
        "inflight_size": transport.inflight_size,
        "delayed_size": transport.delayed_size,
        "dead_size": transport.dead_size,
    }
    for key, read in reads.items():
        try:
            out[key] = int(read())
        except Exception:
            out[key] = None
    return out
