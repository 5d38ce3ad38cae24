"""One backoff policy for every call Q retries after an error: a fetch, a save, an ack, a
dead letter, a bulk chunk, a worker that failed to start.

The wait doubles from ``first`` up to ``cap``; a caller that must stay responsive (a worker
asked to stop) passes ``stop`` and wakes within ``STEP`` seconds of it turning true.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["Backoff"]

T = TypeVar("T")

STEP = 0.05
"""Seconds between looks at ``stop`` while waiting."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: ``first`` s after the first failure, doubling up to ``cap`` s."""

    first: float = 0.1
    cap: float = 5.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failures in a row (``failures >= 1``)."""
        return float(min(self.first * 2 ** max(0, failures - 1), self.cap))

    def sleep(self, failures: int, stop: Callable[[], bool] | None = None) -> None:
        """Wait :meth:`delay` seconds, or less once ``stop()`` is true."""
        until = time.monotonic() + self.delay(failures)
        if stop is None:
            time.sleep(max(0.0, until - time.monotonic()))
            return
        while not stop():
            left = until - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(STEP, left))

    def call(
        self,
        fn: Callable[[], T],
        *,
        on_error: Callable[[Exception, int], object] | None = None,
        attempts: int | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> T:
        """``fn()`` until it returns, waiting between failures.

        ``on_error(exc, failures)`` is told of each failure (to log it). The last error is
        raised after ``attempts`` calls (None: never), or after a failure once ``stop()`` is
        true (None: never).
        """
        failures = 0
        while True:
            try:
                return fn()
            except Exception as exc:
                failures += 1
                if on_error is not None:
                    on_error(exc, failures)
                if (attempts is not None and failures >= attempts) or (stop and stop()):
                    raise
                self.sleep(failures, stop)
