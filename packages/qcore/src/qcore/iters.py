"""Iterations: one function over many arguments, one collated record (django-q2's
``async_iter``).

Each call is a task of the iteration's group with the options ``iter`` (the iteration's id),
``iter_index`` and ``iter_size``, whose own success is not saved. As each finishes, the worker
puts its signed record in the iteration's hash in the transport (one write per index: no
read-modify-write, so workers never race), before it acks. The worker whose write completes
the hash reads it back, builds the collated record (id: the iteration's; result: the results
in the order of the arguments) and saves it, also before its ack: a worker lost on the way has
its task run again, which completes the hash again, so the collated record is saved at least
once and, being an upsert of the same record, is one record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from qcore.codec import Codec
from qcore.enqueue import build_message
from qcore.errors import ConfigError
from qcore.events import EventBus, TaskEnqueued
from qcore.message import TaskMessage, TaskResult
from qcore.naming import humanize, new_id
from qcore.protocols import AsyncTransport, Transport

__all__ = ["asend_iter", "collate", "iter_messages", "send_iter"]

TaskFunc = Callable[..., Any] | str


def iter_messages(
    func: TaskFunc,
    args_iter: Iterable[Any],
    *,
    group: str | None = None,
    q_options: Mapping[str, Any] | None = None,
) -> tuple[str, list[TaskMessage]]:
    """The iteration's id (``group``, or a new one) and one message per element of
    ``args_iter`` (a non-tuple element is one argument). Raises :class:`ConfigError` for an
    empty iteration."""
    if isinstance(args_iter, str | bytes | Mapping) or not isinstance(args_iter, Iterable):
        raise ConfigError(f"args_iter must be an iterable of arguments, not {args_iter!r}")
    calls = [call if isinstance(call, tuple) else (call,) for call in args_iter]
    if not calls:
        raise ConfigError("an iteration needs at least one set of arguments; args_iter is empty")
    iter_id = group if group is not None else new_id()
    first = build_message(func, calls[0], group=iter_id, q_options=q_options)
    size = len(calls)
    messages = []
    for index, args in enumerate(calls, start=1):
        base = (
            first
            if index == 1
            else TaskMessage.new(func, args, group=iter_id, options=first.options)
        )
        messages.append(
            base.with_options(save=False, iter=iter_id, iter_index=index, iter_size=size)
        )
    return iter_id, messages


def send_iter(
    transport: Transport,
    codec: Codec,
    messages: Sequence[TaskMessage],
    events: EventBus | None = None,
) -> None:
    """Sign and queue an iteration's calls in the transport's all-or-nothing chunks."""
    encode = codec.encode_message
    transport.enqueue_many(
        [(m.id, encode(m)) for m in messages], max_attempts=messages[0].options.max_attempts
    )
    _announce(transport.queue, messages, events)


async def asend_iter(
    transport: AsyncTransport,
    codec: Codec,
    messages: Sequence[TaskMessage],
    events: EventBus | None = None,
) -> None:
    """:func:`send_iter` for an asyncio producer: the same signed calls and chunks, awaited."""
    encode = codec.encode_message
    await transport.enqueue_many(
        [(m.id, encode(m)) for m in messages], max_attempts=messages[0].options.max_attempts
    )
    _announce(transport.queue, messages, events)


def _announce(queue: str, messages: Sequence[TaskMessage], events: EventBus | None) -> None:
    if events is not None and events.wants(TaskEnqueued):
        for message in messages:
            events.emit(TaskEnqueued(message.id, message, queue))


def collate(iter_id: str, payloads: Sequence[bytes], codec: Codec) -> TaskResult:
    """The iteration's record from its tasks' signed records (in any order): the results in
    the order of the arguments (a failure's: its error text), a success when all were."""
    records = sorted((codec.decode_result(p) for p in payloads), key=_index)
    first = records[0]
    return TaskResult(
        id=iter_id,
        name=humanize(iter_id) if _hex(iter_id) else iter_id,
        func=first.func,
        args=tuple(r.args for r in records),
        kwargs={},
        result=[r.result for r in records],
        success=all(r.success for r in records),
        started=min(r.started for r in records),
        stopped=time.time(),
        attempt_count=1,
        group=iter_id,
        cluster=first.cluster,
    )


def _index(record: TaskResult) -> int:
    return record.options.iter_index or 0


def _hex(value: str) -> bool:
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return len(value) == 32
