"""The one enqueue path: from a producer's call to a signed message handed to a transport.

Every entry point (qredis's ``Producer``, qdjango's ``async_task``, the admin's retry, and the
schedules, chains and retries to come) builds its message with :func:`build_message` and hands
it over with :func:`send_message`, or does both with :func:`enqueue` / :func:`enqueue_many`. So Q's
options are read one way everywhere, and a new per-task option is added here and in
:mod:`qcore.options` (:class:`~qcore.TaskOptions`, :func:`~qcore.task_options`), nowhere else.

Q's options come as keywords and, as in Django Q, again in a ``q_options`` dict for tasks whose
own keyword arguments use those names: once ``q_options`` names an option, a keyword of that
name is the task's own argument (:func:`~qcore.apply_q_options`, re-exported here with
:func:`~qcore.task_options` and ``Q_OPTION_NAMES``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypedDict, Unpack

from qcore.batches import Batch
from qcore.codec import Codec
from qcore.errors import ConfigError
from qcore.events import EventBus, TaskEnqueued
from qcore.message import TaskMessage, TaskResult
from qcore.options import Q_OPTION_NAMES, apply_q_options, task_options
from qcore.protocols import AsyncTransport, Transport
from qcore.unique import lock_name, lock_ttl

__all__ = [
    "Q_OPTION_NAMES",
    "BatchOptions",
    "aenqueue_many",
    "apply_q_options",
    "asend_message",
    "build_message",
    "enqueue",
    "enqueue_many",
    "retry_message",
    "send_message",
    "task_options",
]

TaskFunc = Callable[..., Any] | str


def build_message(
    func: TaskFunc,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    hook: TaskFunc | None = None,
    group: str | None = None,
    task_name: str | None = None,
    timeout: float | None = None,
    save: bool | None = None,
    max_attempts: int | None = None,
    eta: float | None = None,
    countdown: float | None = None,
    retried_from: str | None = None,
    schedule: str | None = None,
    due: float | None = None,
    runner: str | None = None,
    retries: int | None = None,
    retry_backoff: float | None = None,
    retry_backoff_max: float | None = None,
    retry_jitter: bool | None = None,
    retry_on: Any = None,
    unique: bool | str | None = None,
    unique_for: float | None = None,
    priority: int | None = None,
    q_options: Mapping[str, Any] | None = None,
    task_id: str | None = None,
) -> TaskMessage:
    """The message for ``func(*args, **kwargs)`` with Q's options, validated.

    ``q_options`` wins over the keywords; a keyword it names moves into ``kwargs`` (the dict
    is changed in place, so pass one of your own). A bad option raises
    :class:`~qcore.ConfigError` (or TypeError for ``func``/``hook``) before anything is sent.
    """
    if q_options:
        given = {
            "hook": hook,
            "group": group,
            "task_name": task_name,
            "timeout": timeout,
            "save": save,
            "max_attempts": max_attempts,
            "eta": eta,
            "countdown": countdown,
            "retried_from": retried_from,
            "schedule": schedule,
            "due": due,
            "runner": runner,
            "retries": retries,
            "retry_backoff": retry_backoff,
            "retry_backoff_max": retry_backoff_max,
            "retry_jitter": retry_jitter,
            "retry_on": retry_on,
            "unique": unique,
            "unique_for": unique_for,
            "priority": priority,
        }
        if kwargs is None:
            kwargs = {}
        chosen = apply_q_options(q_options, given, kwargs)
        hook, group, task_name = chosen["hook"], chosen["group"], chosen["task_name"]
        timeout, save, eta = chosen["timeout"], chosen["save"], chosen["eta"]
        max_attempts, countdown = chosen["max_attempts"], chosen["countdown"]
        retried_from, schedule, due = chosen["retried_from"], chosen["schedule"], chosen["due"]
        runner = chosen["runner"]
        retries, retry_backoff = chosen["retries"], chosen["retry_backoff"]
        retry_backoff_max, retry_jitter = chosen["retry_backoff_max"], chosen["retry_jitter"]
        retry_on = chosen["retry_on"]
        unique, unique_for = chosen["unique"], chosen["unique_for"]
        priority = chosen["priority"]
    if group is not None and (not isinstance(group, str) or len(group) > 100):
        raise ConfigError(f"group must be a string of at most 100 characters, not {group!r}")
    if task_name is not None and (not isinstance(task_name, str) or not 0 < len(task_name) <= 100):
        raise ConfigError(f"task_name must be a string of 1 to 100 characters, not {task_name!r}")
    lock = None
    if unique is not None and unique is not False:
        lock = lock_name(func, args, kwargs or {}, unique)
    options = task_options(
        timeout=timeout,
        save=save,
        max_attempts=max_attempts,
        eta=eta,
        countdown=countdown,
        retried_from=retried_from,
        schedule=schedule,
        due=due,
        runner=runner,
        retries=retries,
        retry_backoff=retry_backoff,
        retry_backoff_max=retry_backoff_max,
        retry_jitter=retry_jitter,
        retry_on=retry_on,
        unique=lock,
        unique_for=unique_for,
        priority=priority,
    )
    return TaskMessage.new(
        func,
        args,
        kwargs,
        hook=hook,
        group=group,
        options=options,
        task_id=task_id,
        name=task_name,
    )


def retry_message(record: TaskResult) -> TaskMessage:
    """A new task that runs ``record``'s task again as it was sent: its func, args, kwargs,
    hook, group and options, under a new id, with ``retried_from`` naming the record's task.

    The options come from the record, never from the task's kwargs, so a task keyword named
    ``timeout`` stays the task's own. ``eta`` is dropped: a retry runs now.
    """
    options = dataclasses.replace(
        record.options, eta=None, retried_from=record.id, attempts=None, failures=None
    )
    return TaskMessage.new(
        record.func,
        record.args,
        record.kwargs,
        hook=record.hook,
        group=record.group,
        options=options,
    )


def send_message(
    transport: Transport, codec: Codec, message: TaskMessage, events: EventBus | None = None
) -> str:
    """Sign ``message`` and hand it to ``transport``: one call (one round trip on Redis).
    Then :class:`~qcore.events.TaskEnqueued` on ``events``, if anyone listens. Returns the
    task's id, or for a unique task whose lock a live task holds, that task's id (nothing was
    queued)."""
    opts = message.options
    eta = opts.eta
    delay = 0.0 if eta is None else max(0.0, eta - time.time())
    if opts.unique is not None:
        # priority only when set, as for enqueue below
        extra = {"priority": opts.priority} if opts.priority else {}
        holder = transport.enqueue_unique(
            message.id,
            codec.encode_message(message),
            lock=opts.unique,
            ttl=lock_ttl(opts.unique_for, delay),
            delay=delay,
            max_attempts=opts.max_attempts,
            **extra,
        )
        if holder != message.id:
            return holder
    elif opts.priority:  # only then: a transport written before priorities still takes the rest
        transport.enqueue(
            message.id,
            codec.encode_message(message),
            delay=delay,
            max_attempts=opts.max_attempts,
            priority=opts.priority,
        )
    else:
        transport.enqueue(
            message.id, codec.encode_message(message), delay=delay, max_attempts=opts.max_attempts
        )
    if events is not None and events.wants(TaskEnqueued):
        events.emit(TaskEnqueued(message.id, message, transport.queue))
    return message.id


async def asend_message(
    transport: AsyncTransport, codec: Codec, message: TaskMessage, events: EventBus | None = None
) -> str:
    """:func:`send_message` for an asyncio producer: the same signing, options and unique
    lock, awaited; returns the task's id (a unique task's live holder's, when one is)."""
    opts = message.options
    eta = opts.eta
    delay = 0.0 if eta is None else max(0.0, eta - time.time())
    if opts.unique is not None:
        holder = await transport.enqueue_unique(
            message.id,
            codec.encode_message(message),
            lock=opts.unique,
            ttl=lock_ttl(opts.unique_for, delay),
            delay=delay,
            max_attempts=opts.max_attempts,
            priority=opts.priority or 0,
        )
        if holder != message.id:
            return holder
    else:
        await transport.enqueue(
            message.id,
            codec.encode_message(message),
            delay=delay,
            max_attempts=opts.max_attempts,
            priority=opts.priority or 0,
        )
    if events is not None and events.wants(TaskEnqueued):
        events.emit(TaskEnqueued(message.id, message, transport.queue))
    return message.id


def enqueue(
    transport: Transport,
    codec: Codec,
    func: TaskFunc,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    events: EventBus | None = None,
    **options: Any,
) -> TaskMessage:
    """:func:`build_message` (``options`` are its keywords), then :func:`send_message`; returns
    the message that was queued."""
    message = build_message(func, args, kwargs, **options)
    send_message(transport, codec, message, events)
    return message


class BatchOptions(TypedDict, total=False):
    """The keywords of :func:`enqueue_many` and :func:`aenqueue_many`: the batch's options as
    :func:`build_message` takes them, where its events go, and its fixed ids."""

    hook: TaskFunc | None
    group: str | None
    timeout: float | None
    save: bool | None
    max_attempts: int | None
    priority: int | None
    events: EventBus | None
    task_ids: Sequence[str] | None
    idempotency_key: str | None


def _batch(
    codec: Codec, func: TaskFunc, calls: Iterable[Any], options: BatchOptions, caller: str
) -> Batch:
    """The signed batch of :func:`enqueue_many` or :func:`aenqueue_many` (``caller``, for the
    error a keyword they do not take is), built and checked before anything is sent."""
    unknown = sorted(options.keys() - BatchOptions.__optional_keys__)
    if unknown:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}")
    max_attempts = options.get("max_attempts")
    first = build_message(
        func,
        hook=options.get("hook"),
        group=options.get("group"),
        timeout=options.get("timeout"),
        save=options.get("save"),
        max_attempts=max_attempts,
        priority=options.get("priority"),
    )
    return Batch(
        codec,
        first,
        calls,
        max_attempts=max_attempts,
        events=options.get("events"),
        task_ids=options.get("task_ids"),
        idempotency_key=options.get("idempotency_key"),
    )


def enqueue_many(
    transport: Transport,
    codec: Codec,
    func: TaskFunc,
    calls: Iterable[Any],
    **options: Unpack[BatchOptions],
) -> list[str]:
    """Queue ``func(*call)`` for each element of ``calls`` (a non-tuple element is one
    argument) in the transport's all-or-nothing chunks; returns the ids in order.
    ``options`` (:class:`BatchOptions`): ``hook``, ``group``, ``timeout``, ``save``,
    ``max_attempts`` and ``priority`` as :func:`build_message` takes them, and ``events``:
    :class:`~qcore.events.TaskEnqueued` for each once all are queued, if anyone listens.

    Idempotent, when the ids are fixed before sending: ``task_ids`` (one per call, 32 hex
    digits, as :func:`~qcore.new_id` makes) or ``idempotency_key`` (the ids derived from it and
    each call's position, the same on every send; see :func:`batch_ids`). Then a task whose id
    is queued, delayed, in flight, dead-lettered or completed (within the transport's replay
    window) is skipped, so a caller that crashed or got an error sends the same batch again and
    no task runs twice (``TaskEnqueued`` only for the tasks queued by this call). A bad or
    repeated id is a :class:`~qcore.ConfigError` before anything is sent."""
    batch = _batch(codec, func, calls, options, "enqueue_many")
    if batch.fixed:
        queued = transport.enqueue_absent(batch.items, **batch.options)
        return batch.announced(transport.queue, queued)
    transport.enqueue_many(batch.items, **batch.options)
    return batch.announced(transport.queue)


async def aenqueue_many(
    transport: AsyncTransport,
    codec: Codec,
    func: TaskFunc,
    calls: Iterable[Any],
    **options: Unpack[BatchOptions],
) -> list[str]:
    """:func:`enqueue_many` for an asyncio producer: the same messages, ids and checks,
    awaited (idempotent with ``task_ids`` or ``idempotency_key`` as there)."""
    batch = _batch(codec, func, calls, options, "aenqueue_many")
    if batch.fixed:
        queued = await transport.enqueue_absent(batch.items, **batch.options)
        return batch.announced(transport.queue, queued)
    await transport.enqueue_many(batch.items, **batch.options)
    return batch.announced(transport.queue)
