"""Q's records seen as ``django.tasks`` results: a ``Task`` row, or a message still in the
transport, turned into a ``TaskResult`` with Django's statuses, timestamps and errors.

A ``django.tasks`` task travels as an ordinary Q message whose ``func`` is the task's module
path and whose ``runner`` option is :data:`RUNNER`, so its record is an ordinary ``Task`` row
(admin, ``fetch``, ``qinfo``). What Django's result has beyond Q's record is derived here:
the status from where the task is, ``errors`` from a failure's text, ``worker_ids`` from the
cluster that ran each attempt.
"""

from __future__ import annotations

import builtins
import dataclasses
import importlib
import inspect
from datetime import UTC, datetime, timedelta
from typing import Any

import qcore
from qcore import TaskMessage
from qdjango.tasks_api import (
    Task,
    TaskError,
    TaskResult,
    TaskResultStatus,
    new_result,
)

__all__ = [
    "RUNNER",
    "error_of",
    "finished_result",
    "is_django_task",
    "message_result",
    "moment",
    "record_result",
    "resolve_task",
    "row_result",
    "running_result",
]

RUNNER = "qdjango.task_runner.run"
"""The ``runner`` option of every message the ``django.tasks`` backend sends."""


def is_django_task(options: Any) -> bool:
    """Whether a message's or record's options say it was sent through ``django.tasks``."""
    return getattr(options, "runner", None) == RUNNER


def moment(epoch: float | None) -> datetime | None:
    """An aware datetime (UTC) for epoch seconds."""
    return None if epoch is None else _fromtimestamp(epoch, UTC)  # tz= by keyword costs 25% more


_fromtimestamp = datetime.fromtimestamp
# Looked up once: an Enum member read through its class costs as much as building a list.
_RUNNING, _SUCCESSFUL, _FAILED = (
    TaskResultStatus.RUNNING,
    TaskResultStatus.SUCCESSFUL,
    TaskResultStatus.FAILED,
)


def resolve_task(path: str, *, run_after: float | None = None, backend: Any = None) -> Task:
    """The ``django.tasks`` ``Task`` a module path names (the object ``@task`` left there).

    A plain module-level function (a task sent with ``async_task``) is seen as a task of
    ``backend`` when one is given. Raises ``TypeError`` when the path names something else.
    """
    key = (path, None if backend is None else backend.alias)
    found = _resolved.get(key)
    if found is None:
        module_path, _, name = path.rpartition(".")
        found = getattr(importlib.import_module(module_path), name, None)
        if inspect.isfunction(found) and backend is not None:
            found = backend.task_class(func=found, backend=backend.alias)
        if not isinstance(found, Task):
            raise TypeError(f"{path!r} is a {type(found).__name__}, not a django.tasks Task")
        _resolved[key] = found  # as qcore.resolve caches paths: a module is imported once
    if run_after is not None:
        # Django's Task validates itself against its backend on replace(): skip that here,
        # the task was validated when it was sent.
        found = _replace_unchecked(found, run_after=moment(run_after))
    return found


_resolved: dict[tuple[str, str | None], Task] = {}


def _replace_unchecked(task: Task, **changes: Any) -> Task:
    copy = object.__new__(type(task))
    for field in dataclasses.fields(task):
        object.__setattr__(copy, field.name, changes.get(field.name, getattr(task, field.name)))
    return copy


def _backend_alias(task: Task) -> str:
    return str(task.backend)


def _result(
    task: Task,
    task_id: str,
    status: TaskResultStatus,
    *,
    enqueued_at: datetime | None = None,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    args: Any = (),
    kwargs: Any = None,
    errors: list[TaskError] | None = None,
    worker_ids: list[str] | None = None,
    return_value: Any = None,
) -> TaskResult:
    """A ``TaskResult`` built without its ``__init__``: the arguments were held to Django's
    JSON rules when the task was sent (a task sent with ``async_task`` keeps its own), and
    normalizing them again on every read costs more than the rest. Its last attempt started
    when it started."""
    return new_result(  # type: ignore[no-any-return]
        task,
        task_id,
        status,
        enqueued_at,
        started_at,
        finished_at,
        started_at,
        list(args),
        {} if kwargs is None else dict(kwargs),
        _backend_alias(task),
        [] if errors is None else errors,
        [] if worker_ids is None else worker_ids,
        return_value,
    )


def message_result(
    message: TaskMessage,
    *,
    status: TaskResultStatus = TaskResultStatus.READY,
    started_at: datetime | None = None,
    worker_ids: list[str] | None = None,
    backend: Any = None,
) -> TaskResult:
    """The result of a task that has not finished: queued (READY) or running."""
    task = resolve_task(message.func_path, run_after=message.options.eta, backend=backend)
    return _result(
        task,
        message.id,
        status,
        enqueued_at=moment(message.started),
        started_at=started_at,
        args=message.args,
        kwargs=message.kwargs,
        errors=_errors(message.options.failures),
        worker_ids=worker_ids or [],
    )


def running_result(message: TaskMessage, started_at: datetime, worker_ids: list[str]) -> TaskResult:
    """The RUNNING result of a worker's run of ``message`` that began at ``started_at``: what
    :func:`message_result` gives, with the task and its backend's alias looked up once per
    path (a worker builds one for every run)."""
    options = message.options
    found = _running.get(message.func) if options.eta is None else None
    if found is None:
        task = resolve_task(message.func_path, run_after=options.eta)
        found = (task, _backend_alias(task))
        if options.eta is None:
            _running[message.func] = found
    failures = options.failures
    task, alias = found
    return new_result(  # type: ignore[no-any-return]
        task,
        message.id,
        _RUNNING,
        _fromtimestamp(message.started, UTC),
        started_at,
        None,
        started_at,
        list(message.args),
        dict(message.kwargs),
        alias,
        [error_of(text) for text in failures] if failures else [],  # the runs before this one
        worker_ids,
        None,
    )


_running: dict[Any, tuple[Task, str]] = {}


def row_result(row: Any, *, backend: Any = None) -> TaskResult:
    """The result a saved ``Task`` row (a finished task) stands for."""
    options = row.options or {}
    task = resolve_task(row.func, run_after=options.get("eta"), backend=backend)
    return _finished(
        task,
        row.id,
        row.success,
        row.result,
        enqueued_at=row.started,
        started_at=_began(row.stopped, row.run_time),
        finished_at=row.stopped,
        args=row.args or (),
        kwargs=row.kwargs or {},
        attempts=row.attempt_count,
        worker=row.cluster,
        failures=options.get("failures"),
    )


def record_result(record: Any, *, backend: Any = None) -> TaskResult:
    """The result a finished task's record (``qcore.TaskResult``) stands for, as
    :func:`row_result` reads it from its row once saved."""
    task = resolve_task(record.func, run_after=record.options.eta, backend=backend)
    return _finished(
        task,
        record.id,
        record.success,
        record.result,
        enqueued_at=moment(record.started),
        started_at=moment(None if record.run_time is None else record.stopped - record.run_time),
        finished_at=moment(record.stopped),
        args=record.args,
        kwargs=record.kwargs,
        attempts=record.attempt_count,
        worker=record.cluster,
        failures=record.options.failures,
    )


def finished_result(started: TaskResult, record: Any) -> TaskResult:
    """The result of the run that ``started`` (the RUNNING result its worker sent
    ``task_started`` with) stood for, now ended as ``record`` says: what :func:`record_result`
    gives, from what the start already resolved and converted (its task, arguments, enqueue
    time), and with the run's start (a record does not keep it)."""
    errors = list(started.errors)  # the runs before this one that raised and were retried
    if record.success:
        status, value = _SUCCESSFUL, record.result
    else:
        status, value = _FAILED, None
        errors.append(error_of(str(record.result)))
    started_at = started.started_at
    return new_result(  # type: ignore[no-any-return]
        started.task,
        started.id,
        status,
        started.enqueued_at,
        started_at,
        _fromtimestamp(record.stopped, UTC),
        started_at,
        list(started.args),
        dict(started.kwargs),
        started.backend,
        errors,
        list(started.worker_ids),
        value,
    )


def _finished(
    task: Task,
    task_id: str,
    success: bool,
    value: Any,
    *,
    attempts: int | None,
    worker: str | None,
    failures: tuple[str, ...] | None,
    **fields: Any,
) -> TaskResult:
    errors = _errors(failures)  # the runs before the last that raised and were retried
    if success:
        status = TaskResultStatus.SUCCESSFUL
    else:
        status = TaskResultStatus.FAILED
        errors.append(error_of(str(value)))
    return _result(
        task,
        task_id,
        status,
        errors=errors,
        worker_ids=[worker or ""] * max(1, int(attempts or 1)),
        return_value=value if success else None,
        **fields,
    )


def _began(stopped: datetime | None, run_time: float | None) -> datetime | None:
    """When a saved run began: its end less its run time (a row keeps no start of its run;
    one saved before run times were stored has none)."""
    if stopped is None or run_time is None:
        return None
    return stopped - timedelta(seconds=run_time)


def _errors(failures: tuple[str, ...] | None) -> list[TaskError]:
    return [error_of(text) for text in failures] if failures else []


def error_of(text: str) -> TaskError:
    """A ``TaskError`` from a Failure's text: ``Type: message``, a blank line, the traceback.

    The exception's class path is read from the traceback's own last line for it
    (``module.Type: message``); a failure Q wrote without a traceback (a timeout, a lost
    worker) names a built-in class, or the bare name Q gave it.
    """
    head, _, trace = text.partition("\n\n")
    name = head.split(":", 1)[0].strip()
    path = None
    for line in reversed(trace.splitlines()):
        if line and not line[0].isspace() and line.endswith(head) and line != head:
            prefix = line[: len(line) - len(head)]
            if prefix.endswith(".") and prefix[:-1].replace(".", "").replace("_", "").isalnum():
                path = prefix + name
                break
        elif line == head:
            path = _known_path(name)
            break
    if path is None:
        path = _known_path(name)
    return TaskError(exception_class_path=path, traceback=trace or text)


def _known_path(name: str) -> str:
    """A built-in's or Q's own exception class by name (Q writes some failures without a
    traceback); else the bare name (a lost worker is no exception class)."""
    if isinstance(getattr(builtins, name, None), type):
        return f"builtins.{name}"
    if isinstance(getattr(qcore, name, None), type):
        return f"qcore.{name}"
    return name
