"""The log of a task's life, written from its events: logging is a subscriber of the bus.

What it logs, and the promise it keeps (``docs/guarantees.md``, "Logs"): task arguments,
results and the text of a task's or hook's error only with ``log_args``; otherwise an error
is logged as its exception's type (its message often repeats an argument) and, for a hook, the
frames of its traceback. ``task.started`` and ``task.finished`` are debug events: below the
debug level they are not even subscribed, so a worker does not build their events.
"""

from __future__ import annotations

import traceback
from typing import Any

from qcluster.config import ClusterConfig
from qcluster.execution import format_error, summary
from qcore import EventBus, get_logger, mask_mapping
from qcore.events import (
    HookFailed,
    TaskDeadLettered,
    TaskFailed,
    TaskReplayed,
    TaskRetried,
    TaskStarted,
    TaskSucceeded,
    TaskTimedOut,
)

__all__ = ["TaskLog", "cluster_events", "error_fields"]

log = get_logger("qcluster.tasks")


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


def cluster_events(config: ClusterConfig, events: EventBus | None = None) -> EventBus:
    """The bus a cluster (or ``join()``) runs with: its task log first, then ``events``'
    subscribers. The log follows ``config``'s ``log_level`` and ``log_args``."""
    debug = config.log_level.lower() == "debug"
    task_log = TaskLog(log_args=config.log_args, debug=debug, secret_names=config.secret_names)
    bus = task_log.subscribe(EventBus())
    if events is not None:
        bus.extend(events)
    return bus


class TaskLog:
    """Subscribes the task log to a bus. Picklable: a cluster's workers log through it."""

    def __init__(
        self, *, log_args: bool = False, debug: bool = False, secret_names: tuple[str, ...] = ()
    ) -> None:
        self.log_args = log_args
        self.debug = debug
        self.secret_names = secret_names

    def subscribe(self, bus: EventBus) -> EventBus:
        """Subscribe to ``bus`` (the debug events only when ``debug``); returns ``bus``."""
        if self.debug:
            bus.subscribe(TaskStarted, self.started)
            bus.subscribe(TaskSucceeded, self.succeeded)
        bus.subscribe(TaskFailed, self.failed)
        bus.subscribe(TaskTimedOut, self.timed_out)
        bus.subscribe(TaskRetried, self.retried)
        bus.subscribe(TaskDeadLettered, self.dead_lettered)
        bus.subscribe(TaskReplayed, self.replayed)
        bus.subscribe(HookFailed, self.hook_failed)
        return bus

    def started(self, event: TaskStarted) -> None:
        message = event.message
        log.debug(
            "task.started",
            task_id=event.task_id,
            name=message.name,
            func=message.func_path,
            attempt=event.attempt,
            consumer=event.consumer,
        )

    def succeeded(self, event: TaskSucceeded) -> None:
        record = event.record
        fields: dict[str, Any] = {}
        if self.log_args:
            # Masked here too: a site may render Q's events with a structlog of its own.
            kwargs = mask_mapping(record.kwargs, self.secret_names)
            fields = {"args": record.args, "kwargs": kwargs, "result": record.result}
        log.debug(
            "task.finished",
            task_id=event.task_id,
            name=record.name,
            func=record.func,
            attempt=record.attempt_count,
            duration=round(event.duration, 6),
            consumer=event.consumer,
            **fields,
        )

    def failed(self, event: TaskFailed) -> None:
        record = event.record
        log.warning(
            "task.failed",
            task_id=event.task_id,
            name=record.name,
            func=record.func,
            attempt=record.attempt_count,
            duration=round(event.duration, 6),
            consumer=event.consumer,
            **error_fields(str(record.result), log_args=self.log_args),
        )

    def timed_out(self, event: TaskTimedOut) -> None:
        record = event.record
        log.warning(
            "task.timed_out",
            task_id=event.task_id,
            name=record.name,
            func=record.func,
            attempt=record.attempt_count,
            timeout=event.timeout,
            saved=event.saved,
            consumer=event.consumer,
        )

    def retried(self, event: TaskRetried) -> None:
        log.warning(
            "task.requeued",
            task_id=event.task_id,
            name=event.name,
            func=event.func,
            attempt=event.attempt,
            max_attempts=event.max_attempts,
            reason=event.reason,
            delay=event.delay,
            **({} if event.error is None else error_fields(event.error, log_args=self.log_args)),
        )

    def dead_lettered(self, event: TaskDeadLettered) -> None:
        record = event.record
        log.error(
            "task.dead_lettered",
            task_id=event.task_id,
            name=record.name if record else None,
            func=record.func if record else None,
            attempt=event.attempt,
            reason=event.reason,
            consumer=event.consumer,
        )

    def replayed(self, event: TaskReplayed) -> None:
        log.warning("task.replayed", task_id=event.task_id, consumer=event.consumer)

    def hook_failed(self, event: HookFailed) -> None:
        record, exc = event.record, event.error
        log.error(
            "hook.failed",
            task_id=event.task_id,
            name=record.name,
            func=record.func,
            hook=event.hook,
            error=summary(exc) if self.log_args else type(exc).__name__,
            traceback=format_error(exc) if self.log_args else _frames(exc),
        )


def _frames(exc: BaseException) -> str:
    """Where ``exc`` was raised: the stack of source lines, without the exception's text."""
    return "".join(traceback.format_tb(exc.__traceback__)).rstrip()
