"""A worker's slot: a small record in shared memory that only its worker writes.

The sentinel reads it to know what a worker is doing (and what it was doing when it died)
without any lock or pipe: a SIGKILLed worker can leave nothing held. A sequence counter makes
reads consistent (a seqlock): the writer makes it odd, writes, makes it even; a reader retries
while it is odd or changed under it. A worker killed in the middle of a write leaves it odd,
and the reader then reports the record as torn: the worker was between tasks, so nothing it
held had started.

A worker awaiting coroutine tasks side by side (``async_concurrency`` > 1) also lists them in its
slot's *awaiting* entries, one per task it can await at once, each marked in use by one word
written after the rest and framed by its own sequence counter: the sentinel publishes them as
running, and once the worker is gone counts the attempt of each (poison however it runs). One
word of each entry is the sentinel's to write: ``cancel``, the fencing token of the task whose
termination was asked; the worker's loop reads it within its tick and cancels that coroutine.
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from typing import Any

from qcluster.states import WorkerState

__all__ = ["AwaitingEntry", "AwaitingTask", "Slot", "SlotRecord", "SlotView"]

_ID_SIZE = 256
_AWAITING_ID_SIZE = 104
"""Room for a task id of up to 100 characters (what the message accepts)."""
_NAME_SIZE = 64
_FUNC_SIZE = 192


class SlotRecord(ctypes.Structure):
    """The raw layout in shared memory."""

    _fields_ = (
        ("seq", ctypes.c_uint64),
        ("state", ctypes.c_int32),
        ("pid", ctypes.c_int32),
        ("attempt", ctypes.c_int32),
        ("max_attempts", ctypes.c_int32),
        ("token", ctypes.c_int64),
        ("since", ctypes.c_double),
        ("started", ctypes.c_double),
        ("due", ctypes.c_double),
        ("deadline", ctypes.c_double),
        ("timeout", ctypes.c_double),
        ("processed", ctypes.c_uint64),
        ("failed", ctypes.c_uint64),
        ("run_total", ctypes.c_double),
        ("batch", ctypes.c_int32),
        ("task_id", ctypes.c_char * _ID_SIZE),
        ("name", ctypes.c_char * _NAME_SIZE),
        ("func", ctypes.c_char * _FUNC_SIZE),
    )


class AwaitingEntry(ctypes.Structure):
    """One coroutine task a worker awaits (``used`` is written last when it starts, first
    when it ends; ``seq`` is odd while it is written). ``cancel`` is the sentinel's."""

    _fields_ = (
        ("seq", ctypes.c_uint32),
        ("used", ctypes.c_int32),
        ("attempt", ctypes.c_int32),
        ("max_attempts", ctypes.c_int32),
        ("token", ctypes.c_int64),
        ("cancel", ctypes.c_int64),
        ("started", ctypes.c_double),
        ("task_id", ctypes.c_char * _AWAITING_ID_SIZE),
        ("name", ctypes.c_char * _NAME_SIZE),
        ("func", ctypes.c_char * _FUNC_SIZE),
    )


@dataclass(frozen=True, slots=True)
class AwaitingTask:
    """A coroutine task the worker was awaiting, as its slot listed it (or the task a slot
    shows running, in the same shape)."""

    task_id: str
    attempt: int
    max_attempts: int
    token: int = 0
    started: float = 0.0
    """Wall-clock time it started."""
    name: str = ""
    func: str = ""
    index: int = -1
    """Its entry in the slot (-1: not an awaiting entry)."""


@dataclass(frozen=True, slots=True)
class SlotView:
    """A consistent copy of a slot, as the sentinel sees it."""

    state: WorkerState
    pid: int
    task_id: str
    name: str
    func: str
    attempt: int
    max_attempts: int
    token: int
    since: float
    """``time.monotonic()`` when the state began."""
    started: float
    """Wall-clock time the current task started (0 when idle)."""
    due: float
    """Wall-clock time the current task became due: enqueued, or its eta (0: unknown)."""
    deadline: float
    """``time.monotonic()`` past which the running task has timed out (0: no timeout)."""
    timeout: float
    processed: int
    failed: int
    run_total: float = 0.0
    """Seconds the successful tasks' functions ran, added up (for the status's mean run)."""
    torn: bool = False
    """The writer died mid-write: the fields may mix two records; trust only the counts."""

    @property
    def running(self) -> str | None:
        """The id of the task being run, or None."""
        if self.torn or self.state is not WorkerState.RUNNING or not self.task_id:
            return None
        return self.task_id


class Slot:
    """One worker's shared record. Picklable into the worker under any start method.

    ``awaiting``: how many coroutine tasks its worker may await at once (the entries listing
    them; 0 for ``async_concurrency`` = 1, where the slot's one task is all there is).
    """

    __slots__ = ("_awaiting", "_raw")

    def __init__(self, ctx: BaseContext | None = None, *, awaiting: int = 0) -> None:
        if ctx is None:
            from multiprocessing import sharedctypes

            self._raw: Any = sharedctypes.RawValue(SlotRecord)
            entries: Any = sharedctypes.RawArray(AwaitingEntry, awaiting) if awaiting else None
        else:
            self._raw = ctx.RawValue(SlotRecord)
            entries = ctx.RawArray(AwaitingEntry, awaiting) if awaiting else None
        self._awaiting: Any = entries

    def __getstate__(self) -> Any:
        return (self._raw, self._awaiting)

    def __setstate__(self, state: Any) -> None:
        self._raw, self._awaiting = state

    # -- writer side (the worker) ---------------------------------------------------------

    def reset(self, pid: int) -> None:
        """A fresh worker takes the slot: counts start from zero."""
        r = self._raw
        r.seq += 1
        r.state = WorkerState.STARTING
        r.pid = pid
        r.attempt = r.max_attempts = 0
        r.token = 0
        r.since = time.monotonic()
        r.started = r.due = r.deadline = r.timeout = 0.0
        r.processed = r.failed = 0
        r.task_id = r.name = r.func = b""
        r.seq += 1
        for entry in self._awaiting or ():
            entry.used = 0

    @property
    def batch(self) -> int:
        """The batch size this slot's worker last fetched with, kept across its lives (not
        cleared by :meth:`reset`): a replacement starts where its predecessor was instead of
        growing again from 1 (a recycled worker's short life would be spent growing). A hint
        only, read and written outside the sequence counter."""
        return int(self._raw.batch)

    @batch.setter
    def batch(self, size: int) -> None:
        self._raw.batch = size

    def set_state(self, state: WorkerState) -> None:
        """Enter a state that concerns no single task (idle, saving, hook, stopping)."""
        r = self._raw
        r.seq += 1
        r.state = state
        r.since = time.monotonic()
        r.deadline = 0.0
        r.seq += 1

    def begin(
        self,
        task_id: str,
        name: str,
        func: str,
        *,
        attempt: int,
        max_attempts: int,
        token: int,
        timeout: float | None,
        due: float = 0.0,
    ) -> None:
        """A task starts running (``due``: when it was enqueued, or its eta)."""
        r = self._raw
        now = time.monotonic()
        r.seq += 1
        r.state = WorkerState.RUNNING
        r.task_id = task_id.encode()[: _ID_SIZE - 1]
        r.name = name.encode("utf-8", "replace")[: _NAME_SIZE - 1]
        r.func = func.encode("utf-8", "replace")[: _FUNC_SIZE - 1]
        r.attempt = attempt
        r.max_attempts = max_attempts
        r.token = token
        r.since = now
        r.started = time.time()
        r.due = due
        r.timeout = timeout or 0.0
        r.deadline = now + timeout if timeout else 0.0
        r.seq += 1

    def show(
        self,
        task_id: str,
        name: str,
        func: str,
        *,
        attempt: int,
        max_attempts: int,
        token: int,
        started: float,
        deadline: float,
        timeout: float | None,
        due: float = 0.0,
    ) -> None:
        """Show a task already running (a coroutine awaited beside others): its wall-clock
        start and the ``time.monotonic()`` deadline past which the worker is killed (0: none)."""
        r = self._raw
        r.seq += 1
        r.state = WorkerState.RUNNING
        r.task_id = task_id.encode()[: _ID_SIZE - 1]
        r.name = name.encode("utf-8", "replace")[: _NAME_SIZE - 1]
        r.func = func.encode("utf-8", "replace")[: _FUNC_SIZE - 1]
        r.attempt = attempt
        r.max_attempts = max_attempts
        r.token = token
        r.since = time.monotonic()
        r.started = started
        r.due = due
        r.timeout = timeout or 0.0
        r.deadline = deadline
        r.seq += 1

    def end(self, success: bool, run_time: float | None = None) -> None:
        """The running task finished (its result waits to be saved); ``run_time``: the
        seconds its function ran."""
        r = self._raw
        r.seq += 1
        r.processed += 1
        if not success:
            r.failed += 1
        elif run_time:
            r.run_total += run_time
        r.state = WorkerState.SAVING
        r.deadline = 0.0
        r.seq += 1

    def awaiting_start(
        self,
        index: int,
        task_id: str,
        attempt: int,
        max_attempts: int,
        *,
        token: int = 0,
        started: float = 0.0,
        name: str = "",
        func: str = "",
    ) -> None:
        """Entry ``index`` lists a coroutine task now awaited (``started``: wall clock)."""
        entries = self._awaiting
        if entries is None or not 0 <= index < len(entries):
            return
        entry = entries[index]
        entry.seq += 1
        entry.used = 0
        entry.task_id = task_id.encode()[: _AWAITING_ID_SIZE - 1]
        entry.attempt = attempt
        entry.max_attempts = max_attempts
        entry.token = token
        entry.started = started
        entry.name = name.encode("utf-8", "replace")[: _NAME_SIZE - 1]
        entry.func = func.encode("utf-8", "replace")[: _FUNC_SIZE - 1]
        entry.used = 1
        entry.seq += 1

    def cancel_asked(self, index: int) -> int:
        """The token the sentinel wrote in entry ``index`` (0: none): the task there is to be
        cancelled when its token is this one."""
        entries = self._awaiting
        if entries is not None and 0 <= index < len(entries):
            return int(entries[index].cancel)
        return 0

    def awaiting_end(self, index: int) -> None:
        """The task of entry ``index`` ended (its record waits to be saved)."""
        entries = self._awaiting
        if entries is not None and 0 <= index < len(entries):
            entries[index].used = 0

    # -- reader side (the sentinel) -------------------------------------------------------

    def awaiting(self, *, live: bool = False) -> list[AwaitingTask]:
        """The coroutine tasks listed as awaited. Once the worker is gone, every entry in use;
        ``live`` (the worker runs on): only entries read whole, one being written skipped
        (it is seen at the next read)."""
        found = []
        for index, entry in enumerate(self._awaiting or ()):
            if live:
                before = entry.seq
                copy = AwaitingEntry.from_buffer_copy(entry)
                if before % 2 or copy.seq != before or entry.seq != before:
                    continue
            else:
                copy = entry
            if copy.used == 1 and copy.task_id:
                found.append(_awaiting_task(copy, index))
        return found

    def ask_cancel(self, index: int, token: int) -> None:
        """Ask the worker to cancel the coroutine of entry ``index`` if its token is
        ``token`` (the sentinel's one write into a slot)."""
        entries = self._awaiting
        if entries is not None and 0 <= index < len(entries):
            entries[index].cancel = token

    def glance(self) -> tuple[int, bytes, int]:
        """The state, the running task's id and the count of tasks finished, as they are now,
        without the consistent copy :meth:`read` makes: for noticing a change (a torn glance
        only makes the next one see a change), at a fraction of a read's cost."""
        r = self._raw
        return r.state, r.task_id, r.processed

    def read(self, *, tries: int = 100) -> SlotView:
        """A consistent copy; after ``tries`` failed attempts, a torn copy marked as such."""
        raw = self._raw
        copy = SlotRecord.from_buffer_copy(raw)
        for _ in range(tries):
            before = raw.seq
            if before % 2 == 0:
                copy = SlotRecord.from_buffer_copy(raw)
                if copy.seq == before and raw.seq == before:
                    return _view(copy, torn=False)
            time.sleep(0)
        return _view(copy, torn=True)


def _awaiting_task(entry: AwaitingEntry, index: int) -> AwaitingTask:
    return AwaitingTask(
        entry.task_id.decode("ascii", "replace"),
        entry.attempt,
        entry.max_attempts,
        token=entry.token,
        started=entry.started,
        name=entry.name.decode("utf-8", "replace"),
        func=entry.func.decode("utf-8", "replace"),
        index=index,
    )


def _view(r: SlotRecord, *, torn: bool) -> SlotView:
    try:
        state = WorkerState(r.state)
    except ValueError:
        state, torn = WorkerState.STARTING, True
    return SlotView(
        state=state,
        pid=r.pid,
        task_id=r.task_id.decode("ascii", "replace"),
        name=r.name.decode("utf-8", "replace"),
        func=r.func.decode("utf-8", "replace"),
        attempt=r.attempt,
        max_attempts=r.max_attempts,
        token=r.token,
        since=r.since,
        started=r.started,
        due=r.due,
        deadline=r.deadline,
        timeout=r.timeout,
        processed=r.processed,
        failed=r.failed,
        run_total=r.run_total,
        torn=torn,
    )
