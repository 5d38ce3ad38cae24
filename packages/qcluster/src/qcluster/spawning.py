"""The cluster's worker processes: starting them, replacing the dead, and the table of them.

A worker gets a consumer id of its own per life (``<cluster_id>.<index>.<generation>``), its
heartbeat registered before it can fetch anything, and a fresh slot record; it is forked (or
spawned) under the sentinel's :class:`~qcluster.forking.ForkGuard`. A worker that fails to
start is started again after a growing delay, so a broken ``worker_init`` does not spin.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from qcluster.forking import ForkGuard
from qcluster.metrics import MetricsCell
from qcluster.slot import AwaitingTask, Slot, SlotView
from qcluster.states import ExitCode, KillReason, WorkerState
from qcluster.worker import WorkerSpec, worker_main
from qcore import Backoff

__all__ = ["WorkerHandle", "WorkerPool"]

_RESPAWN = Backoff(first=0.5, cap=30.0)
"""Delays before starting again a worker that failed to start."""


@dataclass(eq=False)
class WorkerHandle:
    """One life of one worker process."""

    index: int
    generation: int
    consumer: str
    process: BaseProcess
    slot: Slot
    born: float = field(default_factory=time.monotonic)
    kill: KillReason | None = None
    """Why the sentinel killed it, once it did."""
    kill_view: SlotView | None = None
    """What its slot said when it was killed (which task timed out)."""
    terminate: int | None = None
    """The fencing token of a task it runs whose termination was asked (``cancel``)."""
    cancelling: dict[str, float] = field(default_factory=dict)
    """Coroutine tasks it awaits whose entry the sentinel marked (``cancel``), by id: when."""
    terminate_awaited: AwaitingTask | None = None
    """A marked coroutine task its loop did not cancel in time: its worker is killed."""


class WorkerPool:
    """Starts and replaces workers; :attr:`handles` are the live ones, by index."""

    def __init__(self, spec: WorkerSpec, ctx: BaseContext, guard: ForkGuard, log: Any) -> None:
        self.spec = spec
        self.ctx = ctx
        self.guard = guard
        self.log = log
        self.handles: dict[int, WorkerHandle] = {}
        self.slots: dict[int, Slot] = {}
        self.cells: dict[int, MetricsCell] = {}
        """Each worker's metrics (when the cluster has them), by index."""
        self.generations: dict[int, int] = {}
        self.respawn_at: dict[int, float] = {}
        self.init_failures: dict[int, int] = {}
        self.lock = threading.Lock()  # the beacon thread reads the consumers

    def start(self, count: int) -> None:
        """Start ``count`` workers, each with its slot."""
        for index in range(count):
            concurrency = self.spec.config.async_concurrency
            self.slots[index] = Slot(self.ctx, awaiting=concurrency if concurrency > 1 else 0)
            if self.spec.metrics is not None:
                self.cells[index] = MetricsCell(self.ctx)
            self.spawn(index)

    def spawn(self, index: int) -> WorkerHandle:
        """Start worker ``index`` (again) under a new consumer id."""
        config = self.spec.config
        generation = self.generations.get(index, 0) + 1
        self.generations[index] = generation
        consumer = f"{self.spec.cluster_id}.{index}.{generation}"
        try:
            # Registered with our time-to-live before it can fetch anything.
            self.spec.transport.heartbeat([consumer], ttl=config.retry)
        except Exception as exc:
            self.log.warning("cluster.heartbeat_failed", consumer=consumer, error=str(exc))
        # The dead worker's record must not be read as the new one's (a past deadline).
        self.slots[index].reset(0)
        process = self.ctx.Process(  # type: ignore[attr-defined]
            target=worker_main,
            args=(self.spec, self.slots[index], consumer, self.cells.get(index)),
            name=f"qcluster-worker-{index}",
        )
        self.guard.start(process, freeze=config.start_method == "fork")
        handle = WorkerHandle(index, generation, consumer, process, self.slots[index])
        with self.lock:
            self.handles[index] = handle
        self.log.debug("worker.spawned", index=index, pid=process.pid, consumer=consumer)
        return handle

    def remove(self, handle: WorkerHandle) -> None:
        with self.lock:
            self.handles.pop(handle.index, None)

    def live(self) -> list[WorkerHandle]:
        """The live workers, by index."""
        with self.lock:
            return sorted(self.handles.values(), key=lambda h: h.index)

    def consumers(self) -> list[str]:
        """Consumer ids of the live workers (for heartbeats); not of one that left (it forgot
        its consumer: a heartbeat would register it again)."""
        with self.lock:
            handles = list(self.handles.values())
        return [h.consumer for h in handles if h.slot.read().state is not WorkerState.LEFT]

    def replace(self, handle: WorkerHandle) -> None:
        """Start a worker in the dead one's place; later, and later, if workers fail to start."""
        if handle.process.exitcode == ExitCode.INIT_FAILED:
            failures = self.init_failures.get(handle.index, 0) + 1
            self.init_failures[handle.index] = failures
            delay = _RESPAWN.delay(failures)
            self.log.warning("worker.respawn_delayed", index=handle.index, delay=delay)
            self.respawn_at[handle.index] = time.monotonic() + delay
            return
        self.init_failures.pop(handle.index, None)
        self.spawn(handle.index)

    def respawn_due(self) -> None:
        """Start the delayed replacements whose time has come."""
        now = time.monotonic()
        for index, when in list(self.respawn_at.items()):
            if now >= when:
                del self.respawn_at[index]
                self.spawn(index)

    def next_respawn(self, now: float) -> float | None:
        """Seconds until the next delayed replacement, or None."""
        return min((when - now for when in self.respawn_at.values()), default=None)

    def wait_started(self, timeout: float, stopping: Callable[[], bool]) -> None:
        """Return once every worker has left STARTING (or one exited, or time ran out)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not stopping():
            handles = self.live()
            if any(h.process.exitcode is not None for h in handles):
                return
            if all(h.slot.read().state is not WorkerState.STARTING for h in handles):
                return
            time.sleep(0.005)

    def signal_all(self, sig: int) -> None:
        """Send ``sig`` to every live worker."""
        for handle in self.live():
            signal_worker(handle, sig)


def signal_worker(handle: WorkerHandle, sig: int) -> None:
    """Send ``sig`` to a worker that is still running."""
    pid = handle.process.pid
    if pid is not None and handle.process.exitcode is None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
