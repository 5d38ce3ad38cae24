"""What the sentinel does when a worker ends: the task it held, the record, the events.

A worker that exited on its own had its work saved and acked; what it fetched and never
started is released, uncounted. A worker killed past its task's timeout gets that task a
Failure ``TimeoutError``, saved, then acked (a timed-out task never runs again), and its hook
called (:mod:`qcluster.hookcalls`). A worker lost mid-task (killed, crashed) has the task
requeued at the head with the attempt counted, or, out of attempts, dead-lettered owing a
Failure ``WorkerLost``, which the beacon's :class:`~qcluster.records.OwedRecords` saves and
hooks (so a store that is down never blocks the sentinel, and the record is saved once it
answers). The Failure records carry, when the payload verifies, the task's func, args and
hook like any other record.

The events come first for the worker (:class:`~qcore.events.WorkerLost` or
:class:`~qcore.events.WorkerStopped`), then for its task.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import Any

from qcluster.execution import failure
from qcluster.hookcalls import HookCalls
from qcluster.slot import AwaitingTask, SlotView
from qcluster.spawning import WorkerHandle, WorkerPool
from qcluster.states import ExitCode, KillReason, WorkerState
from qcluster.status import Totals
from qcluster.worker import WorkerSpec
from qcore import (
    Backoff,
    Codec,
    Delivery,
    PayloadError,
    TaskMessage,
    TaskResult,
    Transport,
    UnknownTask,
    get_logger,
)
from qcore.cancelling import twin_maker
from qcore.events import TaskRetried, TaskTimedOut, WorkerLost, WorkerStopped

__all__ = ["ExitHandler", "describe_exit", "lost_task", "read_payload"]

log = get_logger("qcluster.losses")

_SAVE_ATTEMPTS = 5
"""The sentinel tries this many times to save a lost task's record (it supervises meanwhile
no other worker); a record it cannot save leaves the task to run again."""
_BACKOFF = Backoff()
_CLEAN_EXITS = (ExitCode.OK, ExitCode.RECYCLED, ExitCode.MAX_RSS)


def read_payload(transport: Transport, task_id: str) -> bytes | None:
    """The stored payload of an in-flight task, when the transport can tell.

    ``Transport`` has no such read; a transport may offer ``payload(task_id)`` (the Redis and
    in-memory ones do). For a transport without it, a Redis hash named by ``keys.msg`` is read
    directly (one HGET).
    """
    reader = getattr(transport, "payload", None)
    try:
        if callable(reader):
            found = reader(task_id)
            return bytes(found) if found is not None else None
        keys: Any = getattr(transport, "keys", None)
        client: Any = getattr(transport, "client", None)
        if keys is not None and client is not None and hasattr(keys, "msg"):
            found = client.hget(keys.msg, task_id)
            return bytes(found) if found is not None else None
    except Exception as exc:
        log.warning("task.payload_unreadable", task_id=task_id, error=str(exc))
    return None


def describe_exit(exitcode: int | None) -> str:
    """``killed by SIGKILL`` / ``exited with code 1``."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def lost_task(
    view: SlotView,
    error: str,
    *,
    transport: Transport,
    codec: Codec,
    cluster_id: str,
) -> tuple[TaskMessage | None, TaskResult]:
    """The message (when its payload verifies) and a Failure record of the task ``view``
    shows running, with ``error`` as its result."""
    payload = read_payload(transport, view.task_id)
    message: TaskMessage | None = None
    if payload is not None:
        try:
            message = codec.decode_message(payload)
        except PayloadError as exc:
            log.warning("task.payload_undecodable", task_id=view.task_id, error=str(exc))
    if message is not None and message.id == view.task_id:
        return message, failure(message, error, attempt=view.attempt, cluster=cluster_id)
    now = time.time()
    return None, TaskResult(
        id=view.task_id,
        name=view.name or view.task_id,
        func=view.func or "<unknown>",
        args=(),
        kwargs={},
        result=error,
        success=False,
        started=view.started or now,
        stopped=now,
        attempt_count=view.attempt,
        cluster=cluster_id,
    )


class ExitHandler:
    """Handles the exit of each worker: the release of its tasks, records, events, the log."""

    def __init__(
        self,
        spec: WorkerSpec,
        pool: WorkerPool,
        totals: Totals,
        log: Any,
        hooks: HookCalls,
        owed: Callable[[], None],
    ) -> None:
        self.spec = spec
        self.hooks = hooks
        self.owed = owed
        """Called when a dead letter is owed its record (the beacon's OwedRecords runs)."""
        self.transport = spec.transport
        self.events = spec.events
        self.pool = pool
        self.totals = totals
        self.log = log
        self.offline = False
        """Redis is known to be unreachable (a stop): exits touch nothing there."""

    def on_exit(self, handle: WorkerHandle) -> None:
        handle.process.join()
        code = handle.process.exitcode
        view = handle.slot.read(tries=3)
        self.pool.remove(handle)
        self.totals.processed += view.processed
        self.totals.failed += view.failed
        self.totals.run_total += view.run_total
        consumer = handle.consumer
        fields = {"index": handle.index, "pid": handle.process.pid, "consumer": consumer}
        self._worker_event(handle, view, code)
        if self.offline:
            # Its tasks stay in its in-flight list; its heartbeat has stopped, so a reaper
            # returns them (or records the last attempt's loss) once Redis answers again.
            self.log.warning("worker.release_skipped", reason="redis unreachable", **fields)
            self._log_exit(handle, view, code, fields)
            return
        # A worker that left cleanly released its tasks and forgot its consumer itself.
        left = view.state is WorkerState.LEFT and handle.kill is None and code in _CLEAN_EXITS
        # Coroutine tasks it awaited beside the one its slot shows (async_concurrency > 1).
        awaited = [] if left else handle.slot.awaiting()
        try:
            if handle.kill is KillReason.TIMEOUT and _same_task(handle.kill_view, view):
                self._timed_out(handle, view, awaited)
            elif handle.kill is KillReason.CANCELLED and handle.terminate_awaited is not None:
                self._terminated(handle, view, code, awaited, handle.terminate_awaited)
            elif handle.kill is KillReason.CANCELLED and _same_task(handle.kill_view, view):
                self._terminated(handle, view, code, awaited, _shown(view))
            elif view.running is not None or awaited:
                self._lost_running(handle, view, code, awaited)
            elif not left:
                self.transport.release(consumer)
            if not left:
                self.transport.forget([consumer])
        except Exception as exc:
            # The consumer's heartbeat stops with it: the reaper returns its tasks after retry.
            self.log.error("worker.release_failed", error=str(exc), **fields)
        self._log_exit(handle, view, code, fields)

    def _worker_event(self, handle: WorkerHandle, view: SlotView, code: int | None) -> None:
        pid = handle.process.pid
        if handle.kill is None and code in _CLEAN_EXITS:
            reason = _exit_reason(code)
            self.events.emit(WorkerStopped(handle.consumer, pid, reason, view.processed))
            return
        running = view.running
        self.events.emit(
            WorkerLost(
                handle.consumer,
                pid,
                describe_exit(code),
                handle.kill.value if handle.kill is not None else None,
                running,
                view.processed,
                view.func if running is not None else "",
                _waited(view) if running is not None else None,
            )
        )

    def _release_others(
        self,
        handle: WorkerHandle,
        view: SlotView,
        awaited: list[AwaitingTask],
        settled: str | None = None,
    ) -> None:
        """Put back what the worker held besides the task ``settled`` (by default its slot's):
        the tasks it ran keep their attempt (dead-lettered owing a record when it was the
        last)."""
        settled = view.task_id if settled is None else settled
        others = {task.task_id: task for task in awaited}
        if view.running is not None:
            others[view.task_id] = _shown(view)
        others.pop(settled, None)
        reason = f"{_lost_reason(handle, describe_exit(handle.process.exitcode))}: out of attempts"
        self.transport.release(handle.consumer, started=set(others), reason=reason)
        last = sum(1 for task in others.values() if task.attempt >= task.max_attempts)
        if last:
            self.totals.failed += last
            self.owed()

    def _timed_out(self, handle: WorkerHandle, view: SlotView, awaited: list[AwaitingTask]) -> None:
        self.totals.timed_out += 1
        self.totals.failed += 1
        error = (
            f"TimeoutError: the task timed out after {view.timeout:g} s "
            f"(its worker, pid {handle.process.pid}, was killed)"
        )
        message, record = self._lost(view, error)
        saved = self._save(record)
        # Told before the release: an unsaved task may be started again at once.
        self.events.emit(TaskTimedOut(view.task_id, record, view.timeout, saved, handle.consumer))
        if saved:
            self.transport.ack([_delivery(handle, _shown(view))])
            self._release_others(handle, view, awaited)
            self.hooks.owe(message, record)
        else:
            # Unsaved work is never acked: run it again rather than lose it; on its last
            # attempt it is dead-lettered owing this record (OwedRecords saves it later).
            released = self.transport.release(
                handle.consumer, started={view.task_id}, reason=f"{error}: out of attempts"
            )
            if released.dead_lettered:
                self.owed()
            if awaited:
                self._release_others(handle, view, awaited)

    def _terminated(
        self,
        handle: WorkerHandle,
        view: SlotView,
        code: int | None,
        awaited: list[AwaitingTask],
        task: AwaitingTask,
    ) -> None:
        """A task cancelled while running (the one its slot shows, or a coroutine its loop did
        not cancel in time): its cancelled twin goes back, due at once, in the step that takes
        the delivery back; the worker that gets it saves the Failure and calls the hook. A
        payload that cannot be read makes it a lost task like any other."""
        payload = read_payload(self.transport, task.task_id)
        twin = None
        if payload is not None:
            try:
                twin = twin_maker(self.spec.codec, "running")(payload)
            except (PayloadError, UnknownTask) as exc:
                log.warning("task.payload_undecodable", task_id=task.task_id, error=str(exc))
        if twin is None or not self.transport.retry_later(_delivery(handle, task), 0, twin):
            self._lost_running(handle, view, code, awaited)
            return
        self._release_others(handle, view, awaited, task.task_id)

    def _lost_running(
        self, handle: WorkerHandle, view: SlotView, code: int | None, awaited: list[AwaitingTask]
    ) -> None:
        """The task the slot shows, and every coroutine task the worker awaited beside it,
        go back with their attempt counted; one on its last attempt is dead-lettered owing
        its Failure record, which the beacon's OwedRecords saves (then the event, then the
        hook): a store that is down never blocks this thread, and the record is saved once it
        answers, never lost (nor saved twice when the reaper got here first)."""
        self.totals.lost += 1
        how = describe_exit(code)
        lost = {task.task_id: task for task in awaited}
        if view.running is not None:
            lost[view.task_id] = _shown(view)
        # Told first: once released, another worker may start the task at once.
        for task in lost.values():
            if task.attempt < task.max_attempts:
                self.events.emit(
                    TaskRetried(
                        task.task_id,
                        task.name,
                        task.func,
                        task.attempt,
                        task.max_attempts,
                        f"worker {how}",
                    )
                )
        reason = f"{_lost_reason(handle, how)}: out of attempts"
        self.transport.release(handle.consumer, started=set(lost), reason=reason)
        last = sum(1 for task in lost.values() if task.attempt >= task.max_attempts)
        if last:
            self.totals.failed += last
            self.owed()

    def _lost(self, view: SlotView, error: str) -> tuple[TaskMessage | None, TaskResult]:
        return lost_task(
            view,
            error,
            transport=self.transport,
            codec=self.spec.codec,
            cluster_id=self.spec.cluster_id,
        )

    def _save(self, record: TaskResult) -> bool:
        def failed(exc: Exception, attempt: int) -> None:
            self.log.error("store.save_failed", task_id=record.id, error=str(exc), attempt=attempt)

        try:
            _BACKOFF.call(
                lambda: self.spec.store.save_many([record]),
                on_error=failed,
                attempts=_SAVE_ATTEMPTS,
            )
        except Exception:
            return False
        return True

    def _log_exit(
        self, handle: WorkerHandle, view: SlotView, code: int | None, fields: dict[str, Any]
    ) -> None:
        fields |= {"processed": view.processed, "exitcode": code}
        config = self.spec.config
        if handle.kill is KillReason.HOOK_TIMEOUT:
            self.log.error("worker.hook_timed_out", hook_timeout=config.hook_timeout, **fields)
        elif handle.kill is not None:
            self.log.warning("worker.killed", reason=handle.kill.value, **fields)
        elif code in (ExitCode.RECYCLED, ExitCode.MAX_RSS):
            self.totals.recycled += 1
            self.log.info("worker.recycled", reason=_exit_reason(code), **fields)
        elif code == ExitCode.OK:
            self.log.info("worker.stopped", **fields)
        else:
            self.log.error("worker.lost", how=describe_exit(code), **fields)


def _lost_reason(handle: WorkerHandle, how: str) -> str:
    return f"WorkerLost: the worker running the task was lost ({how}; consumer {handle.consumer})"


def _waited(view: SlotView) -> float | None:
    """Seconds the running task waited in the queue before its run began (None: unknown)."""
    if not (view.due and view.started):
        return None
    return max(0.0, view.started - view.due)


def _exit_reason(code: int | None) -> str:
    if code == ExitCode.RECYCLED:
        return "recycle"
    return "max_rss" if code == ExitCode.MAX_RSS else "stopped"


def _same_task(before: SlotView | None, after: SlotView) -> bool:
    return (
        before is not None
        and after.running is not None
        and (before.task_id, before.token) == (after.task_id, after.token)
    )


def _shown(view: SlotView) -> AwaitingTask:
    """The task a slot shows running, as an awaited one is listed."""
    return AwaitingTask(
        view.task_id,
        view.attempt,
        view.max_attempts,
        token=view.token,
        started=view.started,
        name=view.name,
        func=view.func,
    )


def _delivery(handle: WorkerHandle, task: AwaitingTask) -> Delivery:
    return Delivery(
        task_id=task.task_id,
        payload=b"",
        attempt=task.attempt,
        max_attempts=task.max_attempts,
        token=task.token,
        consumer=handle.consumer,
    )
