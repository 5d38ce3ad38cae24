"""What a cluster counts for its metrics: a subscriber of the event bus, in every process.

A :class:`MetricsRecorder` counts the task events it sees (by queue and function) and keeps the
histograms of run time and of time waited in the queue. A cluster subscribes one to its bus: the
sentinel's copy counts what the sentinel emits (retries, timeouts, dead letters after a lost
worker, worker exits, and the run a lost worker was in), each worker's copy what that worker
emits: its runs (started, succeeded, failed, the run and wait times) once per batch, from the
batch's :class:`~qcore.events.TasksSettled`, never from a per-task event. A run is counted when
its batch is saved, with its outcome; a task running now shows in the in-flight gauge.
A worker counts straight into a :class:`MetricsCell`, a table of numbers in shared memory that
only it writes (each number an aligned 8-byte store, so a reader never sees half of one) and the
sentinel reads when scraped: no copy to publish, nothing lost when a worker is SIGKILLed, no
lock, no file per process. The sentinel adds them up for its one endpoint
(:mod:`qcluster.exporter`).

Label sets are bounded: at most :data:`MAX_FUNCS` functions per queue get a label of their own
(the next ones are counted under ``other``), and a process's table holds :data:`MAX_ROWS` rows
(past that, under queue and func ``other``).
"""

from __future__ import annotations

import ctypes
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from multiprocessing.context import BaseContext
from typing import Any

from qcore import EventBus, dotted_path
from qcore.events import (
    HookFailed,
    TaskDeadLettered,
    TaskEnqueued,
    TaskReplayed,
    TaskRetried,
    TasksSettled,
    TaskTimedOut,
    WorkerLost,
    WorkerStopped,
)

__all__ = [
    "COUNTERS",
    "MAX_FUNCS",
    "MAX_ROWS",
    "OTHER",
    "RUN_BUCKETS",
    "WAIT_BUCKETS",
    "MetricsCell",
    "MetricsRecorder",
    "Snapshot",
    "counter",
    "histogram",
    "merge",
]

COUNTERS = (
    "enqueued",
    "started",
    "succeeded",
    "failed",
    "retried",
    "timed_out",
    "dead_lettered",
    "replayed",
    "hooks_failed",
)
"""Counters kept per (queue, func), in this order at the head of each row."""
RUN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Upper bounds (seconds) of the run-time histogram's buckets (+Inf is implied)."""
WAIT_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)
"""Upper bounds (seconds) of the queue-wait histogram's buckets (+Inf is implied)."""
MAX_FUNCS = 100
"""Functions per queue with a label of their own; the next ones are counted as ``other``."""
MAX_ROWS = 256
"""(queue, func) rows one process counts; past that, under (``other``, ``other``)."""
OTHER = "other"
UNKNOWN = "unknown"
"""The func label of a task whose payload could not be read."""

_N = len(COUNTERS)
_RUN = _N  # run histogram: sum, then one count per bucket and +Inf
_WAIT = _RUN + 1 + len(RUN_BUCKETS) + 1
_ROW = _WAIT + 1 + len(WAIT_BUCKETS) + 1
_INDEX = {name: i for i, name in enumerate(COUNTERS)}
_STARTED, _SUCCEEDED, _FAILED = _INDEX["started"], _INDEX["succeeded"], _INDEX["failed"]
_NEW_ROW = threading.RLock()
_OWN_MAX = 1024
_LABEL = 256  # bytes of one row's "queue\0func"

Snapshot = dict[str, Any]
"""``{"rows": {(queue, func): [counters..., run sum, run buckets..., wait sum, wait
buckets...]}, "exits": {reason: n}}``: what :func:`merge` adds up."""


class _Table:
    """Rows of numbers by (queue, func) over a buffer: shared memory, or a private one.

    Layout: the number of rows used (a double, so all is one array), then :data:`MAX_ROWS`
    rows of numbers, then as many labels. A row's label is written before the count that
    makes it visible.
    """

    __slots__ = ("_index", "labels", "values")

    SIZE = 8 * (1 + MAX_ROWS * _ROW) + MAX_ROWS * _LABEL

    def __init__(self, buffer: Any) -> None:
        raw = memoryview(buffer).cast("B")
        split = 8 * (1 + MAX_ROWS * _ROW)
        self.values = raw[:split].cast("d")
        self.labels = raw[split:]
        self._index: dict[tuple[str, str], int] = {}

    def clear(self) -> None:
        self.values[0] = 0
        for i in range(1, len(self.values)):
            self.values[i] = 0.0
        self._index = {}

    def base(self, queue: str, func: str) -> int:
        """The offset of the row of (queue, func), added when new (the writer only)."""
        key = (queue, func)
        at = self._index.get(key)
        if at is not None:
            return at
        with _NEW_ROW:  # the sentinel counts from two threads (the scheduler's is the beacon)
            return self._add(key)

    def _add(self, key: tuple[str, str]) -> int:
        at = self._index.get(key)
        if at is not None:
            return at
        queue, func = key
        used = int(self.values[0])
        if used >= MAX_ROWS - 1 and key != (OTHER, OTHER):
            at = self._add((OTHER, OTHER))
        else:
            label = f"{queue}\0{func}".encode("utf-8", "replace")[: _LABEL - 1]
            self.labels[used * _LABEL : used * _LABEL + len(label)] = label
            self.labels[used * _LABEL + len(label)] = 0
            at = 1 + used * _ROW
            self.values[0] = used + 1
        self._index[key] = at
        return at

    def read(self) -> Snapshot:
        """The rows as they are now (each number read whole)."""
        rows: dict[tuple[str, str], list[float]] = {}
        used = min(int(self.values[0]), MAX_ROWS)
        values = self.values
        for i in range(used):
            label = bytes(self.labels[i * _LABEL : (i + 1) * _LABEL])
            head, _, rest = label.partition(b"\0")
            queue = head.decode("utf-8", "replace")
            func = rest.partition(b"\0")[0].decode("utf-8", "replace")
            row: list[float] = list(values[1 + i * _ROW : 1 + (i + 1) * _ROW])
            have = rows.get((queue, func))
            rows[(queue, func)] = row if have is None else [a + b for a, b in zip(have, row)]
        return {"rows": rows, "exits": {}}


class MetricsCell:
    """One worker's table in shared memory: counted into by the worker, read by the sentinel."""

    __slots__ = ("_raw", "_table")

    def __init__(self, ctx: BaseContext) -> None:
        self._raw: Any = ctx.RawArray(ctypes.c_char, _Table.SIZE)
        self._table: _Table | None = None

    def __getstate__(self) -> Any:
        return self._raw

    def __setstate__(self, state: Any) -> None:
        self._raw = state
        self._table = None

    @property
    def table(self) -> _Table:
        if self._table is None:
            self._table = _Table(self._raw)
        return self._table

    def read(self) -> Snapshot:
        """What the worker counted so far."""
        return self.table.read()

    def clear(self) -> None:
        """Empty the cell (its worker is gone and its figures were taken)."""
        self.table.clear()


class MetricsRecorder:
    """Counts a cluster's events. Picklable: each worker gets its own copy (see ``attach``)."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.exits: dict[str, int] = {}
        self._table = _Table(bytearray(_Table.SIZE))
        self._funcs: dict[str, set[str]] = {}
        self._own: dict[Any, int] = {}
        """Row offsets of this cluster's queue by the task's func (a dotted path, or the
        callable a message holds): a batch finds each of its rows with one lookup."""

    def __getstate__(self) -> dict[str, Any]:
        return {"queue": self.queue}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["queue"])  # type: ignore[misc]

    def subscribe(self, bus: EventBus) -> EventBus:
        """Subscribe to every event this recorder counts; returns ``bus``."""
        handlers: tuple[tuple[type[Any], Callable[[Any], None]], ...] = (
            (TaskEnqueued, self.enqueued),
            (TasksSettled, self.settled),
            (TaskRetried, self.retried),
            (TaskTimedOut, self.timed_out),
            (TaskDeadLettered, self.dead_lettered),
            (TaskReplayed, self.replayed),
            (HookFailed, self.hook_failed),
            (WorkerStopped, self.worker_stopped),
            (WorkerLost, self.worker_lost),
        )
        for event_type, handler in handlers:
            bus.subscribe(event_type, handler)
        return bus

    def attach(self, cell: MetricsCell) -> None:
        """Count from zero into ``cell`` (a worker, at its start: a forked copy holds the
        sentinel's figures, which the sentinel counts itself)."""
        self.exits = {}
        self._funcs = {}
        self._own = {}
        cell.clear()
        self._table = cell.table

    def snapshot(self) -> Snapshot:
        """A copy of the figures, for :func:`merge`."""
        snap = self._table.read()
        snap["exits"] = dict(self.exits)
        return snap

    # -- handlers ---------------------------------------------------------------------------

    def enqueued(self, event: TaskEnqueued) -> None:
        self._count(event.queue, event.message.func_path, "enqueued")

    def settled(self, event: TasksSettled) -> None:
        """Count a batch's runs: their times gathered by function, each row written once."""
        by_func: dict[str, tuple[list[float], list[float], list[float]]] = {}
        func = None
        waits: list[float] = []
        succeeded: list[float] = []
        failed: list[float] = []
        for done in event.outcomes:
            record = done.record
            if record.func != func:
                func = record.func
                lists = by_func.get(func)
                if lists is None:
                    lists = by_func[func] = ([], [], [])
                waits, succeeded, failed = lists
            message = done.message
            duration = done.duration
            if message is not None:
                options = message.options
                if options.cancelled is None:  # it ran (a cancelled task's twin never does)
                    # When it became due (TaskMessage.due, written out: once per task).
                    since = message.started
                    eta = options.eta
                    if eta is not None and eta > since:
                        since = eta
                    waits.append(record.stopped - duration - since)
            if done.retry is None and done.timed_out is None:
                (succeeded if record.success else failed).append(duration)
        for func, (waits, succeeded, failed) in by_func.items():
            self._add_runs(self._own_row(func or UNKNOWN), waits, succeeded, failed)

    def _add_runs(
        self, at: int, waits: list[float], succeeded: list[float], failed: list[float]
    ) -> None:
        values = self._table.values
        if waits:
            values[at + _STARTED] += len(waits)
            waits.sort()
            _add_sorted(values, at + _WAIT, WAIT_BUCKETS, waits)
        if succeeded:
            values[at + _SUCCEEDED] += len(succeeded)
        if failed:
            values[at + _FAILED] += len(failed)
        runs = succeeded + failed
        if runs:
            runs.sort()
            _add_sorted(values, at + _RUN, RUN_BUCKETS, runs)

    def retried(self, event: TaskRetried) -> None:
        self._count(self.queue, event.func or UNKNOWN, "retried")

    def timed_out(self, event: TaskTimedOut) -> None:
        self._count(self.queue, event.record.func or UNKNOWN, "timed_out")

    def dead_lettered(self, event: TaskDeadLettered) -> None:
        func = event.record.func if event.record is not None else ""
        self._count(self.queue, func or UNKNOWN, "dead_lettered")

    def replayed(self, event: TaskReplayed) -> None:
        self._count(self.queue, UNKNOWN, "replayed")

    def hook_failed(self, event: HookFailed) -> None:
        self._count(self.queue, event.record.func or UNKNOWN, "hooks_failed")

    def worker_stopped(self, event: WorkerStopped) -> None:
        self.exits[event.reason] = self.exits.get(event.reason, 0) + 1

    def worker_lost(self, event: WorkerLost) -> None:
        reason = event.reason or "lost"
        self.exits[reason] = self.exits.get(reason, 0) + 1
        if event.task_id is None:
            return
        # The run it was in never reached a batch's count: it is counted here.
        at = self._count(self.queue, event.func or UNKNOWN, "started")
        if event.waited is not None:
            values = self._table.values
            values[at + _WAIT] += event.waited
            values[at + _WAIT + 1 + bisect_left(WAIT_BUCKETS, event.waited)] += 1

    # -- plumbing ---------------------------------------------------------------------------

    def _own_row(self, func: Any) -> int:
        """The row of (this cluster's queue, ``func``): a dotted path or the callable itself."""
        at = self._own.get(func)
        if at is None:
            path = func if type(func) is str else dotted_path(func)
            at = self._count(self.queue, path, None)
            if (
                len(self._own) < _OWN_MAX
            ):  # a new function object per task (lambdas) must not grow it
                self._own[func] = at
        return at

    def _count(self, queue: str, func: str, counter: str | None) -> int:
        funcs = self._funcs.get(queue)
        if funcs is None:
            funcs = self._funcs[queue] = set()
        if func not in funcs:
            if len(funcs) >= MAX_FUNCS:
                func = OTHER
            funcs.add(func)
        at = self._table.base(queue, func)
        if counter is not None:
            self._table.values[at + _INDEX[counter]] += 1
        return at


def _add_sorted(values: Any, at: int, bounds: tuple[float, ...], times: list[float]) -> None:
    """Add ``times`` (sorted) to the histogram at ``at``: its sum, then a count per bucket.
    A negative time (clocks apart) counts as 0. Once per batch, not per task: a bisection per
    bucket the times reach."""
    values[at] += sum(times[bisect_left(times, 0.0) :])
    counted, n = 0, len(times)
    for i, bound in enumerate(bounds):
        upto = bisect_right(times, bound, counted)
        if upto > counted:
            values[at + 1 + i] += upto - counted
            counted = upto
            if counted == n:
                return
    values[at + 1 + len(bounds)] += n - counted


def merge(snapshots: Iterable[Snapshot]) -> Snapshot:
    """The sum of several processes' figures."""
    rows: dict[tuple[str, str], list[float]] = {}
    exits: dict[str, int] = {}
    for snap in snapshots:
        for key, row in snap["rows"].items():
            total = rows.get(key)
            if total is None:
                rows[key] = list(row)
            else:
                for i, value in enumerate(row):
                    total[i] += value
        for reason, n in snap["exits"].items():
            exits[reason] = exits.get(reason, 0) + n
    return {"rows": rows, "exits": exits}


def counter(row: list[float], name: str) -> float:
    """One counter of a row."""
    return row[_INDEX[name]]


def histogram(row: list[float], name: str) -> tuple[float, list[float]]:
    """``(sum, counts per bucket with +Inf last)`` of the ``run`` or ``wait`` histogram."""
    if name == "run":
        return row[_RUN], row[_RUN + 1 : _WAIT]
    return row[_WAIT], row[_WAIT + 1 : _ROW]
