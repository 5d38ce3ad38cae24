"""Functions the tests send to clusters (importable by dotted path in worker processes)."""

from __future__ import annotations

import time
from typing import Any

HOOK_MARK = "seen-by-hook"


def add(a: int, b: int) -> int:
    return a + b


def empty_list() -> list[Any]:
    return []


def nothing() -> None:
    return None


def fail(message: str = "this task fails on purpose") -> None:
    raise ValueError(message)


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def echo(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return args, kwargs


def mark_saved(task: Any) -> None:
    """A hook that proves it got the saved Task: reads the row back and marks it."""
    from qdjango.models import Task

    assert isinstance(task, Task), type(task)
    tasks = Task.objects.using(task._state.db)
    row = tasks.get(pk=task.pk)
    assert row.result == task.result and row.success == task.success
    tasks.filter(pk=task.pk).update(cluster=f"{HOOK_MARK}:{type(task).__name__}")


def print_result(task: Any) -> None:
    print(task.result)


class Flaky:
    """A picklable callable object with state."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __call__(self, extra: int) -> int:
        return self.value + extra


def save_in_child(payload: bytes, queue: Any) -> None:
    """A spawned process's target: unpickle a store and records, save them, report."""
    import pickle

    try:
        store, records = pickle.loads(payload)
        store.save_many(records)
        queue.put("ok")
    except BaseException as exc:
        queue.put(repr(exc))


def fails_until_flag(redis_url: str, flag: str) -> str:
    """Fails until ``flag`` is set in Redis (for retrying a failure that then succeeds)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        if not client.exists(flag):
            raise RuntimeError(f"{flag} is not set yet")
    finally:
        client.close()
    return "flag was set"


def save_if_unsaved(task: Any) -> None:
    """A hook that saves the Task it got if that Task has no row (a ``save=False`` task)."""
    if task._state.adding:
        task.cluster = "saved-by-hook"
        task.save()


def fails_until_flag_then_echo(redis_url: str, flag: str, **kwargs: Any) -> dict[str, Any]:
    """:func:`fails_until_flag`, then returns the keyword arguments it was called with."""
    fails_until_flag(redis_url, flag)
    return kwargs


def safe_html(text: str) -> Any:
    """Returns markup marked safe (what ``mark_safe``, ``format_html`` and templates return)."""
    from django.utils.safestring import mark_safe

    return mark_safe(f"<script>alert('{text}')</script>")


def count_run(redis_url: str, key: str, when: str = "") -> str:
    """Count this run in a Redis hash under its intended date (schedules' single-fire tests)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.hincrby(key, when, 1)
    finally:
        client.close()
    return when
