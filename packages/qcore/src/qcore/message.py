"""The task message a producer enqueues and the result record the cluster produces.

Both are frozen dataclasses; :mod:`qcore.wire` writes them as versioned tuples. A message
carries the task's own ``args``/``kwargs`` and, apart from them, Q's per-task
:class:`TaskOptions` (:mod:`qcore.options`, re-exported here), so a task whose kwargs use the
names ``timeout`` or ``save`` can never collide with Q's options.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from qcore.naming import humanize, new_id
from qcore.options import (
    _NO_OPTIONS,
    OPTION_NAMES,
    PRIORITY_MAX,
    PRIORITY_MIN,
    TaskOptions,
    check_priority,
)
from qcore.resolve import dotted_path
from qcore.slots import unchecked_constructor

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

    @property
    def due(self) -> float:
        """When the task could start, epoch seconds: its ``eta`` if later than its enqueue."""
        eta = self.options.eta
        return eta if eta is not None and eta > self.started else self.started

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
