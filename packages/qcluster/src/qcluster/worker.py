"""A worker process: its own transport consumer, runner, saver and acker.

Each worker fetches a batch from the transport under its own consumer id, runs the tasks one
by one, then saves their results in one call, acks them in one call and calls their hooks.
Nothing is shared with other workers; what the sentinel needs to know is written to this
worker's :class:`~qcluster.slot.Slot`.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any, NamedTuple

from qcluster.config import ClusterConfig
from qcluster.execution import (
    call_hook,
    error_fields,
    execute,
    format_error,
    should_save,
    task_timeout,
    unstorable,
)
from qcluster.lifeline import parent_alive, set_parent_death_signal, watch_parent
from qcluster.slot import Slot
from qcluster.states import ExitCode, WorkerState
from qcore import (
    Codec,
    Delivery,
    HookRunner,
    PayloadError,
    ResultStore,
    SerializationError,
    TaskMessage,
    TaskResult,
    Transport,
    UndecodablePayload,
    configure_logging,
    get_logger,
)
from qcore.log import is_configured

__all__ = ["WorkerSpec", "rss_kib", "worker_main"]

log = get_logger("qcluster.worker")

FETCH_BLOCK = 1.0
"""Seconds an idle worker blocks in fetch: also the most a stop waits for an idle worker."""
FLUSH_AFTER = 0.005
"""Finished results older than this are saved before the next task starts."""
SHORT_TASK = 0.02
"""A batch grows only while its tasks take less than this each."""
_BACKOFF_MAX = 5.0


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything a worker process needs; picklable (children open their own connections)."""

    config: ClusterConfig
    cluster_id: str
    transport: Transport
    store: ResultStore
    codec: Codec
    hook_runner: HookRunner | None = None
    worker_init: Callable[[], None] | None = None


class _Done(NamedTuple):
    message: TaskMessage | None
    delivery: Delivery
    record: TaskResult
    save: bool


class _Interrupted(BaseException):
    """Raised by the SIGTERM handler into a blocking fetch, so a stop never waits on it."""


def rss_kib() -> int:
    """This process's resident memory in KiB (``/proc``; peak RSS where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak // 1024 if sys.platform == "darwin" else peak


def worker_main(spec: WorkerSpec, slot: Slot, consumer: str) -> None:
    """The worker process's entry point (a ``multiprocessing.Process`` target)."""
    # Ctrl+C reaches the whole process group; only the sentinel decides what it means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)
    worker = _Worker(spec, slot, consumer)
    signal.signal(signal.SIGTERM, worker.on_sigterm)
    sys.exit(int(worker.main()))


def _fresh(obj: Any) -> Any:
    """A copy rebuilt from its pickled parameters: no socket of the parent is ever reused."""
    return pickle.loads(pickle.dumps(obj))


class _Worker:
    def __init__(self, spec: WorkerSpec, slot: Slot, consumer: str) -> None:
        self.spec = spec
        self.config = spec.config
        self.slot = slot
        self.consumer = consumer
        self.cluster_id = spec.cluster_id
        self.stopping = False
        self.in_fetch = False
        self.processed = 0
        self.ppid = os.getppid()
        self.log = log.bind(consumer=consumer)
        self.transport: Transport = spec.transport
        self.store: ResultStore = spec.store
        self.codec: Codec = spec.codec
        self.debug = False

    # -- signals ----------------------------------------------------------------------------

    def on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        if self.in_fetch:
            self.in_fetch = False
            raise _Interrupted

    def _parent_gone(self) -> None:
        # Nobody heartbeats our consumer any more: leave at once, the work is recovered by
        # another cluster's reaper after the heartbeat's time-to-live.
        os._exit(ExitCode.PARENT_GONE)

    # -- life -------------------------------------------------------------------------------

    def main(self) -> ExitCode:
        self.slot.reset(os.getpid())
        set_parent_death_signal()
        watch_parent(self._parent_gone)
        if not parent_alive(self.ppid):
            return ExitCode.PARENT_GONE
        try:
            self._open()
        except Exception as exc:
            self.log.error("worker.init_failed", error=format_error(exc))
            return ExitCode.INIT_FAILED
        # Bound again now that logging is configured (a bound logger keeps its config).
        self.log = log.bind(consumer=self.consumer)
        self.log.info("worker.started", pid=os.getpid())
        try:
            code = self._loop()
        except _Interrupted:
            code = ExitCode.OK
        except Exception as exc:
            self.log.error("worker.crashed", error=format_error(exc))
            return ExitCode.ERROR
        self._leave()
        return code

    def _open(self) -> None:
        if not is_configured():
            configure_logging(json=self.config.log_json, level=self.config.log_level)
        self.debug = self.config.log_level.lower() == "debug"
        if self.spec.worker_init is not None:
            self.spec.worker_init()
        self.transport = _fresh(self.spec.transport)
        self.store = _fresh(self.spec.store)

    def _leave(self) -> None:
        """Put back what was fetched and never started (uncounted), then exit."""
        self.slot.set_state(WorkerState.STOPPING)
        try:
            self.transport.release(self.consumer)
        except Exception as exc:
            # The sentinel releases this consumer again after the exit.
            self.log.warning("worker.release_failed", error=str(exc))
        for closable in (self.transport, self.store):
            try:
                closable.close()
            except Exception as exc:
                self.log.debug("worker.close_failed", error=str(exc))

    def _loop(self) -> ExitCode:
        config = self.config
        batch = 1
        failures = 0
        while not self.stopping:
            self.slot.set_state(WorkerState.IDLE)
            try:
                self.in_fetch = True
                if self.stopping:
                    break
                deliveries = self.transport.fetch(self.consumer, batch, FETCH_BLOCK)
            except _Interrupted:
                break
            except Exception as exc:
                self.in_fetch = False
                failures += 1
                self.log.error("worker.fetch_failed", error=str(exc), failures=failures)
                self._pause(failures)
                continue
            finally:
                self.in_fetch = False
            failures = 0
            if not deliveries:
                batch = 1
                if not parent_alive(self.ppid):
                    self._parent_gone()
                continue
            batch = self._run_batch(deliveries, batch)
            if config.recycle is not None and self.processed >= config.recycle:
                self.log.info("worker.recycled", processed=self.processed, reason="recycle")
                return ExitCode.RECYCLED
            if config.max_rss is not None:
                rss = rss_kib()
                if rss > config.max_rss:
                    self.log.info("worker.recycled", rss_kib=rss, reason="max_rss")
                    return ExitCode.MAX_RSS
        return ExitCode.OK

    def _pause(self, failures: int) -> None:
        """Back off after an error, waking early for a stop."""
        until = time.monotonic() + min(0.05 * 2**failures, _BACKOFF_MAX)
        while not self.stopping and time.monotonic() < until:
            time.sleep(0.05)

    # -- one batch --------------------------------------------------------------------------

    def _run_batch(self, deliveries: list[Delivery], batch: int) -> int:
        pending: list[_Done] = []
        oldest = 0.0
        begun = time.perf_counter()
        ran = 0
        for delivery in deliveries:
            if self.stopping:
                break  # the rest never started: released, uncounted, when we leave
            if pending and time.perf_counter() - oldest > FLUSH_AFTER:
                self._flush(pending)
                pending = []
            done = self._run_one(delivery)
            if done is not None:
                if not pending:
                    oldest = time.perf_counter()
                pending.append(done)
                ran += 1
        self._flush(pending)
        return self._next_batch(batch, len(deliveries), ran, time.perf_counter() - begun)

    def _next_batch(self, batch: int, fetched: int, ran: int, elapsed: float) -> int:
        """Grow the batch while the queue is full of short tasks; back to 1 for long ones."""
        limit = self.config.prefetch
        if self.config.recycle is not None:
            limit = max(1, min(limit, self.config.recycle - self.processed))
        if ran and elapsed / ran > SHORT_TASK:
            return 1
        if fetched >= batch:
            return min(batch * 2, limit)
        return min(max(1, fetched), limit)

    def _run_one(self, delivery: Delivery) -> _Done | None:
        try:
            message = self.codec.decode_message(delivery.payload)
        except UndecodablePayload as exc:
            error = f"UndecodablePayload: {exc}"
            self.log.error("task.failed", task_id=delivery.task_id, error=error)
            record = TaskResult.failure_without_message(
                delivery.task_id, error, attempt_count=delivery.attempt, cluster=self.cluster_id
            )
            self.slot.end(False)  # counted in the status like any failure
            self.processed += 1
            return _Done(None, delivery, record, True)
        except PayloadError as exc:
            self._dead_letter(delivery, f"{type(exc).__name__}: {exc}")
            return None
        if message.id != delivery.task_id:
            self._dead_letter(
                delivery,
                f"the payload stored under {delivery.task_id} is task {message.id}: "
                "a signed payload was copied under another id",
            )
            return None
        return self._execute(message, delivery)

    def _execute(self, message: TaskMessage, delivery: Delivery) -> _Done:
        timeout = task_timeout(message, self.config.timeout)
        self.slot.begin(
            message.id,
            message.name,
            message.func_path,
            attempt=delivery.attempt,
            max_attempts=delivery.max_attempts,
            token=delivery.token,
            timeout=timeout,
        )
        if self.debug:
            self.log.debug(
                "task.started",
                task_id=message.id,
                name=message.name,
                func=message.func_path,
                attempt=delivery.attempt,
            )
        begun = time.perf_counter()
        record = execute(message, attempt=delivery.attempt, cluster=self.cluster_id)
        duration = time.perf_counter() - begun
        self.slot.end(record.success)
        self.processed += 1
        if not record.success:
            self.log.warning(
                "task.failed",
                task_id=message.id,
                name=message.name,
                func=record.func,
                attempt=delivery.attempt,
                duration=round(duration, 6),
                **error_fields(str(record.result), log_args=self.config.log_args),
            )
        elif self.debug:
            fields: dict[str, Any] = {}
            if self.config.log_args:
                fields = {"args": message.args, "kwargs": message.kwargs, "result": record.result}
            self.log.debug(
                "task.finished",
                task_id=message.id,
                name=message.name,
                func=record.func,
                attempt=delivery.attempt,
                duration=round(duration, 6),
                **fields,
            )
        return _Done(message, delivery, record, should_save(message, record, self.config.save))

    def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        """A payload we must not trust: never unpickled, out of circulation, logged."""
        self.log.error("task.dead_lettered", task_id=delivery.task_id, reason=reason)
        failures = 0
        while True:
            try:
                self.transport.dead_letter(delivery, reason)
                return
            except Exception as exc:
                failures += 1
                self.log.error("worker.dead_letter_failed", error=str(exc), failures=failures)
                if self.stopping:
                    return  # still in flight: released and seen again by the next consumer
                self._pause(failures)

    # -- save, ack, hooks -------------------------------------------------------------------

    def _flush(self, pending: list[_Done]) -> None:
        if not pending:
            return
        self.slot.set_state(WorkerState.SAVING)
        if any(done.save for done in pending):
            self._retry("save", lambda: self._save(pending))
        acked = self._retry("ack", lambda: self.transport.ack([d.delivery for d in pending]))
        for done, ok in zip(pending, acked or ()):
            if not ok:
                # Redelivered to someone else meanwhile (we were presumed dead): their run
                # upserts the same record and calls the hook; ours stays saved, unhooked.
                self.log.warning("task.ack_refused", task_id=done.delivery.task_id)
            elif done.message is not None and done.message.hook is not None:
                self.slot.set_state(WorkerState.HOOK)
                call_hook(
                    done.message,
                    done.record,
                    self.spec.hook_runner,
                    log_args=self.config.log_args,
                )

    def _save(self, pending: list[_Done]) -> None:
        """Save the batch's records; one that can never be stored is replaced by a Failure.

        A record the store refuses for what it holds (a result over the payload size limit,
        say) is not an outage: retrying it would wedge the worker. Store errors are retried
        by the caller.
        """
        try:
            self.store.save_many([done.record for done in pending if done.save])
            return
        except (PayloadError, SerializationError):
            pass
        for index, done in enumerate(pending):
            if done.save:
                pending[index] = done._replace(record=self._save_one(done.record))

    def _save_one(self, record: TaskResult) -> TaskResult:
        """Save one record, or the Failure that replaces it if it cannot be stored."""
        try:
            self.store.save_many([record])
            return record
        except (PayloadError, SerializationError) as exc:
            error: Exception = exc
        self.log.error(
            "task.unstorable",
            task_id=record.id,
            name=record.name,
            func=record.func,
            error=type(error).__name__,
        )
        failure = unstorable(record, error)
        try:
            self.store.save_many([failure])
            return failure
        except (PayloadError, SerializationError):
            failure = unstorable(record, error, keep_args=False)  # the args are what is too big
        self.store.save_many([failure])
        return failure

    def _retry(self, what: str, call: Callable[[], Any]) -> Any:
        """Call until it works: unsaved work is never acked, saved work is acked eventually.

        A stop does not interrupt this: the sentinel's grace period bounds it, and a worker
        killed here leaves its tasks in flight for redelivery (saving is an upsert).
        """
        failures = 0
        while True:
            try:
                return call()
            except Exception as exc:
                failures += 1
                self.log.error(f"worker.{what}_failed", error=str(exc), failures=failures)
                until = time.monotonic() + min(0.05 * 2**failures, _BACKOFF_MAX)
                while time.monotonic() < until:
                    time.sleep(0.05)
