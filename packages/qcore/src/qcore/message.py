"""The task message a producer enqueues and the result record the cluster produces.

Both are frozen dataclasses; :mod:`qcore.wire` writes them as versioned tuples. A message
carries the task's own ``args``/``kwargs`` and, apart from them, Q's per-task
:class:`TaskOptions`, so a task whose kwargs use the names ``timeout`` or ``save`` can never
collide with Q's options.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from qcore.errors import ConfigError
from qcore.naming import humanize, new_id
from qcore.resolve import dotted_path
from qcore.slots import fast_init, fields_set, unchecked_constructor

__all__ = [
    "OPTION_NAMES",
    "PRIORITY_MAX",
    "PRIORITY_MIN",
    "WIRE_VERSION",
    "TaskMessage",
    "TaskOptions",
    "TaskResult",
    "check_priority",
]

WIRE_VERSION = (2, 0)
"""(major, minor) of the messages and records this Q writes (see :mod:`qcore.wire`)."""

TaskFunc = Callable[..., Any] | str

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


_OPTION_ORDER = tuple(TaskOptions.__dataclass_fields__)
OPTION_NAMES = frozenset(_OPTION_ORDER)
_NO_OPTIONS = TaskOptions()
_options_set = fields_set(TaskOptions)
_build_options = unchecked_constructor(TaskOptions)


@dataclass(frozen=True, slots=True)
class TaskMessage:
    """One call to run: what the producer signs and the worker verifies, then executes."""

    id: str
    name: str
    func: TaskFunc
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    hook: TaskFunc | None = None
    group: str | None = None
    options: TaskOptions = field(default_factory=TaskOptions)
    started: float = 0.0
    """Enqueue time in epoch seconds (Django Q calls the enqueue time ``started``)."""
    version: tuple[int, int] = WIRE_VERSION
    """The wire version (major, minor) the message was read in, or is written in."""

    @classmethod
    def new(
        cls,
        func: TaskFunc,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        hook: TaskFunc | None = None,
        group: str | None = None,
        options: TaskOptions | None = None,
        task_id: str | None = None,
        name: str | None = None,
    ) -> TaskMessage:
        """A message with a fresh id, its humanized name and ``started`` set to now."""
        if not (callable(func) or (isinstance(func, str) and func)):
            raise TypeError(f"func must be a callable or a dotted path string, not {func!r}")
        if hook is not None and not (callable(hook) or (isinstance(hook, str) and hook)):
            raise TypeError(f"hook must be a callable or a dotted path string, not {hook!r}")
        task_id = task_id or new_id()
        return _build_message(  # type: ignore[no-any-return]
            task_id,
            name or humanize(task_id),
            func,
            tuple(args),
            dict(kwargs) if kwargs else {},
            hook,
            group,
            options if options is not None else _NO_OPTIONS,
            time.time(),
            WIRE_VERSION,
        )

    @property
    def func_path(self) -> str:
        """``func`` as a dotted name, for records and logs."""
        return dotted_path(self.func)

    @property
    def hook_path(self) -> str | None:
        """``hook`` as a dotted name, or None."""
        return None if self.hook is None else dotted_path(self.hook)

    @property
    def retried_from(self) -> str | None:
        """The id of the task this one retries, or None."""
        return self.options.retried_from

    def with_options(self, **changes: Any) -> TaskMessage:
        """A copy with some options changed."""
        return replace(self, options=replace(self.options, **changes))

    def to_wire(self) -> tuple[Any, ...]:
        """The message as the versioned tuple the codec pickles (see :mod:`qcore.wire`)."""
        from qcore.wire import message_to_wire

        return message_to_wire(self)

    @classmethod
    def from_wire(cls, wire: Any) -> TaskMessage:
        """The message back from a tuple of any wire version this Q reads."""
        from qcore.wire import message_from_wire

        return message_from_wire(wire)


_build_message = unchecked_constructor(TaskMessage)


@dataclass(frozen=True, slots=True)
class TaskResult:
    """What a cluster produces for one task, and what result stores save (upsert by ``id``).

    For a failure, ``result`` is the error text with its traceback, as in Django Q.
    """

    id: str
    name: str
    func: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: Any
    success: bool
    started: float
    """Enqueue time, epoch seconds."""
    stopped: float
    """When the task finished (or was declared failed), epoch seconds."""
    attempt_count: int = 1
    hook: str | None = None
    group: str | None = None
    cluster: str | None = None
    options: TaskOptions = _NO_OPTIONS
    """The task's own options, so it can be sent again as it was (an admin's "retry")."""
    version: tuple[int, int] = WIRE_VERSION
    run_time: float | None = None
    """Seconds the function itself ran (``time_taken()`` also counts the wait in the queue);
    None when unknown: a task that timed out or lost its worker, a record of Q 0.1."""

    @classmethod
    def from_message(
        cls,
        message: TaskMessage,
        *,
        result: Any,
        success: bool,
        attempt_count: int = 1,
        stopped: float | None = None,
        cluster: str | None = None,
        run_time: float | None = None,
    ) -> TaskResult:
        """The record for ``message`` once it finished (or failed)."""
        func = message.func
        hook = message.hook
        return _build_result(  # type: ignore[no-any-return]
            message.id,
            message.name,
            func if type(func) is str else dotted_path(func),
            message.args,
            message.kwargs,
            result,
            success,
            message.started,
            time.time() if stopped is None else stopped,
            attempt_count,
            hook if hook is None or type(hook) is str else dotted_path(hook),
            message.group,
            cluster,
            message.options,
            WIRE_VERSION,
            run_time,
        )

    @classmethod
    def failure_without_message(
        cls,
        task_id: str,
        error: str,
        *,
        attempt_count: int = 1,
        cluster: str | None = None,
    ) -> TaskResult:
        """A Failure for a task whose message could not be read (only its id is known)."""
        now = time.time()
        return cls(
            id=task_id,
            name=humanize(task_id) if _is_hex(task_id) else task_id,
            func="<unknown>",
            args=(),
            kwargs={},
            result=error,
            success=False,
            started=now,
            stopped=now,
            attempt_count=attempt_count,
            cluster=cluster,
        )

    def time_taken(self) -> float:
        """``stopped - started`` in seconds; it includes the time spent waiting in the queue."""
        return self.stopped - self.started

    @property
    def retried_from(self) -> str | None:
        """The id of the task this one retried, or None."""
        return self.options.retried_from

    def to_wire(self) -> tuple[Any, ...]:
        """The record as the versioned tuple the codec pickles (see :mod:`qcore.wire`)."""
        from qcore.wire import result_to_wire

        return result_to_wire(self)

    @classmethod
    def from_wire(cls, wire: Any) -> TaskResult:
        """The record back from a tuple of any wire version this Q reads."""
        from qcore.wire import result_from_wire

        return result_from_wire(wire)


_build_result = unchecked_constructor(TaskResult)


def _is_hex(value: str) -> bool:
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return bool(value)
