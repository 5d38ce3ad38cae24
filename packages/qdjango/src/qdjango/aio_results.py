"""The reading half of :mod:`qdjango.aio`: ``fetch``, ``result``, the group functions,
``running`` and ``queue_size``, awaited. Rows are read with Django's async ORM; a ``wait``
(ms, as in :mod:`qdjango.tasks`) is woken by the store's notice on the loop's one
subscription, with no thread per waiter; running tasks come from the clusters' published
status, read on the loop's client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async

from qcluster import RunningTask, running_tasks
from qdjango import connection
from qdjango.aio_site import site
from qdjango.conf import get_settings
from qredis.status import live_clusters

__all__ = [
    "count_group",
    "delete_group",
    "fetch",
    "fetch_group",
    "queue_size",
    "result",
    "result_group",
    "running",
]

T = TypeVar("T")


async def _wait(
    key: str, wait: float, check: Callable[[], Awaitable[T | None]], *, any_message: bool
) -> T | None:
    if wait == 0:
        return await check()
    timeout = None if wait < 0 else wait / 1000.0
    return await site().notifier.wait_for(key, timeout, check, any_message=any_message)


async def fetch(task_id: str, wait: float = 0, *, include_running: bool = False) -> Any:
    """:func:`qdjango.fetch`, awaited: the saved ``Task`` (by id or name) or None; ``wait`` in
    ms (-1: forever), woken by the store's notice. ``include_running``: a task without a row
    that runs now is returned as a :class:`qcluster.RunningTask` (see :func:`running`)."""
    from qdjango.models import Task, _by_id_or_name

    async def check() -> Any:
        return await Task.objects.filter(**_by_id_or_name(task_id)).order_by("-stopped").afirst()

    found = await _wait(task_id, wait, check, any_message=len(task_id) != 32)
    if found is None and include_running:
        now = [task for task in await running() if task_id in (task.task_id, task.name)]
        return now[0] if now else None
    return found


async def result(task_id: str, wait: float = 0) -> Any:
    """:func:`qdjango.result`, awaited."""
    task = await fetch(task_id, wait)
    return None if task is None else task.result


async def running(task_id: str | None = None, *, queue: str | None = None) -> list[RunningTask]:
    """:func:`qdjango.running`, awaited: the tasks the workers of ``queue`` (default
    ``Q_CLUSTER``'s) run now, or only ``task_id``, from their clusters' published status."""
    statuses = await live_clusters(site().client, queue or get_settings().queue)
    return running_tasks(statuses, task_id)


async def queue_size(queue: str | None = None) -> int:
    """:func:`qdjango.queue_size`, awaited: tasks waiting in ``queue`` (one of those
    ``Q_CLUSTER`` serves; default its ``queue``), on every priority level and shard."""
    name = connection.check_served(queue) if queue is not None else get_settings().queue
    return await site().queue(name).queue_size()


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
