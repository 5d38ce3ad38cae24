"""Cancel: a task that has not run is swapped, in the transport, for its *cancelled twin*.

The twin is the same signed message with the option ``cancelled`` set. The transport swaps the
payloads in one atomic step and makes the twin due at once; the worker that gets it saves a
Failure "Cancelled" and calls the hook (under ``hook_timeout``, after the ack, like any other
task's), and never runs the function. A running task's termination is asked of the transport;
the sentinel of the worker that runs it kills that worker and sends the twin on the same way
(a coroutine task awaited beside others is cancelled in its worker's event loop instead, and
saved with the same kind of Failure there).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from qcore.codec import Codec
from qcore.errors import TaskRunning, UnknownTask
from qcore.message import TaskMessage
from qcore.protocols import AsyncTransport, ResultStore, Transport

__all__ = [
    "CANCELLED_AWAITED",
    "CANCELLED_QUEUED",
    "CANCELLED_RUNNING",
    "acancel",
    "cancel",
    "cancelled_error",
    "finished_error",
    "twin_maker",
]

CANCELLED_QUEUED = "Cancelled: the task was cancelled before it ran"
CANCELLED_RUNNING = "Cancelled: the task was terminated while running (its worker was killed)"
CANCELLED_AWAITED = (
    "Cancelled: the task was terminated while running (cancelled in its worker's event loop)"
)


def cancelled_error(message: TaskMessage, how: str | None = None) -> str:
    """The result text of a cancelled task's Failure (``how``: as the twin's ``cancelled``
    option says, or ``"awaited"`` for a coroutine task its worker's loop cancelled)."""
    how = how or message.options.cancelled
    if how == "awaited":
        return CANCELLED_AWAITED
    return CANCELLED_RUNNING if how == "running" else CANCELLED_QUEUED


def twin_maker(codec: Codec, how: str = "queued") -> Callable[[bytes], bytes]:
    """A function from a stored payload to its cancelled twin's, signed with ``codec``.

    Raises :class:`UnknownTask` for a payload that is already a twin (cancelled already).
    """

    def twin(payload: bytes) -> bytes:
        message = codec.decode_message(payload)
        if message.options.cancelled is not None:
            raise UnknownTask(f"task {message.id!r} was cancelled already")
        return codec.encode_message(message.with_options(cancelled=how))

    return twin


def cancel(
    transport: Transport,
    codec: Codec,
    task_id: str,
    *,
    terminate: bool = False,
    store: ResultStore | None = None,
) -> str:
    """Cancel ``task_id`` (see :meth:`qcore.Transport.cancel`): ``"queued"``, ``"delayed"`` or
    ``"terminating"``. A task that is nowhere in the transport raises
    :class:`~qcore.UnknownTask`, saying, when ``store`` has its record, that it finished (or
    was cancelled) already; so does a task held by a worker whose record is saved already (it
    ended, and its ack is on its way)."""
    try:
        return transport.cancel(task_id, twin_maker(codec), terminate=terminate)
    except (UnknownTask, TaskRunning):
        record = None if store is None else store.get(task_id)
        if record is None:
            raise
        raise finished_error(task_id, record) from None


async def acancel(
    transport: AsyncTransport,
    codec: Codec,
    task_id: str,
    *,
    terminate: bool = False,
    record: Callable[[], Awaitable[Any]] | None = None,
) -> str:
    """:func:`cancel` for an asyncio producer, awaited; ``record()`` reads the task's record
    (or row: anything with ``success`` and ``result``), or None, to say it finished."""
    try:
        return await transport.cancel(task_id, twin_maker(codec), terminate=terminate)
    except (UnknownTask, TaskRunning):
        found = None if record is None else await record()
        if found is None:
            raise
        raise finished_error(task_id, found) from None


def finished_error(task_id: str, record: Any) -> UnknownTask:
    """The error of a cancel whose task has a record (``success``, ``result``): it was
    cancelled already, or it finished."""
    if not record.success and str(record.result).startswith("Cancelled:"):
        return UnknownTask(f"task {task_id!r} was cancelled already")
    outcome = "a Success" if record.success else "a Failure"
    return UnknownTask(f"task {task_id!r} has finished already ({outcome})")
