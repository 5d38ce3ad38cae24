"""What the Redis clients Q opens are given: the retry policy (:class:`QRetry`), timeouts and
health checks (:func:`default_options`), and a producer's bounds (:func:`producer_kwargs`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from qcore import ConfigError

__all__ = [
    "PRODUCER_RETRY_FOR",
    "PRODUCER_SOCKET_TIMEOUT",
    "QRetry",
    "default_options",
    "producer_kwargs",
]

# What a pool we open gets unless the caller says otherwise. The retry rides out a dropped
# connection or a Redis restart of a few seconds (about 9 s of backoff in all); the health
# check notices a connection that died while idle in the pool before a command is lost on it.
_RETRIES = 12

T = TypeVar("T")


PRODUCER_RETRY_FOR = 2.0
"""Seconds a producer (``Producer``, ``async_task``, ``qinfo``, the admin) keeps retrying a
Redis that refuses or drops its connections before the caller gets the error."""
PRODUCER_SOCKET_TIMEOUT = 5.0
"""Seconds a producer waits for a Redis that accepts a connection and never answers (a black
hole) before the caller gets the error; also its connect timeout."""


class QRetry(Retry):
    """redis-py's Retry, except that a refused password is not retried (it will not change)
    and, with ``budget``, no retry starts once ``budget`` seconds have passed since the call
    began: a caller waits about ``budget`` seconds (or one socket timeout) in all, however the
    Redis fails, instead of a count of retries times a count of reconnects."""

    def __init__(self, backoff: Any, retries: int, *, budget: float | None = None) -> None:
        super().__init__(backoff, retries)
        self.budget = budget

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Any,
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        budget = self.budget
        until = None if budget is None else time.monotonic() + budget

        def retryable(error: Exception) -> bool:
            if isinstance(error, redis.AuthenticationError):
                return False
            if until is not None and time.monotonic() >= until:
                return False
            return is_retryable(error) if is_retryable is not None else True

        return super().call_with_retry(do, fail, retryable, with_failure_count)


def default_options(retry_for: float | None = None) -> dict[str, Any]:
    """Fresh defaults (a new Retry object each time: Retry objects are not shared).

    ``retry_for``: seconds to keep retrying a failing connection (a producer's bound); None:
    the cluster's patience (about 9 s of backoff, enough to ride out a Redis restart).
    """
    if retry_for is None:
        retry = QRetry(ExponentialBackoff(cap=1.0, base=0.05), _RETRIES)
    else:
        retry = QRetry(ExponentialBackoff(cap=0.5, base=0.05), -1, budget=float(retry_for))
    return {
        "retry": retry,
        "retry_on_error": [redis.ConnectionError, redis.TimeoutError],
        "health_check_interval": 15,
        "socket_timeout": 10.0,
        "socket_connect_timeout": 5.0,
        "socket_keepalive": True,
    }


def producer_kwargs(
    redis_kwargs: Mapping[str, Any],
    *,
    retry_for: float = PRODUCER_RETRY_FOR,
    socket_timeout: float = PRODUCER_SOCKET_TIMEOUT,
) -> dict[str, Any]:
    """``redis_kwargs`` with a producer's bounds where the caller set none: a call fails
    after about ``retry_for`` seconds against a Redis that refuses, ``socket_timeout``
    against one that never answers (see :data:`PRODUCER_RETRY_FOR`)."""
    for name, value in (("retry_for", retry_for), ("socket_timeout", socket_timeout)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ConfigError(f"{name} must be a positive number of seconds, not {value!r}")
    out = dict(redis_kwargs)
    out.setdefault("retry_for", float(retry_for))
    out.setdefault("socket_timeout", float(socket_timeout))
    out.setdefault("socket_connect_timeout", out["socket_timeout"])
    return out
