"""Django Q's task API for async code: ``await async_task(...)``, ``await result(id, wait=...)``.

::

    from qdjango import aio

    async def view(request):
        task_id = await aio.async_task("myapp.tasks.report", 7)
        return JsonResponse({"result": await aio.result(task_id, wait=2000)})

The same messages, signing and options as :mod:`qdjango.tasks` (``wait`` in milliseconds, as
there), sent through :mod:`qredis.aio` on ``redis.asyncio``: concurrent calls of one event loop
share one connection, and a ``wait`` takes no thread: one subscription per event loop wakes
every waiter whose task was saved. Results are read with Django's async ORM.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from asgiref.sync import sync_to_async

from qcore import (
    Codec,
    ConfigError,
    EventBus,
    TaskMessage,
    aenqueue_many,
    apply_q_options,
    asend_message,
    build_message,
)
from qcore import enqueue_many as qcore_enqueue_many
from qcore.events import TaskEnqueued
from qdjango import connection
from qdjango.conf import QSettings, get_settings, on_change, task_codec
from qdjango.tasks import TaskFunc
from qredis.aio import AsyncNotifier, AsyncQueue, async_client
from qredis.aio_shards import AsyncShardedQueue
from qredis.status import live_clusters

__all__ = [
    "async_task",
    "count_group",
    "delete_group",
    "enqueue_many",
    "fetch",
    "fetch_group",
    "result",
    "result_group",
    "send",
]

T = TypeVar("T")


class _Site:
    """The asyncio objects of one event loop (``redis.asyncio`` clients belong to a loop)."""

    def __init__(self, conf: QSettings) -> None:
        self.client = _client(conf)
        self.queues: dict[str, AsyncQueue | AsyncShardedQueue] = {}
        self.notifier = AsyncNotifier(self.client, namespace=conf.queue)
        self.served, self.shards = set(connection.served_queues(conf)), conf.cluster.shards
        self.closer = _closing(self)
        """Closes the site's connections when its loop shuts down (see :func:`_site`)."""

    async def close(self) -> None:
        await self.notifier.close()
        await self.client.aclose()

    def queue(self, name: str) -> AsyncQueue | AsyncShardedQueue:
        """``name``'s queue; one ``Q_CLUSTER`` serves in its ``shards``."""
        found = self.queues.get(name)
        if found is None:
            if name in self.served and self.shards > 1:
                found = AsyncShardedQueue(self.client, name, self.shards)
            else:
                found = AsyncQueue(self.client, name)
            self.queues[name] = found
        return found


_sites: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Site] = weakref.WeakKeyDictionary()


@on_change
def _forget() -> None:
    _sites.clear()  # their closers close their clients in their loops, once collected


def _client(conf: QSettings) -> Any:
    if conf.django_redis:
        from django_redis import get_redis_connection

        kwargs = dict(get_redis_connection(conf.django_redis).connection_pool.connection_kwargs)
        kwargs.pop("connection_class", None)
        return async_client(**kwargs)
    if conf.redis_url is not None:
        return async_client(conf.redis_url, socket_timeout=conf.producer_timeout)
    return async_client(**{"socket_timeout": conf.producer_timeout, **dict(conf.redis_kwargs)})


def _site() -> _Site:
    loop = asyncio.get_running_loop()
    site = _sites.get(loop)
    if site is None:
        site = _sites[loop] = _Site(get_settings())
        # The loop knows the site's closer from its first step (an async generator's first
        # iteration registers it with the running loop): asyncio.run(), or any loop shut
        # down with shutdown_asyncgens(), closes it, and so the site's connections, in the
        # loop before the loop closes (otherwise each loop's sockets stayed open until
        # collected, and were then closed from a closed loop, with ResourceWarnings).
        try:
            site.closer.asend(None).send(None)
        except StopIteration:
            pass
    return site


async def _closing(site: _Site) -> Any:
    try:
        yield
    finally:
        for loop, found in list(_sites.items()):
            if found is site:  # the site refers to its loop: the weak key never died alone
                del _sites[loop]
        await site.close()


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

    The same options (``q_options`` too; ``redis``/``transport``/``broker`` are the sync API's
    only). ``sync=True`` (or ``Q_CLUSTER["sync"]``) runs the task in a thread, as the sync API
    runs it in the caller's.
    """
    if q_options:
        own = {"sync", "redis", "transport", "broker"} & set(q_options)
        if own - {"sync"}:
            raise ConfigError(f"qdjango.aio takes no {', '.join(sorted(own - {'sync'}))} option")
        chosen = apply_q_options(q_options, {"sync": sync}, kwargs, _q_options())
        sync = chosen["sync"]
        q_options = {k: v for k, v in q_options.items() if k != "sync"}
    message = build_message(
        func, args, kwargs, hook=hook, group=group, timeout=timeout, save=save, q_options=q_options
    )
    if sync if sync is not None else get_settings().sync:
        from qdjango.tasks import _run_sync

        await sync_to_async(_run_sync, thread_sensitive=True)(message)
        return message.id
    await send(message)
    return message.id


def _q_options() -> frozenset[str]:
    from qdjango.tasks import Q_OPTIONS

    return Q_OPTIONS


async def send(message: TaskMessage, *, queue: str | None = None) -> None:
    """Sign and queue a built message on ``queue`` (default ``Q_CLUSTER``'s); the signals of
    the enqueue are sent in a thread (their receivers may use the ORM). The site's signing key
    is checked as :func:`qdjango.async_task` checks it (one ``producer.key_not_accepted``
    warning per process and key when no live cluster of the queue accepts it)."""
    site = _site()
    target = site.queue(queue or get_settings().queue)
    codec = task_codec()
    await asend_message(target, codec, message)
    await _key_check(site, codec, target.queue)
    bus = connection.events()
    if bus.wants(TaskEnqueued):
        await _announce(bus, [TaskEnqueued(message.id, message, target.queue)])


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
    if sync if sync is not None else get_settings().sync:
        from qdjango.tasks import run_in_process

        ids: list[str] = []

        def send(transport: Any, codec: Any) -> None:
            ids.extend(qcore_enqueue_many(transport, codec, func, calls, **options))

        await sync_to_async(run_in_process, thread_sensitive=True)(send)
        return ids
    site = _site()
    target = site.queue(queue or get_settings().queue)
    codec = task_codec()
    bus = connection.events()
    # Gathered here, sent in a thread: their receivers may use the ORM.
    queued: list[TaskEnqueued] = []
    local = None
    if bus.wants(TaskEnqueued):
        local = EventBus()
        local.subscribe(TaskEnqueued, queued.append)
    ids = await aenqueue_many(target, codec, func, calls, events=local, **options)
    await _key_check(site, codec, target.queue)
    if queued:
        await _announce(bus, queued)
    return ids


async def _key_check(site: _Site, codec: Codec, queue: str) -> None:
    """The sync async_task's key check, reading the clusters' statuses on this loop's
    client."""
    statuses = functools.partial(live_clusters, site.client, get_settings().queue)
    await connection.key_watch().acheck(codec, statuses, queue)


async def _announce(bus: EventBus, events: list[TaskEnqueued]) -> None:
    """Emit ``events`` on ``bus`` in asgiref's thread (receivers may use the ORM)."""

    def emit() -> None:
        for event in events:
            bus.emit(event)

    await sync_to_async(emit, thread_sensitive=True)()


async def _wait(
    key: str, wait: float, check: Callable[[], Awaitable[T | None]], *, any_message: bool
) -> T | None:
    if wait == 0:
        return await check()
    timeout = None if wait < 0 else wait / 1000.0
    return await _site().notifier.wait_for(key, timeout, check, any_message=any_message)


async def fetch(task_id: str, wait: float = 0) -> Any:
    """:func:`qdjango.fetch`, awaited: the saved ``Task`` (by id or name) or None; ``wait`` in
    ms (-1: forever), woken by the store's notice."""
    from qdjango.models import Task, _by_id_or_name

    async def check() -> Any:
        return await Task.objects.filter(**_by_id_or_name(task_id)).order_by("-stopped").afirst()

    return await _wait(task_id, wait, check, any_message=len(task_id) != 32)


async def result(task_id: str, wait: float = 0) -> Any:
    """:func:`qdjango.result`, awaited."""
    task = await fetch(task_id, wait)
    return None if task is None else task.result


async def _group_wait(
    group_id: str, wait: float, count: int | None, check: Callable[[], Awaitable[T | None]]
) -> T | None:
    from qdjango.models import Task

    async def enough() -> T | None:
        if count is not None and await Task.objects.filter(group=group_id).acount() < count:
            return None
        return await check()

    return await _wait(group_id, wait, enough, any_message=True)


async def result_group(
    group_id: str, failures: bool = False, wait: float = 0, count: int | None = None
) -> list[Any] | None:
    """:func:`qdjango.result_group`, awaited."""
    from qdjango.models import Task

    async def check() -> list[Any] | None:
        tasks = Task.get_task_group(group_id, failures).order_by("stopped")
        found = [value async for value in tasks.values_list("result", flat=True)]
        return found or None

    return await _group_wait(group_id, wait, count, check)


async def fetch_group(
    group_id: str, failures: bool = True, wait: float = 0, count: int | None = None
) -> Any:
    """:func:`qdjango.fetch_group`, awaited: a QuerySet (iterate it with ``async for``)."""
    from qdjango.models import Task

    async def check() -> Any:
        tasks = Task.get_task_group(group_id, failures)
        return tasks if await tasks.aexists() else None

    return await _group_wait(group_id, wait, count, check)


async def count_group(group_id: str, failures: bool = False) -> int:
    """:func:`qdjango.count_group`, awaited."""
    from qdjango.models import Task

    tasks = Task.objects.filter(group=group_id)
    return await (tasks.filter(success=False) if failures else tasks).acount()


async def delete_group(group_id: str, tasks: bool = False) -> int:
    """:func:`qdjango.delete_group`, awaited."""
    from qdjango.models import Task

    return await sync_to_async(Task.delete_group, thread_sensitive=True)(group_id, tasks)
