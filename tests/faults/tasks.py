"""Tasks and hooks the fault suite sends to clusters (importable by worker processes).

Most tasks take ``(url, key, tag)`` first: they count their own runs with ``HINCRBY key tag``
on the test's private Redis before doing anything else. That side-effect counter is what
"exactly once" and "at least once" are checked against (a saved record alone would hide a
second run, since saving is an upsert). A task that must be caught mid-run pushes its pid on
``<key>:started`` so the test can ``BLPOP`` it instead of polling.
"""

from __future__ import annotations

import ctypes
import faulthandler
import hashlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

_clients: dict[tuple[int, str], redis.Redis] = {}


def client(url: str) -> redis.Redis:
    """One client per process and URL (a forked worker never uses its parent's)."""
    key = (os.getpid(), url)
    found = _clients.get(key)
    if found is None:
        # Retried like Q's own connections, so a Redis fault test's tasks ride it out too.
        found = _clients[key] = redis.Redis.from_url(
            url,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 12),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        )
    return found


def effect(url: str, key: str, tag: str) -> int:
    """Count one run of the task ``tag``; returns how many runs there were so far."""
    return int(client(url).hincrby(key, tag, 1))


def started(url: str, key: str) -> None:
    client(url).rpush(f"{key}:started", os.getpid())


# -- well-behaved -----------------------------------------------------------------------------


def counted(url: str, key: str, tag: str, value: Any = None) -> Any:
    effect(url, key, tag)
    return value


def counted_sleep(url: str, key: str, tag: str, seconds: float) -> str:
    effect(url, key, tag)
    time.sleep(seconds)
    return tag


def noop(i: int) -> None:
    """The backlog's task: as cheap as a task can be."""


def sequenced(url: str, key: str) -> int:
    """The order in which this run started among all runs counting on ``key`` (1, 2, ...)."""
    return int(client(url).incr(key))


def fenced_out_first_time(url: str, key: str, tag: str, tokens: str) -> int:
    """On its first run, moves the fencing tokens of the tasks in flight on, as a redelivery
    to another consumer would: this run's ack is then refused."""
    runs = effect(url, key, tag)
    if runs == 1:
        conn = client(url)
        for task_id in conn.hkeys(tokens):
            conn.hincrby(tokens, task_id, 1000)
    return runs


# -- tasks that take their worker down --------------------------------------------------------


def hang_first_time(url: str, key: str, tag: str) -> int:
    """Hangs on its first run (until the test kills the worker), returns on the next."""
    runs = effect(url, key, tag)
    if runs == 1:
        started(url, key)
        time.sleep(60)
    return runs


def slow_first_time(url: str, key: str, tag: str, seconds: float) -> str:
    """Takes ``seconds`` on its first run (long enough to be frozen mid-run), none after."""
    runs = effect(url, key, tag)
    if runs == 1:
        started(url, key)
        time.sleep(seconds)
    return f"run {runs}"


def hang(url: str, key: str, tag: str) -> None:
    effect(url, key, tag)
    started(url, key)
    time.sleep(60)


def exit_hard(url: str, key: str, tag: str) -> None:
    effect(url, key, tag)
    os._exit(1)


def segfault(url: str, key: str, tag: str) -> None:
    effect(url, key, tag)
    faulthandler.disable()  # pytest's handler, inherited by a forked worker, would print a dump
    ctypes.string_at(0)  # reads address 0: SIGSEGV


# -- timeouts ---------------------------------------------------------------------------------


def overrun(url: str, key: str, tag: str, seconds: float) -> str:
    effect(url, key, tag)
    time.sleep(seconds)
    return "finished"


def overrun_ignoring_sigterm(url: str, key: str, tag: str, seconds: float) -> str:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    effect(url, key, tag)
    time.sleep(seconds)
    return "finished"


def blocked_in_read(url: str, key: str, tag: str) -> str:
    """Blocks in read(2) on a pipe whose writer never writes, deaf to SIGTERM."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    effect(url, key, tag)
    reader, _writer = os.pipe()
    os.read(reader, 1)
    return "finished"


# -- bad tasks --------------------------------------------------------------------------------


def return_unpicklable(url: str, key: str, tag: str) -> threading.Lock:
    effect(url, key, tag)
    return threading.Lock()


def return_bytes(url: str, key: str, tag: str, size: int) -> bytes:
    effect(url, key, tag)
    return b"r" * size


class UnpicklableError(Exception):
    """An exception holding a lock: pickling it fails."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


class UnprintableError(Exception):
    """An exception whose str() itself raises."""

    def __str__(self) -> str:
        raise RuntimeError("this exception cannot be turned into text")


def raise_unpicklable(url: str, key: str, tag: str) -> None:
    effect(url, key, tag)
    raise UnpicklableError("holds a lock")


def raise_unprintable(url: str, key: str, tag: str) -> None:
    effect(url, key, tag)
    raise UnprintableError()


def takes_anything(url: str, key: str, tag: str, thing: Any) -> str:
    effect(url, key, tag)
    return type(thing).__name__


# -- hooks (the record's first three args are the task's url, key and tag) ----------------------


def counting_hook(record: Any) -> None:
    url, key, tag = record.args[:3]
    client(url).hincrby(key, f"hook:{tag}", 1)


def result_hook(record: Any) -> None:
    """Counts its call and keeps the result of the record it was given."""
    url, key, tag = record.args[:3]
    conn = client(url)
    conn.hincrby(key, f"hook:{tag}", 1)
    conn.rpush(f"{key}:hooked", repr(record.result))


def slow_hook(record: Any) -> None:
    """Takes 8 s, then counts its call and notes when it ended."""
    url, key, tag = record.args[:3]
    time.sleep(8)
    conn = client(url)
    conn.hincrby(key, f"hook:{tag}", 1)
    conn.set(f"{key}:slow-hook-done", repr(time.time()))


def raising_hook(record: Any) -> None:
    raise ValueError("this hook fails on purpose")


def hanging_hook(record: Any) -> None:
    url, key, _ = record.args[:3]
    started(url, key)
    time.sleep(60)


# -- payloads that must never be unpickled ------------------------------------------------------


def leave_trace(path: str) -> str:
    """What a trap pickle calls when it is loaded: it creates a file."""
    Path(path).write_text("unpickled!")
    return path


class Trap:
    """Unpickling this object calls :func:`leave_trace`: proof that a payload was loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (leave_trace, (self.path,))


# -- logging ----------------------------------------------------------------------------------


def echo_secret(value: str) -> str:
    """A secret-looking result made from a secret-looking argument (neither may be logged)."""
    return "tok_" + hashlib.sha256(value.encode()).hexdigest()[:24]


def fail_with_secret(value: str) -> None:
    # The message repeats the argument, as Python's own errors often do (int("..."), KeyError).
    raise ValueError(f"invalid card number {value!r}")


def overrun_with_secret(value: str, seconds: float) -> None:
    time.sleep(seconds)


def leaky_hook(record: Any) -> None:
    raise ValueError(f"the hook choked on {record.result!r} from {record.args!r}")


# -- event subscribers (picklable: a cluster sends its bus to every worker) --------------------


class EventRecorder:
    """Pushes ``"<EventType> <task id>"`` for each event it sees on a Redis list, from whichever
    process emits it (a worker, the sentinel): the list is the events' order across them."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.key = key

    def __call__(self, event: Any) -> None:
        task_id = getattr(event, "task_id", None) or "-"
        client(self.url).rpush(self.key, f"{type(event).__name__} {task_id}")

    def seen(self) -> list[tuple[str, str]]:
        lines = client(self.url).lrange(self.key, 0, -1)
        return [tuple(line.decode().split(" ", 1)) for line in lines]  # type: ignore[misc]


def broken_subscriber(event: Any) -> None:
    raise RuntimeError("this subscriber fails on purpose")


class SignalRecorder:
    """A Django signal receiver that pushes ``"<signal> <task id> <what task was>"`` on a Redis
    list from whichever process sends the signal; ``what`` is ``saved`` when ``task`` is a
    ``Task`` whose row is in the database, with the result the record has."""

    def __init__(self, url: str, key: str, names: dict[Any, str]) -> None:
        self.url = url
        self.key = key
        self.names = names

    def __call__(self, signal: Any, sender: Any, event: Any, **kwargs: Any) -> None:
        from qdjango.models import Task

        what = "-"
        task = kwargs.get("task")
        if isinstance(task, Task):
            row = Task.objects.using(task._state.db).filter(pk=task.pk).first()
            saved = not task._state.adding and row is not None and row.result == task.result
            what = "saved" if saved else "unsaved"
        elif isinstance(task, dict):
            what = "dict"
        task_id = getattr(event, "task_id", None) or "-"
        client(self.url).rpush(self.key, f"{self.names[signal]} {task_id} {what}")

    def seen(self) -> list[tuple[str, ...]]:
        return [tuple(x.decode().split(" ")) for x in client(self.url).lrange(self.key, 0, -1)]


def charge_card(url: str, key: str, tag: str, amount: int) -> int:
    """A payment: each run charges the card again (counted), so it must run once."""
    effect(url, key, tag)
    return amount


def charge(amount: int, *, api_key: str, card_token: str, iban: str = "") -> int:
    """A task with secret keyword arguments (none of them may be shown, whatever is logged)."""
    return amount


# -- logging ----------------------------------------------------------------------------------


def chatty(i: int, size: int) -> int:
    """Log through structlog (one record of ``size`` bytes of filler) and through the stdlib."""
    import logging

    from qcore import get_logger

    get_logger("tests.chatty").info("chatty.structlog", i=i, filler="x" * size)
    logging.getLogger("tests.chatty").warning("chatty.stdlib %d", i)
    return i
