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

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Any

from qcluster.metrictable import (
    _FAILED,
    _INDEX,
    _RUN,
    _STARTED,
    _SUCCEEDED,
    _WAIT,
    COUNTERS,
    MAX_ROWS,
    OTHER,
    RUN_BUCKETS,
    WAIT_BUCKETS,
    MetricsCell,
    Snapshot,
    Table,
    counter,
    histogram,
    merge,
)
from qcore import EventBus, dotted_path
from qcore.events import (
    HookFailed,
    TaskDeadLettered,
    TaskEnqueued,
    TaskOutcome,
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

MAX_FUNCS = 100
"""Functions per queue with a label of their own; the next ones are counted as ``other``."""
UNKNOWN = "unknown"
"""The func label of a task whose payload could not be read."""

_OWN_MAX = 1024


class MetricsRecorder:
    """Counts a cluster's events. Picklable: each worker gets its own copy (see ``attach``)."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.exits: dict[str, int] = {}
        self._table = Table(bytearray(Table.SIZE))
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
        outcomes = event.outcomes
        if not outcomes:
            return
        # A batch of plain runs of one function (a busy queue's usual batch), counted with the
        # fewest reads of each task's fields: their cost per task is most of what the metrics
        # cost a worker. Any other batch is counted by _settled_each.
        func = outcomes[0].record.func
        waits: list[float] = []
        runs: list[float] = []
        failed = 0
        for message, _, record, _, duration, retry, timed_out in outcomes:
            if message is None or retry is not None or timed_out is not None:
                break
            options = message.options
            if options.cancelled is not None or options.eta is not None or record.func != func:
                break
            waits.append(record.stopped - duration - message.started)
            runs.append(duration)
            if not record.success:
                failed += 1
        else:
            runs.sort()
            at = self._own_row(func or UNKNOWN)
            self._add_runs(at, waits, runs, len(runs) - failed, failed)
            return
        self._settled_each(outcomes)

    def _settled_each(self, outcomes: tuple[TaskOutcome, ...]) -> None:
        """Any batch, read task by task."""
        by_func: dict[str, tuple[list[float], list[float], list[float]]] = {}
        func = None
        waits: list[float] = []
        succeeded: list[float] = []
        failed: list[float] = []
        for done in outcomes:
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
            at = self._own_row(func or UNKNOWN)
            self._add_runs(at, waits, sorted(succeeded + failed), len(succeeded), len(failed))

    def _add_runs(
        self, at: int, waits: list[float], runs: list[float], succeeded: int, failed: int
    ) -> None:
        """Add to the row at ``at``: ``waits`` (started runs), ``runs`` (sorted times)."""
        values = self._table.values
        if waits:
            values[at + _STARTED] += len(waits)
            waits.sort()
            _add_sorted(values, at + _WAIT, WAIT_BUCKETS, waits)
        if succeeded:
            values[at + _SUCCEEDED] += succeeded
        if failed:
            values[at + _FAILED] += failed
        if runs:
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
    A negative time (clocks apart) counts as 0. Once per batch, not per task: one write when
    the batch's times share a bucket, else a bisection per bucket between theirs."""
    n = len(times)
    if times[0] >= 0.0:
        values[at] += sum(times)
        first = bisect_left(bounds, times[0])
    else:
        values[at] += sum(times[bisect_left(times, 0.0) :])
        first = 0
    last = bisect_left(bounds, times[-1])  # the bucket of the longest (len(bounds): +Inf)
    counted = 0
    for i in range(first, last):
        upto = bisect_right(times, bounds[i], counted)
        if upto > counted:
            values[at + 1 + i] += upto - counted
            counted = upto
    values[at + 1 + last] += n - counted
