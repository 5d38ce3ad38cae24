"""``django.tasks`` tasks the tests send through Q's backend (importable in worker processes)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

from qdjango.tasks_api import TaskContext, task


@task
def add(a: int, b: int) -> int:
    return a + b


@task()
def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


@task
def fail(message: str = "this task fails on purpose") -> None:
    raise ValueError(message)


class TaskBroke(Exception):
    """An exception class of the tests' own (its path is not a built-in's)."""


@task
def broke() -> None:
    raise TaskBroke("a class of our own")


@task(takes_context=True)
def flaky(context: TaskContext, fails: int) -> dict[str, Any]:
    """Raises TaskBroke on its first ``fails`` attempts; then says which attempt it was and
    how many errors its RUNNING result already held."""
    if context.attempt <= fails:
        raise TaskBroke(f"attempt {context.attempt} of a flaky task")
    return {"attempt": context.attempt, "errors": len(context.task_result.errors)}


@task
def not_json() -> object:
    return object()


@task(takes_context=True)
def attempt(context: TaskContext, pid_file: str = "") -> dict[str, Any]:
    """Returns what the context says; with ``pid_file``, on a first attempt, writes its pid
    there and waits to be killed (the test SIGKILLs the worker)."""
    if pid_file and context.attempt == 1:
        with open(pid_file, "w") as out:
            out.write(str(os.getpid()))
        time.sleep(60)
    return {
        "attempt": context.attempt,
        "id": context.task_result.id,
        "status": str(context.task_result.status),
        "workers": len(context.task_result.worker_ids),
    }


@task
async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0.01)
    return a + b


@task
async def async_fail(message: str) -> None:
    await asyncio.sleep(0)
    raise ValueError(message)


@task(takes_context=True)
async def async_attempt(context: TaskContext) -> int:
    await asyncio.sleep(0)
    return int(context.attempt)


@task
async def async_nap(seconds: float) -> list[float]:
    """When it started and ended (epoch seconds), around its nap."""
    begun = time.time()
    await asyncio.sleep(seconds)
    return [begun, time.time()]


@task(queue_name="qd-second")
def second_queue() -> str:
    return "second"


@task
def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
