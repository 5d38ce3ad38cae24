"""Retries on exceptions: the ``Retry`` a task raises, and the policy that says whether a failed
run goes back for another attempt, and after how long.

A retry waits in the transport's delayed set (never in a worker's memory) with the runs so far
carried in the message (``TaskOptions.attempts``); only the last run makes a record and calls
the hook. The options are the task's own (``retries``, ``retry_backoff``,
``retry_backoff_max``, ``retry_jitter``, ``retry_on``), else the cluster's defaults.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from qcore.backoff import Backoff
from qcore.errors import ConfigError, FunctionNotFound
from qcore.resolve import dotted_path, resolve

__all__ = ["Retry", "RetryDefaults", "retry_delay", "retry_on_paths"]


class Retry(Exception):
    """Raised by a task to ask for another attempt, after ``delay`` seconds (None: the task's
    backoff). It counts against the task's ``retries`` and needs no ``retry_on``."""

    def __init__(self, message: str = "", *, delay: float | None = None) -> None:
        if delay is not None and (
            isinstance(delay, bool) or not isinstance(delay, int | float) or not delay >= 0
        ):
            raise ConfigError(f"Retry delay must be a number of seconds >= 0, not {delay!r}")
        super().__init__(message or "the task asked for a retry")
        self.delay = None if delay is None else float(delay)


@dataclass(frozen=True, slots=True)
class RetryDefaults:
    """What a task that sets no retry option of its own gets (a cluster's settings)."""

    retries: int = 0
    retry_backoff: float = 1.0
    retry_backoff_max: float = 600.0
    retry_jitter: bool = True
    retry_on: tuple[str, ...] = ()
    """Dotted paths of exception classes; empty: any ``Exception``."""


def retry_on_paths(value: object, what: str = "retry_on") -> tuple[str, ...]:
    """``retry_on`` as dotted paths, each checked to name an exception class.

    Takes one class or path, or an iterable of them. Raises :class:`ConfigError` naming what
    is not an exception class (or does not import).
    """
    items: Iterable[object]
    if isinstance(value, str | type):
        items = (value,)
    elif isinstance(value, Iterable):
        items = tuple(value)
    else:
        raise ConfigError(
            f"{what} must be an exception class, a dotted path to one, or a list of them, "
            f"not {value!r}"
        )
    paths = []
    for item in items:
        target: object = item
        if isinstance(item, str):
            try:
                target = resolve(item)
            except FunctionNotFound as exc:
                raise ConfigError(f"{what}: {exc}") from None
        if not (isinstance(target, type) and issubclass(target, BaseException)):
            raise ConfigError(f"{what} must name exception classes; {item!r} is not one")
        paths.append(item if isinstance(item, str) else dotted_path(target))
    return tuple(paths)


def matches(exc: BaseException, retry_on: tuple[str, ...]) -> bool:
    """Whether ``exc`` is one of ``retry_on`` (empty: any ``Exception``). A path that does not
    resolve in this process matches nothing."""
    if not retry_on:
        return isinstance(exc, Exception)
    for path in retry_on:
        try:
            cls = resolve(path)
        except FunctionNotFound:
            continue
        if isinstance(cls, type) and isinstance(exc, cls):
            return True
    return False


def retry_delay(
    exc: BaseException,
    runs: int,
    *,
    retries: int,
    backoff: float,
    backoff_max: float,
    jitter: bool,
    retry_on: tuple[str, ...],
) -> float | None:
    """Seconds before the next attempt of a task whose run number ``runs`` raised ``exc``, or
    None when it is not retried (no retries left, or ``exc`` is not one of ``retry_on``).

    The wait is ``backoff * 2 ** (runs - 1)`` capped at ``backoff_max``; with ``jitter`` it is
    drawn uniformly from the upper half of that (so retries of many tasks spread out, and no
    wait is shorter than half the bound). A :class:`Retry` with a ``delay`` waits that long.
    """
    if runs > retries:
        return None
    if isinstance(exc, Retry):
        if exc.delay is not None:
            return exc.delay
    elif not matches(exc, retry_on):
        return None
    if backoff <= 0:
        return 0.0
    bound = Backoff(first=backoff, cap=backoff_max).delay(runs)
    return random.uniform(bound / 2, bound) if jitter else bound
