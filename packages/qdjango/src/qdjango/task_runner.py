"""The worker's side of the ``django.tasks`` backend.

:func:`run` is the ``runner`` option of every message :class:`~qdjango.backends.QBackend`
sends: the worker calls it instead of the function (a ``@task`` leaves a ``Task`` object, not
a function, at the task's path). It sends ``task_started``, passes the ``TaskContext`` to a
task that takes it, and holds the return value to Django's JSON rules; an ``async def`` task's
coroutine is returned for the worker to await in its own event loop (Django's ``Task.call``
would run each in a new loop of its own, through ``async_to_sync``); whatever it raises is
the task's failure, as for any Q task. ``task_finished`` is sent once the record is saved,
by :class:`FinishedSignal`, a subscriber of the cluster's event bus.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.utils import timezone

from qcore import EventBus, TaskMessage
from qcore.events import Event, TaskDeadLettered, TaskFailed, TaskSucceeded, TaskTimedOut
from qdjango.task_results import is_django_task, message_result, record_result
from qdjango.tasks_api import (
    TaskContext,
    TaskResultStatus,
    json_value,
    task_finished,
    task_started,
)

__all__ = ["FinishedSignal", "run", "subscribe_finished"]


def _sender() -> type:
    global _backend_class
    if _backend_class is None:
        from qdjango.backends import QBackend  # imported late: it imports this module's users

        _backend_class = QBackend
    return _backend_class


_backend_class: type | None = None


def run(message: TaskMessage, attempt: int, cluster: str | None) -> Any:
    """Run a ``django.tasks`` task's attempt ``attempt`` in this worker; returns its value,
    normalized as Django's JSON rules say (a value they refuse fails the task)."""
    now = timezone.now()
    result = message_result(
        message,
        status=TaskResultStatus.RUNNING,
        started_at=now,
        worker_ids=[cluster or ""] * attempt,
    )
    task = result.task
    if task_started.receivers:
        task_started.send(sender=_sender(), task_result=result)
    args = message.args
    if task.takes_context:
        args = (TaskContext(task_result=result), *args)
    func = task.func
    coroutine = _coroutine.get(func)
    if coroutine is None:
        coroutine = iscoroutinefunction(func)
        if len(_coroutine) < 1024:
            _coroutine[func] = coroutine
    if coroutine:
        return _normalized(func(*args, **message.kwargs))
    return json_value(func(*args, **message.kwargs))  # Task.call, for a plain function


_coroutine: dict[Any, bool] = {}
"""Whether a task's function is a coroutine function, by function (asked on every run)."""


async def _normalized(awaitable: Awaitable[Any]) -> Any:
    return json_value(await awaitable)


class FinishedSignal:
    """Sends ``django.tasks``'s ``task_finished`` for each saved record of a task sent
    through the backend (a success, a failure, a timeout, a loss out of attempts), with the
    result as ``get_result`` would now return it. Picklable (a cluster's processes send it)."""

    def __init__(self, *, using: str | None = None) -> None:
        self.using = using

    def __call__(self, event: Event) -> None:
        record = getattr(event, "record", None)
        if record is None or not is_django_task(record.options) or not task_finished.receivers:
            return
        task_finished.send(sender=_sender(), task_result=record_result(record))

    def __repr__(self) -> str:
        return f"FinishedSignal(using={self.using!r})"


def subscribe_finished(bus: EventBus, *, using: str | None = None) -> EventBus:
    """Subscribe :class:`FinishedSignal` to the events that carry a finished record."""
    handler = FinishedSignal(using=using)
    for event_type in (TaskSucceeded, TaskFailed, TaskTimedOut, TaskDeadLettered):
        bus.subscribe(event_type, handler)
    return bus
