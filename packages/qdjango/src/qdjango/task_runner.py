"""The worker's side of the ``django.tasks`` backend.

:func:`run` is the ``runner`` option of every message :class:`~qdjango.backends.QBackend`
sends: the worker calls it instead of the function (a ``@task`` leaves a ``Task`` object, not
a function, at the task's path). It sends ``task_started``, passes the ``TaskContext`` to a
task that takes it, and holds the return value to Django's JSON rules; an ``async def`` task's
coroutine is returned for the worker to await in its own event loop (Django's ``Task.call``
would run each in a new loop of its own, through ``async_to_sync``); whatever it raises is
the task's failure, as for any Q task. ``task_finished`` is sent once the record is saved,
by :class:`FinishedSignal`, a subscriber of the cluster's event bus, with a result made from
the one ``task_started`` carried (kept here, by task id, until its batch is saved).
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import iscoroutinefunction

from qcore import EventBus, TaskMessage
from qcore.events import Event, TaskDeadLettered, TasksSettled, TaskTimedOut
from qdjango.task_results import finished_result, is_django_task, record_result, running_result
from qdjango.tasks_api import TaskContext, json_value, task_finished, task_started

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
    # Aware (UTC) as the result's other times, whatever USE_TZ says; timezone.now() reads the
    # setting on every call, and passes the zone by keyword: twice the cost.
    result = running_result(message, _now(UTC), [cluster or ""] * attempt)
    task = result.task
    if task_started.receivers:
        task_started.send(sender=_backend_class or _sender(), task_result=result)
    if task_finished.receivers:
        if len(_started) >= _STARTED_LIMIT:  # runs whose batch never settled here (retried)
            del _started[next(iter(_started))]
        _started[message.id] = result
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


_now = datetime.now

_started: dict[str, Any] = {}
"""The RUNNING result of each run of this process whose record is not saved yet, by task id:
``task_finished``'s result is made from it (resolving the task and converting the enqueue
time again cost as much as the rest of the signal: tools/bench/README.md, 'issue 14')."""
_STARTED_LIMIT = 4096

_coroutine: dict[Any, bool] = {}
"""Whether a task's function is a coroutine function, by function (asked on every run)."""


async def _normalized(awaitable: Awaitable[Any]) -> Any:
    return json_value(await awaitable)


class FinishedSignal:
    """Sends ``django.tasks``'s ``task_finished`` for each saved record of a task sent
    through the backend (a success, a failure, a timeout, a loss out of attempts), with the
    result as ``get_result`` would now return it, and the run's start. Picklable (a cluster's
    processes send it).

    A worker's records come in its batch's :class:`~qcore.events.TasksSettled`, not one
    event per task: subscribed to ``TaskSucceeded``, this made every worker build an event for
    every task, ``async_task``'s too. A timeout (the worker's loop's, or the sentinel's) and a
    loss out of attempts come in their own events."""

    def __init__(self, *, using: str | None = None) -> None:
        self.using = using

    def __call__(self, event: Event) -> None:
        if type(event) is TasksSettled:
            for outcome in event.outcomes:
                record = outcome.record
                started = _started.pop(record.id, None) if _started else None
                # A retry is no end; a timeout in the loop has its own event, sent first; a
                # task without a runner (async_task's) is no django.tasks task.
                if (
                    outcome.retry is None
                    and outcome.timed_out is None
                    and (started is not None or record.options.runner is not None)
                ):
                    self.finished(record, started)
            return
        record = getattr(event, "record", None)
        if record is not None:
            self.finished(record, _started.pop(record.id, None) if _started else None)

    def finished(self, record: Any, started: Any) -> None:
        if not task_finished.receivers:
            return
        if started is not None and len(started.worker_ids) == max(1, record.attempt_count or 1):
            result = finished_result(started, record)
        elif is_django_task(record.options):
            result = record_result(record)  # run in another process (the sentinel's events)
        else:
            return
        task_finished.send(sender=_backend_class or _sender(), task_result=result)

    def __repr__(self) -> str:
        return f"FinishedSignal(using={self.using!r})"


def subscribe_finished(bus: EventBus, *, using: str | None = None) -> EventBus:
    """Subscribe :class:`FinishedSignal` to the events that carry a finished record."""
    handler = FinishedSignal(using=using)
    for event_type in (TasksSettled, TaskTimedOut, TaskDeadLettered):
        bus.subscribe(event_type, handler)
    return bus
