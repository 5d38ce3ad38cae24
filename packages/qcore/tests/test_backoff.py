"""The one backoff helper: its delays, its retries, and a stop that cuts a wait short."""

from __future__ import annotations

import threading
import time

import pytest

from qcore.backoff import Backoff


def test_the_delay_doubles_up_to_the_cap() -> None:
    backoff = Backoff(first=0.1, cap=1.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_call_returns_once_the_call_works_and_reports_each_failure() -> None:
    calls: list[int] = []
    seen: list[tuple[str, int]] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("down")
        return "up"

    result = Backoff(first=0.001).call(flaky, on_error=lambda e, n: seen.append((str(e), n)))
    assert result == "up"
    assert seen == [("down", 1), ("down", 2)]


def test_call_raises_the_last_error_after_its_attempts() -> None:
    calls: list[int] = []

    def down() -> None:
        calls.append(1)
        raise ConnectionError(f"down {len(calls)}")

    with pytest.raises(ConnectionError, match="down 3"):
        Backoff(first=0.001).call(down, attempts=3)
    assert len(calls) == 3


def test_a_stop_cuts_the_wait_short_and_ends_the_retries() -> None:
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    begun = time.monotonic()
    with pytest.raises(ConnectionError):
        Backoff(first=30, cap=30).call(_down, stop=stop.is_set)
    assert time.monotonic() - begun < 5


def _down() -> None:
    raise ConnectionError("down")
