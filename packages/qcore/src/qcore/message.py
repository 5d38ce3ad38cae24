"""The task message a producer enqueues and the result record the cluster produces.

Both are frozen dataclasses with a format version. A message carries the task's own
``args``/``kwargs`` and, apart from them, Q's per-task :class:`TaskOptions`, so a task whose
kwargs use the names ``timeout`` or ``save`` can never collide with Q's options.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from qcore.errors import ConfigError
from qcore.naming import humanize, new_id
from qcore.resolve import dotted_path

__all__ = [
    "MESSAGE_VERSION",
    "OPTION_NAMES",
    "RESULT_VERSION",
    "TaskMessage",
    "TaskOptions",
    "TaskResult",
]

MESSAGE_VERSION = 1
RESULT_VERSION = 1

TaskFunc = Callable[..., Any] | str


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

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TaskOptions:
        """Build options from a ``q_options``-style dict; unknown names raise ConfigError."""
        unknown = sorted(set(values) - OPTION_NAMES)
        if unknown:
            raise ConfigError(
                f"unknown task option(s) {', '.join(unknown)}; "
                f"known options are {', '.join(sorted(OPTION_NAMES))}"
            )
        return cls(**values)


OPTION_NAMES = frozenset(f for f in TaskOptions.__dataclass_fields__)


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
    version: int = MESSAGE_VERSION

    @classmethod
    def new(
        cls,
        func: TaskFunc,
        args: tuple[Any, ...] | list[Any] = (),
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
        return cls(
            id=task_id,
            name=name or humanize(task_id),
            func=func,
            args=tuple(args),
            kwargs=dict(kwargs) if kwargs else {},
            hook=hook,
            group=group,
            options=options if options is not None else _NO_OPTIONS,
            started=time.time(),
        )

    @property
    def func_path(self) -> str:
        """``func`` as a dotted name, for records and logs."""
        return dotted_path(self.func)

    @property
    def hook_path(self) -> str | None:
        """``hook`` as a dotted name, or None."""
        return None if self.hook is None else dotted_path(self.hook)

    def with_options(self, **changes: Any) -> TaskMessage:
        """A copy with some options changed."""
        return replace(self, options=replace(self.options, **changes))


_NO_OPTIONS = TaskOptions()


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
    version: int = RESULT_VERSION

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
    ) -> TaskResult:
        """The record for ``message`` once it finished (or failed)."""
        return cls(
            id=message.id,
            name=message.name,
            func=message.func_path,
            args=message.args,
            kwargs=message.kwargs,
            result=result,
            success=success,
            started=message.started,
            stopped=time.time() if stopped is None else stopped,
            attempt_count=attempt_count,
            hook=message.hook_path,
            group=message.group,
            cluster=cluster,
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


def _is_hex(value: str) -> bool:
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return bool(value)
