"""Django Q's task API for async code: ``await async_task(...)``, ``await result(id, wait=...)``.

::

    from qdjango import aio

    async def view(request):
        task_id = await aio.async_task("myapp.tasks.report", 7)
        return JsonResponse({"result": await aio.result(task_id, wait=2000)})

The same messages, signing and options as :mod:`qdjango.tasks` (``wait`` in milliseconds, as
there), sent through :mod:`qredis.aio` on ``redis.asyncio``: concurrent calls of one event loop
share one connection (:mod:`qdjango.aio_site`), and a ``wait`` takes no thread: one
subscription per event loop wakes every waiter whose task was saved. Unique tasks, a
``q_options`` queue, chains and iterations go through the sync producer's Lua. The reading
half (``fetch``, ``result``, the group functions, ``running``, ``queue_size``) is
:mod:`qdjango.aio_results`, read with Django's async ORM; ``Chain``, ``Iter`` and ``AsyncTask``
are :mod:`qdjango.aio_workflows`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from asgiref.sync import sync_to_async

from qcore import (
    ConfigError,
    EventBus,
    TaskMessage,
    acancel,
    aenqueue_many,
    apply_q_options,
    asend_iter,
    asend_message,
    astart_chain,
    build_message,
    chain_messages,
    iter_messages,
)
from qcore import enqueue_many as qcore_enqueue_many
from qcore.events import TaskEnqueued
from qdjango import connection
from qdjango.aio_results import (
    count_group,
    delete_group,
    fetch,
    fetch_group,
    queue_size,
    result,
    result_group,
    running,
)
from qdjango.aio_site import announce, key_check, site
from qdjango.aio_workflows import AsyncTask, Chain, Iter
from qdjango.conf import get_settings, task_codec
from qdjango.tasks import TaskFunc

__all__ = [
    "AsyncTask",
    "Chain",
    "Iter",
    "async_chain",
    "async_iter",
    "async_task",
    "cancel",
    "count_group",
    "delete_group",
    "enqueue_many",
    "fetch",
    "fetch_group",
    "queue_size",
    "result",
    "result_group",
    "running",
    "send",
]

_SYNC_ONLY = frozenset({"redis", "transport", "broker"})


async def async_task(
    func: TaskFunc,
    *args: Any,
    hook: TaskFunc | None = None,
    group: str | None = None,
    timeout: float | None = None,
    save: bool | None = None,
    sync: bool | None = None,
    q_options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> str:
    """:func:`qdjango.async_task`, awaited: queue ``func(*args, **kwargs)``, return its id.

    The same options, ``q_options`` too: ``unique``/``unique_for`` (for a unique task whose
    lock a live task holds: that task's id, nothing queued), ``priority``, ``eta``,
    ``countdown``, and ``queue`` (one of ``Q_CLUSTER``'s ``queue`` and ``queues``; another
    name is a :class:`~qcore.ConfigError`, nothing queued). ``redis``/``transport``/``broker``
    are the sync API's only. ``sync=True`` (or ``Q_CLUSTER["sync"]``) runs the task in a
    thread, as the sync API runs it in the caller's.
    """
    queue = None
    if q_options:
        own = _SYNC_ONLY & set(q_options)
        if own:
            raise ConfigError(f"qdjango.aio takes no {', '.join(sorted(own))} option")
        chosen = apply_q_options(q_options, {"sync": sync}, kwargs, _q_options())
        sync, queue = chosen["sync"], chosen.get("queue")
        if queue is not None:
            connection.check_served(queue)  # an error here, not a task no cluster runs
        q_options = {k: v for k, v in q_options.items() if k not in ("sync", "queue")}
    message = build_message(
        func, args, kwargs, hook=hook, group=group, timeout=timeout, save=save, q_options=q_options
    )
    if _sync(sync):
        from qdjango.tasks import _run_sync

        await sync_to_async(_run_sync, thread_sensitive=True)(message)
        return message.id
    return await send(message, queue=queue)


def _q_options() -> frozenset[str]:
    from qdjango.tasks import Q_OPTIONS

    return Q_OPTIONS


def _sync(sync: bool | None) -> bool:
    return sync if sync is not None else get_settings().sync


async def send(message: TaskMessage, *, queue: str | None = None) -> str:
    """Sign and queue a built message on ``queue`` (default ``Q_CLUSTER``'s); returns its id
    (a unique task's live holder's, when one holds its lock). The signals of the enqueue are
    sent in a thread (their receivers may use the ORM). The site's signing key is checked as
    :func:`qdjango.async_task` checks it (one ``producer.key_not_accepted`` warning per
    process and key when no live cluster of the queue accepts it)."""
    at = site()
    target = at.queue(queue or get_settings().queue)
    codec = task_codec()
    task_id = await asend_message(target, codec, message)
    await key_check(at, codec, target.queue)
    bus = connection.events()
    if task_id == message.id and bus.wants(TaskEnqueued):
        await announce(bus, [TaskEnqueued(message.id, message, target.queue)])
    return task_id


async def enqueue_many(
    func: TaskFunc,
    calls: Iterable[Any],
    *,
    hook: TaskFunc | None = None,
    group: str | None = None,
    timeout: float | None = None,
    save: bool | None = None,
    max_attempts: int | None = None,
    priority: int | None = None,
    task_ids: Sequence[str] | None = None,
    idempotency_key: str | None = None,
    queue: str | None = None,
    sync: bool | None = None,
) -> list[str]:
    """Queue ``func(*call)`` for each element of ``calls`` (a non-tuple element is one
    argument) on ``queue`` (default ``Q_CLUSTER``'s), as :meth:`qredis.aio.Producer.enqueue_many`
    does: all-or-nothing chunks, at ``priority``; returns the ids in order. With ``task_ids``
    or ``idempotency_key`` the batch can be sent again after an error (or a crash) and no task
    runs twice. The site's signing key is checked and ``pre_enqueue`` sent (in a thread) for
    each task queued, as :func:`async_task` does; ``sync=True`` (or ``Q_CLUSTER["sync"]``)
    runs the tasks in a thread, one after the other."""
    options: dict[str, Any] = {
        "hook": hook,
        "group": group,
        "timeout": timeout,
        "save": save,
        "max_attempts": max_attempts,
        "priority": priority,
        "task_ids": task_ids,
        "idempotency_key": idempotency_key,
    }
    if _sync(sync):
        from qdjango.tasks import run_in_process

        ids: list[str] = []

        def send(transport: Any, codec: Any) -> None:
            ids.extend(qcore_enqueue_many(transport, codec, func, calls, **options))

        await sync_to_async(run_in_process, thread_sensitive=True)(send)
        return ids
    at = site()
    target = at.queue(queue or get_settings().queue)
    codec = task_codec()
    local, queued = _gathering()
    ids = await aenqueue_many(target, codec, func, calls, events=local, **options)
    await key_check(at, codec, target.queue)
    if queued:
        await announce(connection.events(), queued)
    return ids


def _gathering() -> tuple[EventBus | None, list[TaskEnqueued]]:
    """A bus of its own gathering a send's ``TaskEnqueued`` events, when the site's bus wants
    them (they are emitted there afterwards, in a thread: receivers may use the ORM)."""
    queued: list[TaskEnqueued] = []
    if not connection.events().wants(TaskEnqueued):
        return None, queued
    local = EventBus()
    local.subscribe(TaskEnqueued, queued.append)
    return local, queued


async def async_chain(
    chain: Sequence[Any],
    group: str | None = None,
    cached: Any = None,
    sync: bool | None = None,
    *,
    stop_on_failure: bool = True,
    q_options: Mapping[str, Any] | None = None,
) -> str:
    """:func:`qdjango.async_chain`, awaited: the links (callables, dotted paths or ``(func,
    args, kwargs)`` tuples) run one after the other, each queued by the step that acks the
    one before it; returns the chain's group. ``cached`` is ignored, as there; ``sync=True``
    runs the chain in a thread."""
    chain_id, messages = chain_messages(chain, group=group, q_options=q_options)
    if _sync(sync):
        from qcore import start_chain
        from qdjango.tasks import run_in_process

        def send(transport: Any, codec: Any) -> None:
            start_chain(transport, codec, chain_id, messages, stop_on_failure=stop_on_failure)

        await sync_to_async(run_in_process, thread_sensitive=True)(send)
        return chain_id
    at, codec = site(), task_codec()
    target = at.queue(get_settings().queue)
    local, queued = _gathering()
    await astart_chain(
        target, codec, chain_id, messages, stop_on_failure=stop_on_failure, events=local
    )
    await key_check(at, codec, target.queue)
    if queued:
        await announce(connection.events(), queued)
    return chain_id


async def async_iter(func: TaskFunc, args_iter: Any, **kwargs: Any) -> str:
    """:func:`qdjango.async_iter`, awaited: ``func(*args)`` for each element of
    ``args_iter``; returns the iteration's id, under which one ``Task`` is saved once every
    call finished, its result the list of results in the order of the arguments. ``kwargs``
    as there (options, ``q_options``, ``sync``; ``cached`` and ``hook`` dropped), not
    ``broker``."""
    sync = kwargs.pop("sync", None)
    if "broker" in kwargs:
        raise ConfigError("qdjango.aio takes no broker option")
    kwargs.pop("cached", None)
    kwargs.pop("hook", None)
    q_options = {**(kwargs.pop("q_options", None) or {}), **kwargs}
    iter_id, messages = iter_messages(func, args_iter, q_options=q_options or None)
    if _sync(sync):
        from qcore import send_iter
        from qdjango.tasks import run_in_process

        def send(transport: Any, codec: Any) -> None:
            send_iter(transport, codec, messages)

        await sync_to_async(run_in_process, thread_sensitive=True)(send)
        return iter_id
    at, codec = site(), task_codec()
    target = at.queue(get_settings().queue)
    local, queued = _gathering()
    await asend_iter(target, codec, messages, local)
    await key_check(at, codec, target.queue)
    if queued:
        await announce(connection.events(), queued)
    return iter_id


async def cancel(task_id: str, terminate: bool = False) -> str:
    """:func:`qdjango.cancel`, awaited: ``"queued"`` or ``"delayed"`` (it never runs, and ends
    as a Failure "Cancelled" with its hook), ``"terminating"`` with ``terminate=True`` for a
    running one; :class:`~qcore.TaskRunning` without it, :class:`~qcore.UnknownTask` for one
    not queued, delayed or running (one that finished already says so, from its row)."""
    from qdjango.models import Task

    async def row() -> Any:
        return await Task.objects.filter(id=task_id).only("success", "result").afirst()

    target = site().queue(get_settings().queue)
    return await acancel(target, task_codec(), task_id, terminate=terminate, record=row)
