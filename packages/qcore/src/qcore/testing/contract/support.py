"""What the parts of the transport contract share: filling a queue, waiting on a condition,
and the short heartbeat TTL that keeps the suite fast."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from qcore.protocols import Transport

__all__ = ["TTL", "fill", "wait_until"]

# Short heartbeat TTLs keep the suite fast; waits poll with a deadline only where the
# protocol offers no event to wait on (a heartbeat expiring is the absence of an event).
TTL = 0.3


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def fill(transport: Transport, n: int, prefix: str = "t") -> list[str]:
    ids = [f"{prefix}{i:05d}" for i in range(n)]
    for i in ids:
        transport.enqueue(i, f"payload-{i}".encode())
    return ids
