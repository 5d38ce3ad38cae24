"""The table a process counts its metrics in (:mod:`qcluster.metrics`): rows of numbers by
(queue, func), in shared memory for a worker (:class:`MetricsCell`), and what the sentinel does
with them (:func:`merge`, :func:`counter`, :func:`histogram`).

Each number is an aligned 8-byte double written whole, so a reader never sees half of one;
only the process that owns a table writes to it.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterable
from multiprocessing.context import BaseContext
from typing import Any

__all__ = [
    "COUNTERS",
    "MAX_ROWS",
    "OTHER",
    "RUN_BUCKETS",
    "WAIT_BUCKETS",
    "MetricsCell",
    "Snapshot",
    "Table",
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
MAX_ROWS = 256
"""(queue, func) rows one process counts; past that, under (``other``, ``other``)."""
OTHER = "other"
_N = len(COUNTERS)
_RUN = _N  # run histogram: sum, then one count per bucket and +Inf
_WAIT = _RUN + 1 + len(RUN_BUCKETS) + 1
_ROW = _WAIT + 1 + len(WAIT_BUCKETS) + 1
_INDEX = {name: i for i, name in enumerate(COUNTERS)}
_STARTED, _SUCCEEDED, _FAILED = _INDEX["started"], _INDEX["succeeded"], _INDEX["failed"]
_NEW_ROW = threading.RLock()
_LABEL = 256  # bytes of one row's "queue\0func"

Snapshot = dict[str, Any]
"""``{"rows": {(queue, func): [counters..., run sum, run buckets..., wait sum, wait
buckets...]}, "exits": {reason: n}}``: what :func:`merge` adds up."""


class Table:
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
        self._raw: Any = ctx.RawArray(ctypes.c_char, Table.SIZE)
        self._table: Table | None = None

    def __getstate__(self) -> Any:
        return self._raw

    def __setstate__(self, state: Any) -> None:
        self._raw = state
        self._table = None

    @property
    def table(self) -> Table:
        if self._table is None:
            self._table = Table(self._raw)
        return self._table

    def read(self) -> Snapshot:
        """What the worker counted so far."""
        return self.table.read()

    def clear(self) -> None:
        """Empty the cell (its worker is gone and its figures were taken)."""
        self.table.clear()


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
