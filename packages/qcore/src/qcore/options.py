"""Q's per-task options: :class:`TaskOptions`, kept apart from a task's own kwargs, the
priority a task may carry, and how a call's keywords and ``q_options`` become them.

A message carries them (:mod:`qcore.message`); :func:`qcore.enqueue.build_message` reads them
from every entry point's call through :func:`task_options` and :func:`apply_q_options`. A new
per-task option is added here and in ``build_message``'s keywords.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from qcore.errors import ConfigError, UnknownOption
from qcore.retries import retry_on_paths
from qcore.slots import fast_init, fields_set, unchecked_constructor

__all__ = [
    "OPTION_NAMES",
    "PRIORITY_MAX",
    "PRIORITY_MIN",
    "Q_OPTION_NAMES",
    "TaskOptions",
    "apply_q_options",
    "check_priority",
    "task_options",
    "with_failure",
]

PRIORITY_MIN, PRIORITY_MAX = -100, 100
"""A task's priority runs from -100 to 100, higher first (as Django's tasks framework); 0 is
the default."""


def check_priority(value: object) -> int:
    """``value`` if it is a valid priority (an integer from -100 to 100), else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            f"priority must be an integer from {PRIORITY_MIN} to {PRIORITY_MAX} "
            f"(higher runs first), not {value!r}"
        )
    if not PRIORITY_MIN <= value <= PRIORITY_MAX:
        raise ConfigError(
            f"priority must be from {PRIORITY_MIN} to {PRIORITY_MAX} (higher runs first), "
            f"not {value}"
        )
    return value


@fast_init  # built for every task that has options (its checks run all the same): qcore.slots
@dataclass(frozen=True, slots=True)
class TaskOptions:
    """Per-task options, kept apart from the task's own kwargs.

    ``None`` means "use the cluster's setting".
    """

    timeout: float | None = None
    """Seconds the task may run before its worker is killed and a timed-out Failure saved."""
    save: bool | None = None
    """Whether a success is stored (failures always are)."""
    max_attempts: int | None = None
    """Deliveries allowed before a task whose worker keeps dying is dead-lettered."""
    eta: float | None = None
    """Epoch seconds before which the task must not start (``countdown`` is turned into this)."""
    retried_from: str | None = None
    """The id of the task this one retries (an admin's "retry"), so the two can be linked."""
    schedule: str | None = None
    """The id of the schedule whose firing this task is."""
    due: float | None = None
    """The due time (epoch seconds) of that firing: with ``schedule``, the firing's identity."""
    runner: str | None = None
    """Dotted path of what runs the task in the worker instead of a plain call:
    ``runner(message, attempt, cluster)`` returns the task's value (qdjango's ``django.tasks``
    backend: the task's context, Django's signals and JSON rules)."""
    retries: int | None = None
    """Further runs allowed after a run that raised (see ``retry_on``)."""
    retry_backoff: float | None = None
    """Seconds before the first retry; doubled for each one after it."""
    retry_backoff_max: float | None = None
    """The longest wait between two runs."""
    retry_jitter: bool | None = None
    """Draw each wait from the upper half of its bound, so retries spread out."""
    retry_on: tuple[str, ...] | None = None
    """Dotted paths of the exception classes that are retried (empty or None: any Exception)."""
    attempts: int | None = None
    """Runs that raised and were retried before this one (set by the worker that retries)."""
    chain: str | None = None
    """The id (the group) of the chain this task is a link of."""
    chain_index: int | None = None
    """Its place in the chain, from 1."""
    iter: str | None = None
    """The id of the iteration (``async_iter``) this task is a call of."""
    iter_index: int | None = None
    """Its place among the iteration's arguments, from 1."""
    iter_size: int | None = None
    """How many calls the iteration has."""
    unique: str | None = None
    """The lock of a unique task (see qcore.unique): built from ``unique=True`` or a key."""
    unique_for: float | None = None
    """Seconds the unique task's lock lasts at the most."""
    cancelled: str | None = None
    """Set on a cancelled task's twin (``"queued"`` or ``"running"``): the worker that gets it
    saves a Failure "Cancelled" and calls the hook, and never runs the function."""
    priority: int | None = None
    """-100 to 100, higher runs first (None: 0). Kept by a delayed task, a retry and a requeue."""
    failures: tuple[str, ...] | None = None
    """How each earlier run that raised and was retried failed (its Failure's text), oldest
    first, so the last run's record tells every run (set by the worker that retries; see
    :func:`with_failure`)."""

    def __post_init__(self) -> None:
        if self.timeout is not None and not self.timeout > 0:
            raise ConfigError(f"timeout must be a positive number of seconds, not {self.timeout!r}")
        if self.max_attempts is not None and (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or self.max_attempts < 1
        ):
            raise ConfigError(f"max_attempts must be an integer >= 1, not {self.max_attempts!r}")
        if self.save is not None and not isinstance(self.save, bool):
            raise ConfigError(f"save must be True, False or None, not {self.save!r}")
        if self.retried_from is not None and (
            not isinstance(self.retried_from, str) or not 0 < len(self.retried_from) <= 100
        ):
            raise ConfigError(
                f"retried_from must be a task id (1 to 100 characters), not {self.retried_from!r}"
            )
        if self.schedule is not None and (
            not isinstance(self.schedule, str) or not 0 < len(self.schedule) <= 200
        ):
            raise ConfigError(f"schedule must be a schedule id, not {self.schedule!r}")
        if self.priority is not None:
            check_priority(self.priority)
        if self.due is not None and (
            isinstance(self.due, bool) or not isinstance(self.due, int | float)
        ):
            raise ConfigError(f"due must be epoch seconds, not {self.due!r}")
        if self.runner is not None and (
            not isinstance(self.runner, str) or "." not in self.runner.strip(".")
        ):
            raise ConfigError(f"runner must be a dotted path, not {self.runner!r}")
        if self.retries is not None or self.attempts is not None:
            for name in ("retries", "attempts"):
                value = getattr(self, name)
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int) or value < 0
                ):
                    raise ConfigError(f"{name} must be an integer >= 0, not {value!r}")
        for name in ("retry_backoff", "retry_backoff_max"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 <= value < float("inf")
            ):
                raise ConfigError(f"{name} must be a number of seconds >= 0, not {value!r}")
        if self.chain is not None and (
            not isinstance(self.chain, str)
            or not isinstance(self.chain_index, int)
            or self.chain_index < 1
        ):
            raise ConfigError(
                f"a chain's link needs its index: {self.chain!r}, {self.chain_index!r}"
            )
        if self.iter is not None and not (
            isinstance(self.iter_index, int)
            and isinstance(self.iter_size, int)
            and 1 <= self.iter_index <= self.iter_size
        ):
            raise ConfigError(f"an iteration's call needs its index and size: {self.iter!r}")
        if self.unique_for is not None and (
            self.unique is None
            or isinstance(self.unique_for, bool)
            or not isinstance(self.unique_for, int | float)
            or not 0 < self.unique_for < float("inf")
        ):
            raise ConfigError(
                f"unique_for must be a positive number of seconds, with unique set, "
                f"not {self.unique_for!r}"
            )
        if self.cancelled is not None and self.cancelled not in ("queued", "running"):
            raise ConfigError(f"cancelled must be 'queued' or 'running', not {self.cancelled!r}")
        if self.retry_jitter is not None and not isinstance(self.retry_jitter, bool):
            raise ConfigError(f"retry_jitter must be True or False, not {self.retry_jitter!r}")
        if self.failures is not None and (
            not isinstance(self.failures, tuple)
            or not all(isinstance(text, str) for text in self.failures)
        ):
            raise ConfigError(f"failures must be a tuple of texts, not {self.failures!r}")
        if self.retry_on is not None and (
            not isinstance(self.retry_on, tuple)
            or not all(isinstance(path, str) and path for path in self.retry_on)
        ):
            raise ConfigError(
                f"retry_on must be a tuple of dotted paths to exception classes, "
                f"not {self.retry_on!r}"
            )

    def to_mapping(self) -> dict[str, Any]:
        """The options that are set (not None), by name: how options travel and are stored.

        Only what is set travels, so an option added later is simply absent from older
        messages, and one an older reader does not know is ignored there (see qcore.wire).
        """
        if self is _NO_OPTIONS:
            return {}
        return _options_set(self)

    @classmethod
    def from_stored(cls, values: Mapping[str, Any] | None) -> TaskOptions:
        """Options back from :meth:`to_mapping`; names this Q does not know are ignored (they
        come from a newer Q). Raises ConfigError for a value that is not valid."""
        if not values:
            return _NO_OPTIONS
        # Every option defaults to None: the slots are set as they are, then checked as
        # __init__ would (a worker reads the options of every task that has some).
        get = values.get
        options: TaskOptions = _build_options(*[get(name) for name in _OPTION_ORDER])
        options.__post_init__()
        return options


FAILURES_KEPT = 20
"""The earlier runs' failures a retried task carries at the most (the latest ones)."""
FAILURE_TEXT_MAX = 8000
"""Characters kept of each (the exception's line comes first, the traceback's end last)."""


def with_failure(options: TaskOptions, text: str) -> tuple[str, ...]:
    """``options.failures`` with ``text`` (a run's Failure) added: what the next run carries."""
    if len(text) > FAILURE_TEXT_MAX:
        half = FAILURE_TEXT_MAX // 2
        text = f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"
    return (*(options.failures or ())[-(FAILURES_KEPT - 1) :], text)


_OPTION_ORDER = tuple(TaskOptions.__dataclass_fields__)
OPTION_NAMES = frozenset(_OPTION_ORDER)
_NO_OPTIONS = TaskOptions()
_options_set = fields_set(TaskOptions)
_build_options = unchecked_constructor(TaskOptions)

Q_OPTION_NAMES = frozenset({"hook", "group", "task_name", "countdown"}) | OPTION_NAMES
"""What ``q_options`` accepts from any producer (a producer may accept more)."""


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
    retried_from: str | None = None,
    schedule: str | None = None,
    due: float | None = None,
    runner: str | None = None,
    retries: int | None = None,
    retry_backoff: float | None = None,
    retry_backoff_max: float | None = None,
    retry_jitter: bool | None = None,
    retry_on: Any = None,
    unique: str | None = None,
    unique_for: float | None = None,
    priority: int | None = None,
) -> TaskOptions:
    """:class:`TaskOptions` for a call; ``countdown`` (seconds from now) becomes ``eta``;
    ``retry_on`` (exception classes or dotted paths) becomes dotted paths, each checked; a
    priority of 0 (the default) is not carried."""
    if countdown is not None:
        if eta is not None:
            raise ConfigError("pass eta (epoch seconds) or countdown (seconds), not both")
        eta = time.time() + float(countdown)
    if retry_on is not None:
        retry_on = retry_on_paths(retry_on)
    if (
        timeout is None
        and save is None
        and max_attempts is None
        and eta is None
        and retried_from is None
        and schedule is None
        and due is None
        and runner is None
        and retries is None
        and retry_backoff is None
        and retry_backoff_max is None
        and retry_jitter is None
        and retry_on is None
        and unique is None
        and unique_for is None
        and not priority
    ):
        if priority is not None:
            check_priority(priority)  # a False is refused, not taken for 0
        return _NO_OPTIONS
    return TaskOptions(
        timeout=timeout,
        save=save,
        max_attempts=max_attempts,
        eta=eta,
        retried_from=retried_from,
        schedule=schedule,
        due=due,
        runner=runner,
        retries=retries,
        retry_backoff=retry_backoff,
        retry_backoff_max=retry_backoff_max,
        retry_jitter=retry_jitter,
        retry_on=retry_on,
        unique=unique,
        unique_for=unique_for,
        priority=priority or None,
    )
