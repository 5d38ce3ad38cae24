"""The task bodies every library runs: a no-op ``add`` and ``stamp`` for start latency.

``stamp`` reads the clock first thing, then pushes ``start - enqueued`` (seconds) onto a Redis
list the harness reads after workload C. Its Redis client is opened lazily, once per worker
process, from ``BENCH_REDIS_URL``.
"""

from __future__ import annotations

import os
import time
from typing import Any

LATENCY_KEY = "bench:latency"

_client: Any = None


def add(a: Any, b: Any) -> Any:
    return a + b


def record_latency(started: float, enqueued: float) -> None:
    global _client
    if _client is None:
        import redis

        _client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    _client.rpush(LATENCY_KEY, repr(started - enqueued))


def stamp(enqueued: float) -> None:
    started = time.time()
    record_latency(started, enqueued)
