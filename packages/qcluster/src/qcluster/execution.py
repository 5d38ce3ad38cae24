"""Running one task: what every worker (and ``join()``) does with one message.

:func:`execute` turns a :class:`~qcore.TaskMessage` into a :class:`~qcore.TaskResult` and never
raises for anything the task does: an exception, a function that cannot be found or a result
that cannot be pickled all become a Failure record whose ``result`` says what happened.
What comes after (save, ack, events, hooks) is :mod:`qcluster.flushing`.
"""

from __future__ import annotations

import dataclasses
import pickle
import time
import traceback
from collections.abc import Awaitable, Callable
from inspect import isawaitable
from types import TracebackType
from typing import Any, NamedTuple

from qcluster.eventloop import Settled, TaskLoop
from qcore import (
    FunctionNotFound,
    HookRunner,
    SerializationError,
    TaskMessage,
    TaskResult,
    resolve,
)
from qcore.serialization import dumps

__all__ = [
    "Awaiting",
    "call",
    "default_hook_runner",
    "execute",
    "failure",
    "format_error",
    "resolve_callable",
    "run_hook",
    "settle",
    "should_save",
    "summary",
    "task_timeout",
    "timed_out_error",
    "unpicklable",
    "unstorable",
]

# Values that always pickle: checking them would only cost time on the hot path.
_ALWAYS_PICKLABLE = frozenset({type(None), bool, int, float, str, bytes, complex})


def resolve_callable(func: Callable[..., Any] | str) -> Callable[..., Any]:
    """The callable itself, or the one a dotted path names (cached per process)."""
    if isinstance(func, str):
        return resolve(func)
    if callable(func):
        return func
    raise FunctionNotFound(f"{func!r} is neither a callable nor a dotted path")


def format_error(exc: BaseException, *, skip_frames: int = 0) -> str:
    """``Type: message`` on the first line, then the traceback (without Q's own frames)."""
    tb: TracebackType | None = exc.__traceback__
    for _ in range(skip_frames):
        if tb is None or tb.tb_next is None:
            break
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return f"{summary(exc)}\n\n{text.rstrip()}"


def summary(exc: BaseException) -> str:
    """``Type: message`` (or ``Type``), even for an exception whose ``str()`` raises."""
    try:
        message = str(exc)
    except Exception:
        # An exception whose __str__ raises must still become a record, not end its worker.
        message = "<exception str() failed>"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def failure(
    message: TaskMessage,
    error: str,
    *,
    attempt: int = 1,
    cluster: str | None = None,
    run_time: float | None = None,
) -> TaskResult:
    """A Failure record for ``message`` whose result is ``error``."""
    return TaskResult.from_message(
        message,
        result=error,
        success=False,
        attempt_count=attempt,
        cluster=cluster,
        run_time=run_time,
    )


class Awaiting(NamedTuple):
    """A task whose function returned an awaitable (an ``async def`` task): what is left is to
    await it and :func:`settle` the record."""

    awaitable: Awaitable[Any]
    begun: float
    """``time.perf_counter()`` when the function was called."""


def execute(
    message: TaskMessage,
    *,
    attempt: int = 1,
    cluster: str | None = None,
    errors: list[BaseException] | None = None,
    loop: TaskLoop | None = None,
) -> TaskResult:
    """Run ``message``'s function with its args and return the record to save.

    Success: ``result`` is the return value. Failure (``success=False``): ``result`` is the
    error text with its traceback, for an exception raised by the task, a ``func`` that does
    not resolve (the message names the path), or a return value that cannot be pickled (it
    could never be stored). A function that returns an awaitable (``async def``) is awaited
    to its end in ``loop`` (the worker's; None: a loop made for this call). Timeouts are not
    enforced here: a worker's sentinel does that. The exception the task raised is appended
    to ``errors`` when given (``join()`` re-raises it in the caller).
    """
    outcome = call(message, attempt=attempt, cluster=cluster, errors=errors)
    if not isinstance(outcome, Awaiting):
        return outcome
    if loop is not None:
        settled = loop.run(outcome.awaitable)
    else:
        own = TaskLoop()
        try:
            settled = own.run(outcome.awaitable)
        finally:
            own.close()
    return settle(message, outcome, settled, attempt=attempt, cluster=cluster, errors=errors)


def call(
    message: TaskMessage,
    *,
    attempt: int = 1,
    cluster: str | None = None,
    errors: list[BaseException] | None = None,
) -> TaskResult | Awaiting:
    """The first half of :func:`execute`: call the function; its record, or, when it
    returned an awaitable, what is left to await."""
    if message.options.runner is not None:
        return _execute_by_runner(message, message.options.runner, attempt, cluster, errors)
    try:
        func = resolve_callable(message.func)
    except FunctionNotFound as exc:
        return failure(message, f"FunctionNotFound: {exc}", attempt=attempt, cluster=cluster)
    except Exception as exc:
        # Importing the task's module raised: that is the task's error, not ours.
        text = f"cannot import {message.func_path!r}: {format_error(exc)}"
        return failure(message, text, attempt=attempt, cluster=cluster)
    begun = time.perf_counter()
    try:
        value = func(*message.args, **message.kwargs)
    except BaseException as exc:
        ran = time.perf_counter() - begun
        # BaseException too: a task calling sys.exit() must fail, not end its worker.
        if errors is not None:
            errors.append(exc)
        text = format_error(exc, skip_frames=1)
        return failure(message, text, attempt=attempt, cluster=cluster, run_time=ran)
    if type(value) not in _ALWAYS_PICKLABLE and isawaitable(value):
        return Awaiting(value, begun)
    return _outcome(message, value, attempt, cluster, time.perf_counter() - begun)


def settle(
    message: TaskMessage,
    awaiting: Awaiting,
    settled: Settled,
    *,
    attempt: int = 1,
    cluster: str | None = None,
    errors: list[BaseException] | None = None,
    timeout: float | None = None,
) -> TaskResult:
    """The second half of :func:`execute`: the record of an awaited task, from how its
    awaitable ended (its run time counts from the call to the end of the await; ``timeout``,
    the seconds it was given, names a timeout in the record)."""
    ran = settled.ended - awaiting.begun
    exc = settled.error
    if exc is None:
        return _outcome(message, settled.value, attempt, cluster, ran)
    if settled.timed_out:
        text = timed_out_error(timeout or 0.0)
        return failure(message, text, attempt=attempt, cluster=cluster)
    if errors is not None:
        errors.append(exc)
    text = format_error(exc, skip_frames=1)
    return failure(message, text, attempt=attempt, cluster=cluster, run_time=ran)


def timed_out_error(timeout: float) -> str:
    """The result of a coroutine task cancelled past its timeout in its worker's loop."""
    return (
        f"TimeoutError: the task timed out after {timeout:g} s "
        "(cancelled in its worker's event loop)"
    )


def _execute_by_runner(
    message: TaskMessage,
    path: str,
    attempt: int,
    cluster: str | None,
    errors: list[BaseException] | None,
) -> TaskResult | Awaiting:
    """The task run by the callable its ``runner`` option names, as
    ``runner(message, attempt, cluster)``: it resolves and calls the function itself (a
    framework's task object need not be callable); what it raises is the task's failure,
    what it returns is awaited when it is awaitable."""
    try:
        runner = resolve_callable(path)
    except FunctionNotFound as exc:
        return failure(message, f"FunctionNotFound: {exc}", attempt=attempt, cluster=cluster)
    except Exception as exc:
        text = f"cannot import the runner {path!r}: {format_error(exc)}"
        return failure(message, text, attempt=attempt, cluster=cluster)
    begun = time.perf_counter()
    try:
        value = runner(message, attempt, cluster)
    except BaseException as exc:
        ran = time.perf_counter() - begun
        if errors is not None:
            errors.append(exc)
        text = format_error(exc, skip_frames=1)
        return failure(message, text, attempt=attempt, cluster=cluster, run_time=ran)
    if type(value) not in _ALWAYS_PICKLABLE and isawaitable(value):
        return Awaiting(value, begun)
    return _outcome(message, value, attempt, cluster, time.perf_counter() - begun)


def _outcome(
    message: TaskMessage, value: Any, attempt: int, cluster: str | None, ran: float
) -> TaskResult:
    problem = unpicklable(value)
    if problem is not None:
        text = (
            f"SerializationError: the task returned a {type(value).__name__} that cannot be "
            f"stored: {problem}"
        )
        return failure(message, text, attempt=attempt, cluster=cluster, run_time=ran)
    return TaskResult.from_message(
        message, result=value, success=True, attempt_count=attempt, cluster=cluster, run_time=ran
    )


def unstorable(record: TaskResult, error: Exception, *, keep_args: bool = True) -> TaskResult:
    """The Failure saved in place of a record the store refused for what it holds.

    ``keep_args=False`` drops the args and kwargs too, for when they are what is too big.
    """
    text = (
        f"SerializationError: the task's record cannot be stored: {type(error).__name__}: {error}"
    )
    return dataclasses.replace(
        record,
        result=text,
        success=False,
        args=record.args if keep_args else (),
        kwargs=record.kwargs if keep_args else {},
    )


def unpicklable(value: Any) -> str | None:
    """None when ``value`` can be pickled (by pickle or cloudpickle), else the reason."""
    if type(value) in _ALWAYS_PICKLABLE:
        return None
    try:
        pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    except Exception:
        try:
            dumps(value)
        except SerializationError as exc:
            return str(exc)
    return None


def task_timeout(message: TaskMessage, default: float | None) -> float | None:
    """The task's own timeout option, else the cluster's."""
    own = message.options.timeout
    return own if own is not None else default


def should_save(message: TaskMessage, record: TaskResult, default: bool = True) -> bool:
    """Failures are always saved; a success unless its ``save`` option (or the default) says no."""
    if not record.success:
        return True
    own = message.options.save
    return own if own is not None else default


def default_hook_runner(hook: Callable[..., Any], record: TaskResult) -> None:
    """Call ``hook(record)`` (qdjango's runner passes the saved ``Task`` row instead)."""
    hook(record)


def run_hook(
    message: TaskMessage, record: TaskResult, runner: HookRunner | None = None
) -> Exception | None:
    """Resolve and run the message's hook through ``runner``; what it raised, or None."""
    if message.hook is None:
        return None
    try:
        hook = resolve_callable(message.hook)
        (runner or default_hook_runner)(hook, record)
    except Exception as exc:
        return exc
    return None
