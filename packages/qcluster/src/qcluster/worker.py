"""A worker process: its own transport consumer, fetching batches sized to the work.

Each worker fetches a batch from the transport under its own consumer id and hands it to its
:class:`~qcluster.processing.Processor` (run, save, ack, hooks). Nothing is shared with other
workers; what the sentinel needs to know is written to this worker's
:class:`~qcluster.slot.Slot`. This module owns the process: signals, the fetch loop, the size
of the next batch, recycling, and leaving cleanly.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from qcluster.config import ClusterConfig
from qcluster.execution import format_error
from qcluster.lifeline import parent_alive, set_parent_death_signal, watch_parent
from qcluster.metrics import MetricsCell, MetricsRecorder
from qcluster.processing import Processor
from qcluster.slot import Slot
from qcluster.states import ExitCode, WorkerState
from qcore import (
    Backoff,
    Codec,
    Delivery,
    EventBus,
    HookRunner,
    ResultStore,
    Transport,
    configure_logging,
    get_logger,
)
from qcore.events import WorkerStarted
from qcore.log import is_configured

__all__ = ["WorkerSpec", "rss_kib", "worker_main"]

log = get_logger("qcluster.worker")

FETCH_BLOCK = 1.0
"""Seconds an idle worker blocks in fetch: also the most a stop waits for an idle worker."""
SHORT_TASK = 0.02
"""A batch grows only while its tasks take less than this each."""
_BACKOFF = Backoff()


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
    events: EventBus = field(default_factory=EventBus)
    """The cluster's bus, its task log subscribed (see ``Cluster``): task events are emitted in
    the worker processes, supervision events in the sentinel."""
    metrics: MetricsRecorder | None = None
    """The cluster's metrics recorder, subscribed to ``events`` (None: no metrics)."""


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


def worker_main(
    spec: WorkerSpec, slot: Slot, consumer: str, cell: MetricsCell | None = None
) -> None:
    """The worker process's entry point (a ``multiprocessing.Process`` target)."""
    # Ctrl+C reaches the whole process group; only the sentinel decides what it means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)
    if spec.metrics is not None and cell is not None:
        spec.metrics.attach(cell)
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
        self.stopping = False
        self.in_fetch = False
        self.ppid = os.getppid()
        self.log = log.bind(consumer=consumer)
        self.transport: Transport = spec.transport
        self.store: ResultStore = spec.store
        self.processor: Processor | None = None

    # -- signals ----------------------------------------------------------------------------

    def on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        if self.processor is not None:
            self.processor.stopping = True
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
            processor = self._open()
        except Exception as exc:
            self.log.error("worker.init_failed", error=format_error(exc))
            return ExitCode.INIT_FAILED
        # Bound again now that logging is configured (a bound logger keeps its config).
        self.log = log.bind(consumer=self.consumer)
        self.log.info("worker.started", pid=os.getpid())
        self.spec.events.emit(WorkerStarted(self.consumer, os.getpid()))
        try:
            code = self._loop(processor)
        except _Interrupted:
            code = ExitCode.OK
        except Exception as exc:
            self.log.error("worker.crashed", error=format_error(exc))
            return ExitCode.ERROR
        self._leave()
        return code

    def _open(self) -> Processor:
        if not is_configured():
            configure_logging(
                json=self.config.log_json,
                level=self.config.log_level,
                secret_names=self.config.secret_names,
            )
        if self.spec.worker_init is not None:
            self.spec.worker_init()
        self.transport = _fresh(self.spec.transport)
        self.store = _fresh(self.spec.store)
        processor = Processor(
            transport=self.transport,
            store=self.store,
            codec=self.spec.codec,
            config=self.config,
            cluster_id=self.spec.cluster_id,
            consumer=self.consumer,
            events=self.spec.events,
            hook_runner=self.spec.hook_runner,
            tracker=self.slot,
            hook_alarm=self.config.hook_timeout,
        )
        processor.stopping = self.stopping
        self.processor = processor
        return processor

    def _reconcile(self) -> None:
        """After a failed fetch: put back whatever our in-flight list holds, uncounted.

        Between batches everything this worker ran is saved and acked, so its list holds only
        what a fetch claimed and never answered (its reply lost for good: the client gave
        up); nobody else would return it while this worker lives and heartbeats. Raises when
        Redis still fails (the loop backs off and tries again before its next fetch).
        """
        released = self.transport.release(self.consumer)
        if released.requeued:
            self.log.warning("worker.reconciled", requeued=released.requeued)

    def _leave(self) -> None:
        """Put back what was fetched and never started (uncounted), then exit."""
        self.slot.set_state(WorkerState.STOPPING)
        try:
            self.transport.release(self.consumer)
            self.transport.forget([self.consumer])
        except Exception as exc:
            # The sentinel releases this consumer again after the exit.
            self.log.warning("worker.release_failed", error=str(exc))
        else:
            self.slot.set_state(WorkerState.LEFT)
        if self.processor is not None:
            self.processor.close()
        for closable in (self.transport, self.store):
            try:
                closable.close()
            except Exception as exc:
                self.log.debug("worker.close_failed", error=str(exc))

    def _loop(self, processor: Processor) -> ExitCode:
        config = self.config
        batch = max(1, min(self.slot.batch, self._batch_limit(0)))
        failures = 0
        unsure = False  # a fetch failed: what it may have claimed is in our list, unknown to us
        while not self.stopping:
            self.slot.set_state(WorkerState.IDLE)
            try:
                if unsure:
                    self._reconcile()
                    unsure = False
                self.in_fetch = True
                if self.stopping:
                    break
                if failures:
                    self._release_stale()
                replayed: list[str] = []
                deliveries = self.transport.fetch(
                    self.consumer, batch, FETCH_BLOCK, replayed=replayed
                )
            except _Interrupted:
                break
            except Exception as exc:
                self.in_fetch = False
                failures += 1
                unsure = True
                self.log.error("worker.fetch_failed", error=str(exc), failures=failures)
                _BACKOFF.sleep(failures, stop=lambda: self.stopping)
                continue
            finally:
                self.in_fetch = False
            failures = 0
            if replayed:
                processor.replays_refused(replayed)
            if not deliveries:
                batch = self.slot.batch = 1
                if not parent_alive(self.ppid):
                    self._parent_gone()
                self._release_stale()
                continue
            begun = time.perf_counter()
            ran = processor.run(deliveries, self._refill if config.async_concurrency > 1 else None)
            elapsed = time.perf_counter() - begun
            if processor.awaited:
                # Coroutines run side by side: fetch what can run at once, however long each.
                size = self._batch_limit(processor.processed)
            else:
                size = self._next_batch(batch, len(deliveries), ran, elapsed, processor.processed)
            if size != batch:
                batch = self.slot.batch = size
            if config.recycle is not None and processor.processed >= config.recycle:
                self.log.info("worker.recycled", processed=processor.processed, reason="recycle")
                return ExitCode.RECYCLED
            if config.max_rss is not None:
                rss = rss_kib()
                if rss > config.max_rss:
                    self.log.info("worker.recycled", rss_kib=rss, reason="max_rss")
                    return ExitCode.MAX_RSS
        return ExitCode.OK

    def _release_stale(self) -> None:
        """Put back what this consumer's in-flight list holds while the worker holds nothing
        (between batches, idle or after a failed fetch).

        It should be empty then, but need not be: a fetch whose reply was lost for good claimed
        tasks, or a failover lost an ack that the old master had applied (Redis replicates
        asynchronously, docs/deployment/redis-sentinel.md). Back at the head, uncounted, they
        run again (at least once) instead of waiting for this consumer to stop. One script
        call, only when idle or after a failure, never between two busy batches.
        """
        try:
            released = self.transport.release(self.consumer)
        except Exception as exc:
            self.log.warning("worker.release_failed", error=str(exc))
            return
        if released.requeued or released.dead_lettered:
            self.log.warning(
                "worker.stale_inflight_released",
                requeued=released.requeued,
                dead_lettered=released.dead_lettered,
                detail="tasks left in this idle consumer's in-flight list (a lost reply or a "
                "failover) were put back",
            )

    def _refill(self, room: int) -> list[Delivery]:
        """Up to ``room`` more tasks, without waiting, for a worker awaiting coroutine tasks
        with room beside them (none past ``recycle``; an error is logged, the worker goes on:
        what a lost reply claimed is put back once it is idle)."""
        processor = self.processor
        if processor is None or self.stopping:
            return []
        if self.config.recycle is not None:
            room = min(room, self.config.recycle - processor.processed - len(processor.awaits))
        if room <= 0:
            return []
        replayed: list[str] = []
        try:
            deliveries = self.transport.fetch(self.consumer, room, 0, replayed=replayed)
        except Exception as exc:
            self.log.warning("worker.fetch_failed", error=str(exc), failures=1)
            return []
        if replayed:
            processor.replays_refused(replayed)
        return deliveries

    def _batch_limit(self, done: int) -> int:
        """No more than ``prefetch`` (or ``async_concurrency`` when it is more), nor than what
        is left of this life under ``recycle``."""
        limit = max(self.config.prefetch, self.config.async_concurrency)
        if self.config.recycle is not None:
            limit = max(1, min(limit, self.config.recycle - done))
        return limit

    def _next_batch(self, batch: int, fetched: int, ran: int, elapsed: float, done: int) -> int:
        """Grow the batch while the queue is full of short tasks; back to 1 for long ones."""
        limit = self._batch_limit(done)
        if ran and elapsed / ran > SHORT_TASK:
            return 1
        if fetched >= batch:
            return min(batch * 2, limit)
        return min(max(1, fetched), limit)
