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
