"""From a producer's call to a message: which keywords are Q's options, which the task's.

Every producer (qredis's ``Producer.enqueue``, qdjango's ``async_task``) takes Q's options as
keywords and, as Django Q does, again in a ``q_options`` dict for tasks whose own keyword
arguments use those names. The rules live here once, so both read a call the same way.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any

from qcore.errors import ConfigError, UnknownOption
from qcore.message import OPTION_NAMES, TaskOptions

__all__ = ["Q_OPTION_NAMES", "apply_q_options", "task_options"]

Q_OPTION_NAMES = frozenset({"hook", "group", "task_name", "countdown"}) | OPTION_NAMES
"""What ``q_options`` accepts from any producer (a producer may accept more)."""

_NO_OPTIONS = TaskOptions()


def apply_q_options(
    q_options: Mapping[str, Any],
    given: Mapping[str, Any],
    kwargs: dict[str, Any],
    known: Collection[str] = Q_OPTION_NAMES,
) -> dict[str, Any]:
    """The options of a call once ``q_options`` is applied over the keywords in ``given``.

    ``q_options`` wins. Once it names an option, a keyword of that name (when not None) is the
    task's own argument and moves into ``kwargs``, so a task may take ``timeout`` itself.
    Names outside ``known`` raise :class:`UnknownOption`.
    """
    unknown = set(q_options) - set(known)
    if unknown:
        raise UnknownOption(
            f"unknown q_options {', '.join(sorted(unknown))}; "
            f"known options are {', '.join(sorted(known))}"
        )
    for key, value in given.items():
        if key in q_options and value is not None:
            kwargs[key] = value
    return {**given, **q_options}


def task_options(
    *,
    timeout: float | None = None,
    save: bool | None = None,
    max_attempts: int | None = None,
    eta: float | None = None,
    countdown: float | None = None,
) -> TaskOptions:
    """:class:`TaskOptions` for a call; ``countdown`` (seconds from now) becomes ``eta``."""
    if countdown is not None:
        if eta is not None:
            raise ConfigError("pass eta (epoch seconds) or countdown (seconds), not both")
        eta = time.time() + float(countdown)
    if timeout is None and save is None and max_attempts is None and eta is None:
        return _NO_OPTIONS
    return TaskOptions(timeout=timeout, save=save, max_attempts=max_attempts, eta=eta)
