"""Task functions for the cluster's end-to-end tests (importable by worker processes)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path


def add(a: int, b: int) -> int:
    return a + b


def square(x: int) -> int:
    return x * x


def sleep_then(seconds: float, value: object = None) -> object:
    time.sleep(seconds)
    return value


async def nap_then(seconds: float, value: object = None) -> object:
    """An ``async def`` task: awaited beside others by a worker with async_concurrency > 1."""
    await asyncio.sleep(seconds)
    return value


def touch_and_sleep(path: str, seconds: float, value: object = None) -> object:
    """Mark the start (so a test knows the task is running), then sleep."""
    Path(path).write_text(str(os.getpid()))
    time.sleep(seconds)
    return value


def ignore_sigterm_and_sleep(seconds: float) -> str:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(seconds)
    return "done"


def fail(message: str) -> None:
    raise RuntimeError(message)


def record_pid(x: int) -> tuple[int, int]:
    return x, os.getpid()


def mark(path: str) -> str:
    """Leave a trace on disk: proves a task ran (used for payloads that must not run)."""
    Path(path).write_text("ran")
    return "ran"


def write_hook(record: object) -> None:
    directory = os.environ["Q_TEST_HOOK_DIR"]
    Path(directory, getattr(record, "id", "x")).write_text(repr(getattr(record, "result", None)))


def raising_hook(record: object) -> None:
    raise ValueError("hook broke on purpose")


def sleepy_hook(record: object) -> None:
    time.sleep(30)


def stuck_hook(record: object) -> None:
    """Hangs where the worker's alarm cannot reach it (SIGALRM blocked, as in C code that never
    returns to the interpreter): only the sentinel's kill ends it."""
    import signal

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(30)


def log_run() -> float:
    """Append this run's time to the Redis list ``$Q_TEST_RUNS`` (at ``$Q_REDIS_URL``)."""
    import redis

    now = time.time()
    client = redis.Redis.from_url(os.environ["Q_REDIS_URL"])
    client.rpush(os.environ["Q_TEST_RUNS"], repr(now))
    client.close()
    return now


def die_first_time(path: str) -> str:
    """SIGKILL its own worker on the first run (the file does not exist yet), return after."""
    marker = Path(path)
    if not marker.exists():
        marker.write_text("died")
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"


def fail_with(card_number: str, *, api_key: str = "") -> None:
    """Fails with a message that repeats its argument (as real errors often do)."""
    raise ValueError(f"card {card_number} was declined")
