"""Django's signals for Q's events: django-q2's names where it has them, Q's own for the rest.

A subscriber of the event bus (:class:`DjangoSignals`) sends them, in the process that emits the
event: ``pre_enqueue`` where a task is sent, ``pre_execute``, ``post_execute``, ``post_spawn``,
``hook_failed`` and ``task_dead_lettered`` (a payload refused) in the worker processes,
``task_timed_out``, ``task_retried``, ``task_dead_lettered`` (out of attempts), ``worker_lost``
and ``worker_stopped`` in the cluster's sentinel. Connect receivers where Django says to (an
``AppConfig.ready()``): a cluster sends only the signals that have a receiver when it starts
(its workers then never build the events nobody receives), and every process of it has them.

Every signal is sent with ``sender="qdjango"``, the ``event`` (a :mod:`qcore.events` dataclass)
and, where the event has a record, ``task``: the saved :class:`~qdjango.models.Task`, built from
the record without a query (an unsaved instance when the record was not saved, ``save=False``).
A receiver that raises is logged by the bus (``events.subscriber_failed``) and never breaks the
task. Where a task is sent (``async_task``), a signal with no receiver costs a look at its
receivers: no ``Task`` is built.

| signal | event | arguments besides ``event`` |
|---|---|---|
| ``pre_enqueue`` | ``TaskEnqueued`` (once queued) | ``task``: django-q2's dict of the task |
| ``pre_execute`` | ``TaskStarted`` | ``func``, ``task`` (the dict) |
| ``post_execute`` | ``TaskSucceeded``, ``TaskFailed`` | ``task``: the saved ``Task`` |
| ``post_spawn`` | ``WorkerStarted`` | ``proc_name`` (the worker's consumer id) |
| ``task_retried`` | ``TaskRetried`` | |
| ``task_timed_out`` | ``TaskTimedOut`` | ``task`` |
| ``task_dead_lettered`` | ``TaskDeadLettered`` | ``task`` (None without a record) |
| ``task_replayed`` | ``TaskReplayed`` | |
| ``hook_failed`` | ``HookFailed`` | ``task``, ``error`` |
| ``worker_stopped`` / ``worker_lost`` | ``WorkerStopped`` / ``WorkerLost`` | |
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.dispatch import Signal

from qcore import EventBus, TaskMessage, TaskResult
from qcore.events import (
    Event,
    HookFailed,
    TaskDeadLettered,
    TaskEnqueued,
    TaskFailed,
    TaskReplayed,
    TaskRetried,
    TaskStarted,
    TaskSucceeded,
    TaskTimedOut,
    WorkerLost,
    WorkerStarted,
    WorkerStopped,
)
from qdjango.process import DjangoContext

__all__ = [
    "DjangoSignals",
    "hook_failed",
    "post_execute",
    "post_spawn",
    "pre_enqueue",
    "pre_execute",
    "signal_bus",
    "task_dead_lettered",
    "task_replayed",
    "task_retried",
    "task_timed_out",
    "worker_lost",
    "worker_stopped",
]

SENDER = "qdjango"

# django-q2's names
pre_enqueue = Signal()
pre_execute = Signal()
post_execute = Signal()
post_spawn = Signal()
# Q's own
task_retried = Signal()
task_timed_out = Signal()
task_dead_lettered = Signal()
task_replayed = Signal()
hook_failed = Signal()
worker_stopped = Signal()
worker_lost = Signal()


def task_dict(message: TaskMessage) -> dict[str, Any]:
    """The task as django-q2's signals carry it before it has a row."""
    return {
        "id": message.id,
        "name": message.name,
        "func": message.func,
        "args": message.args,
        "kwargs": message.kwargs,
        "hook": message.hook,
        "group": message.group,
        "started": message.started,
        "options": message.options.to_mapping(),
    }


class DjangoSignals:
    """Sends :mod:`qdjango.signals` from a bus's events. Picklable: a cluster's worker
    processes and its sentinel send them (``context`` sets Django up there if needed)."""

    def __init__(self, *, using: str | None = None, context: DjangoContext | None = None) -> None:
        self.using = using
        self.context = context

    def subscribe(self, bus: EventBus, *, connected_only: bool = False) -> EventBus:
        """Subscribe to every event that has a signal; returns ``bus``.

        ``connected_only``: only to the events whose signal has a receiver now, so that a
        worker does not even build the others (a cluster's bus is fixed when it starts).
        """
        for event_type, (signal, _) in _ROUTES.items():
            if signal.receivers or not connected_only:
                bus.subscribe(event_type, self)
        return bus

    def __call__(self, event: Event) -> None:
        signal, arguments = _ROUTES[type(event)]
        if not signal.receivers:
            return
        if self.context is not None:
            self.context.ensure()
        signal.send(sender=SENDER, event=event, **arguments(self, event))

    def task(self, record: TaskResult | None) -> Any:
        """The ``Task`` a record was saved as (unsaved when it was not), without a query."""
        if record is None:
            return None
        from qdjango.store import task_from_record, was_saved

        using = self.using
        if using is None:
            from django.db import router

            from qdjango.models import Task

            using = router.db_for_write(Task) or "default"
        return task_from_record(record, using=using, saved=was_saved(record.id))

    def __repr__(self) -> str:
        return f"DjangoSignals(using={self.using!r})"


def signal_bus(
    *, using: str | None = None, context: DjangoContext | None = None, connected_only: bool = False
) -> EventBus:
    """A bus whose events are sent as Django's signals (``connected_only``: see
    :meth:`DjangoSignals.subscribe`)."""
    signals = DjangoSignals(using=using, context=context)
    bus = signals.subscribe(EventBus(), connected_only=connected_only)
    if uses_task_backend():
        from qdjango.task_runner import subscribe_finished

        subscribe_finished(bus, using=using)  # django.tasks's task_finished, once saved
    return bus


def uses_task_backend() -> bool:
    """Whether ``settings.TASKS`` has an entry for Q's ``django.tasks`` backend."""
    from django.conf import settings

    entries = getattr(settings, "TASKS", None)
    if not isinstance(entries, dict):
        return False
    return any(
        isinstance(entry, dict) and str(entry.get("BACKEND", "")).startswith("qdjango.")
        for entry in entries.values()
    )


def _nothing(signals: DjangoSignals, event: Any) -> dict[str, Any]:
    return {}


def _with_task(signals: DjangoSignals, event: Any) -> dict[str, Any]:
    return {"task": signals.task(event.record)}


_Arguments = Callable[[DjangoSignals, Any], dict[str, Any]]
_ROUTES: dict[type[Event], tuple[Signal, _Arguments]] = {
    TaskEnqueued: (pre_enqueue, lambda s, e: {"task": task_dict(e.message)}),
    TaskStarted: (
        pre_execute,
        lambda s, e: {"func": e.message.func, "task": task_dict(e.message)},
    ),
    TaskSucceeded: (post_execute, _with_task),
    TaskFailed: (post_execute, _with_task),
    WorkerStarted: (post_spawn, lambda s, e: {"proc_name": e.consumer}),
    TaskRetried: (task_retried, _nothing),
    TaskTimedOut: (task_timed_out, _with_task),
    TaskDeadLettered: (task_dead_lettered, _with_task),
    TaskReplayed: (task_replayed, _nothing),
    HookFailed: (hook_failed, lambda s, e: {"task": s.task(e.record), "error": e.error}),
    WorkerStopped: (worker_stopped, _nothing),
    WorkerLost: (worker_lost, _nothing),
}
