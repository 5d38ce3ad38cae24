"""Tasks the workflow tests send to clusters: retries, cancel, chains, iterations, unique tasks.

They count their runs on the test's Redis with the fault suite's side-effect counter
(``tests.faults.tasks.effect``) and note when each run began, so a test can check the waits
between runs.
"""

from __future__ import annotations

import os
import time
from typing import Any

from qcore import Retry
from tests.faults.tasks import client, effect


def _begun(url: str, key: str, tag: str) -> int:
    """Count this run and note when it began (``<key>:t:<tag>``, epoch seconds)."""
    client(url).rpush(f"{key}:t:{tag}", repr(time.time()))
    return effect(url, key, tag)


def run_times(url: str, key: str, tag: str) -> list[float]:
    return [float(x) for x in client(url).lrange(f"{key}:t:{tag}", 0, -1)]


def fail_times(url: str, key: str, tag: str, failures: int) -> int:
    """Raise ValueError on the first ``failures`` runs, then return the run's number."""
    run = _begun(url, key, tag)
    if run <= failures:
        raise ValueError(f"failing on purpose, run {run}")
    return run


def raise_key_error(url: str, key: str, tag: str) -> None:
    _begun(url, key, tag)
    raise KeyError("not a ValueError")


def ask_for_retry(url: str, key: str, tag: str, times: int, delay: float | None) -> int:
    """Raise ``Retry(delay=delay)`` on the first ``times`` runs."""
    run = _begun(url, key, tag)
    if run <= times:
        raise Retry(f"not ready yet (run {run})", delay=delay)
    return run


def echo(url: str, key: str, tag: str, value: Any = None) -> Any:
    _begun(url, key, tag)
    return value


def link(url: str, key: str, tag: str, value: Any = None) -> Any:
    """A chain's link: notes its tag in ``<key>:order`` (the order links ran in)."""
    client(url).rpush(f"{key}:order", tag)
    _begun(url, key, tag)
    return value if value is not None else tag


def link_hanging_first_time(url: str, key: str, tag: str) -> str:
    """A link that hangs on its first run (the test kills its worker), returns on the next."""
    client(url).rpush(f"{key}:order", tag)
    if effect(url, key, tag) == 1:
        client(url).rpush(f"{key}:started", os.getpid())
        time.sleep(60)
    return tag


def link_failing(url: str, key: str, tag: str) -> None:
    client(url).rpush(f"{key}:order", tag)
    _begun(url, key, tag)
    raise ValueError(f"link {tag} fails on purpose")


def order(url: str, key: str) -> list[str]:
    return [x.decode() for x in client(url).lrange(f"{key}:order", 0, -1)]


def square_after(url: str, key: str, tag: str, x: int, seconds: float) -> int:
    """``x * x`` after ``seconds``: calls given later arguments may finish first."""
    _begun(url, key, f"{tag}{x}")
    time.sleep(seconds)
    if x < 0:
        raise ValueError(f"no negative numbers: {x}")
    return x * x
