"""Running one task: the code path shared by workers and by inline (``sync``) execution.

:func:`execute` turns a :class:`~qcore.TaskMessage` into a :class:`~qcore.TaskResult` and never
raises for anything the task does: an exception, a function that cannot be found or a result
that cannot be pickled all become a Failure record whose ``result`` says what happened.
:func:`run_inline` adds what the cluster does after a batch (save, then hook) for one task.
"""

from __future__ import annotations

import dataclasses
import pickle
import time
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

from qcore import (
    Codec,
    FunctionNotFound,
    HookRunner,
    ResultStore,
    SerializationError,
    TaskMessage,
    TaskResult,
    get_logger,
    resolve,
)
from qcore.serialization import dumps

__all__ = [
    "call_hook",
    "default_hook_runner",
    "error_fields",
    "execute",
    "failure",
    "format_error",
    "resolve_callable",
    "run_inline",
    "should_save",
    "task_timeout",
    "unpicklable",
    "unstorable",
]

log = get_logger("qcluster.execution")

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
    return f"{_summary(exc)}\n\n{text.rstrip()}"


def _summary(exc: BaseException) -> str:
    try:
        message = str(exc)
    except Exception:
        # An exception whose __str__ raises must still become a record, not end its worker.
        message = "<exception str() failed>"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def error_fields(error: str, *, log_args: bool) -> dict[str, str]:
    """Log fields for a failure's error text (``Type: message``, then a traceback).

    Only the exception's type by default: its message is the task's own text, which often
    repeats an argument (``int("...")``, ``KeyError``) and is part of the result. With
    ``log_args`` the first line too.
    """
    first = error.partition("\n")[0]
    if log_args:
        return {"error": first}
    return {"error": first.partition(":")[0]}


def failure(
    message: TaskMessage, error: str, *, attempt: int = 1, cluster: str | None = None
) -> TaskResult:
    """A Failure record for ``message`` whose result is ``error``."""
    return TaskResult.from_message(
        message, result=error, success=False, attempt_count=attempt, cluster=cluster
    )


def execute(message: TaskMessage, *, attempt: int = 1, cluster: str | None = None) -> TaskResult:
    """Run ``message``'s function with its args and return the record to save.

    Success: ``result`` is the return value. Failure (``success=False``): ``result`` is the
    error text with its traceback, for an exception raised by the task, a ``func`` that does
    not resolve (the message names the path), or a return value that cannot be pickled (it
    could never be stored). Timeouts are not enforced here: a worker's sentinel does that.
    """
    try:
        func = resolve_callable(message.func)
    except FunctionNotFound as exc:
        return failure(message, f"FunctionNotFound: {exc}", attempt=attempt, cluster=cluster)
    except Exception as exc:
        # Importing the task's module raised: that is the task's error, not ours.
        text = f"cannot import {message.func_path!r}: {format_error(exc)}"
        return failure(message, text, attempt=attempt, cluster=cluster)
    try:
        value = func(*message.args, **message.kwargs)
    except BaseException as exc:
        # BaseException too: a task calling sys.exit() must fail, not end its worker.
        return failure(message, format_error(exc, skip_frames=1), attempt=attempt, cluster=cluster)
    problem = unpicklable(value)
    if problem is not None:
        text = (
            f"SerializationError: the task returned a {type(value).__name__} that cannot be "
            f"stored: {problem}"
        )
        return failure(message, text, attempt=attempt, cluster=cluster)
    return TaskResult.from_message(
        message, result=value, success=True, attempt_count=attempt, cluster=cluster
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


def call_hook(
    message: TaskMessage,
    record: TaskResult,
    runner: HookRunner | None = None,
    *,
    log_args: bool = False,
) -> bool:
    """Resolve and run the message's hook through ``runner``; log any error, never raise.

    The log names the error's type and where it was raised; its message only with
    ``log_args`` (a hook's error text can repeat the record's data). Returns True when there
    was no hook or it ran without raising.
    """
    if message.hook is None:
        return True
    try:
        hook = resolve_callable(message.hook)
        (runner or default_hook_runner)(hook, record)
    except Exception as exc:
        log.error(
            "hook.failed",
            task_id=message.id,
            name=message.name,
            func=message.func_path,
            hook=message.hook_path,
            error=_summary(exc) if log_args else type(exc).__name__,
            traceback=format_error(exc) if log_args else _frames(exc),
        )
        return False
    return True


def _frames(exc: BaseException) -> str:
    """Where ``exc`` was raised: the stack of source lines, without the exception's text."""
    return "".join(traceback.format_tb(exc.__traceback__)).rstrip()


def run_inline(
    message: TaskMessage,
    *,
    store: ResultStore | None,
    hook_runner: HookRunner | None = None,
    codec: Codec | None = None,
    save: bool = True,
    attempt: int = 1,
    cluster: str | None = None,
    log_args: bool = False,
) -> TaskResult:
    """Run one task now, in this process, the way a worker would: execute, save, then hook.

    With ``codec`` the message first goes through a sign-and-verify round trip, so what
    cannot be sent to a cluster (an unpicklable argument) fails here too, as
    :class:`qcore.SerializationError`. ``store=None`` skips saving. No timeout is enforced.
    """
    if codec is not None:
        message = codec.decode_message(codec.encode_message(message))
    begun = time.perf_counter()
    record = execute(message, attempt=attempt, cluster=cluster)
    _log_outcome(message, record, time.perf_counter() - begun, attempt, log_args)
    if store is not None and should_save(message, record, save):
        store.save_many([record])
    call_hook(message, record, hook_runner, log_args=log_args)
    return record


def _log_outcome(
    message: TaskMessage, record: TaskResult, duration: float, attempt: int, log_args: bool
) -> None:
    if record.success:
        log.debug(
            "task.finished",
            task_id=message.id,
            name=message.name,
            func=record.func,
            attempt=attempt,
            duration=round(duration, 6),
        )
    else:
        log.warning(
            "task.failed",
            task_id=message.id,
            name=message.name,
            func=record.func,
            attempt=attempt,
            duration=round(duration, 6),
            **error_fields(str(record.result), log_args=log_args),
        )
