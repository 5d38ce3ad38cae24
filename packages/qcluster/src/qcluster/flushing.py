"""The end of a batch's path: retries sent back, records saved, deliveries acked, the outcome
events told, the hooks called.

:class:`Flusher` is what :class:`~qcluster.processing.Processor` hands the finished tasks of
a batch (its :class:`~qcluster.tracking.Done` records). The order is the promise: a record is
saved before its delivery is acked, and a hook is called only for an acked delivery (a refused
ack means the task went to someone else, whose run calls the hook), so a hook runs at most
once, with the saved record. Hooks are called here, beside the bus and not as one of its
subscribers: a hook is the task's own code, which must run after the ack, under the sentinel's
``hook_timeout``, and whose failure is itself an event (:class:`~qcore.events.HookFailed`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from qcluster.execution import unstorable
from qcluster.hookalarm import call_hook
from qcluster.states import WorkerState
from qcluster.tracking import Done, Tracker
from qcluster.workflows import chain_links, gather_iterations, retried_event
from qcore import (
    Backoff,
    Codec,
    EventBus,
    HookRunner,
    PayloadError,
    ResultStore,
    RetryDefaults,
    SerializationError,
    TaskResult,
    Transport,
)
from qcore.events import TaskFailed, TasksSettled, TaskSucceeded, TaskTimedOut
from qcore.options import with_failure

__all__ = ["BACKOFF", "Flusher"]

BACKOFF = Backoff()
"""How a worker retries its I/O (save, ack, retry, dead letter) until it works."""


class Flusher:
    """Saves, acks and hooks the finished tasks of one consumer's batches.

    ``io_attempts``: tries of a save or an ack before its error is raised (None, a worker's
    choice: until it works, with backoff). ``hook_alarm``: seconds a hook may run before
    SIGALRM interrupts it (a worker's main thread only; None: no alarm, as in ``join()``).
    """

    def __init__(
        self,
        *,
        transport: Transport,
        store: ResultStore,
        codec: Codec,
        consumer: str,
        events: EventBus,
        tracker: Tracker,
        retry_defaults: RetryDefaults,
        log: Any,
        hook_runner: HookRunner | None = None,
        io_attempts: int | None = None,
        hook_alarm: float | None = None,
    ) -> None:
        self.transport = transport
        self.store = store
        self.codec = codec
        self.consumer = consumer
        self.events = events
        self.tracker = tracker
        self.retry_defaults = retry_defaults
        self.log = log
        self.hook_runner = hook_runner
        self.io_attempts = io_attempts
        self.hook_alarm = hook_alarm
        self.owed_hooks: list[Done] = []
        """Acked tasks whose hooks wait for :meth:`call_hooks` (the end of the batch)."""
        # Looked up once: with nobody listening, a flush never builds these events.
        self._on_succeeded = events.wants(TaskSucceeded)
        self._on_failed = events.wants(TaskFailed)
        self._on_settled = events.wants(TasksSettled)

    def flush(
        self,
        pending: list[Done],
        *,
        retrying: bool = False,
        workflows: bool = False,
        awaited: bool = False,
        hooks: bool = True,
    ) -> None:
        """Save, then ack, then call the hooks of what was acked (``hooks=False``: owe them
        until :meth:`call_hooks`, at the end of the batch).

        ``retrying``: some of ``pending`` go back for another attempt; ``workflows``: some
        are a chain's link or an iteration's call; ``awaited``: some are coroutine tasks (one
        may have timed out in the worker's loop).
        """
        retried: list[Done] = []
        if retrying:
            self.tracker.set_state(WorkerState.SAVING)
            retried = [done for done in pending if done.retry is not None]
            self._send_retries(retried)
            pending = [done for done in pending if done.retry is None]
        if not pending:
            if retried and self._on_settled:
                self.events.emit(TasksSettled(tuple(retried), self.consumer))
            return
        self.tracker.set_state(WorkerState.SAVING)
        if any(done.save for done in pending):
            BACKOFF.call(
                lambda: self._save(pending),
                on_error=self.logger("save"),
                attempts=self.io_attempts,
            )
        if workflows:
            BACKOFF.call(
                lambda: self._gather(pending),
                on_error=self.logger("save"),
                attempts=self.io_attempts,
            )
            ack = functools.partial(self._ack_links, pending)
        else:
            ack = functools.partial(self.transport.ack, [done.delivery for done in pending])
        self._emit_outcomes(pending, awaited)
        if self._on_settled:
            self.events.emit(TasksSettled((*pending, *retried), self.consumer))
        acked = BACKOFF.call(ack, on_error=self.logger("ack"), attempts=self.io_attempts)
        for done, ok in zip(pending, acked or ()):
            if not ok:
                # Redelivered to someone else meanwhile (we were presumed dead): their run
                # upserts the same record and calls the hook; ours stays saved, unhooked.
                self.log.warning("task.ack_refused", task_id=done.delivery.task_id)
            elif done.message is not None and done.message.hook is not None:
                self.owed_hooks.append(done)
        if hooks:
            self.call_hooks()

    def call_hooks(self) -> None:
        """Call the hooks owed for acked deliveries, each under the alarm when one is set."""
        while self.owed_hooks:
            done = self.owed_hooks.pop(0)
            assert done.message is not None
            self.tracker.set_state(WorkerState.HOOK)
            call_hook(
                done.message,
                done.record,
                self.hook_runner,
                events=self.events,
                timeout=self.hook_alarm,
            )

    def logger(self, what: str) -> Callable[[Exception, int], None]:
        """The ``on_error`` of a backoff loop doing ``what`` (save, ack...): logs each failure."""

        def logged(exc: Exception, failures: int) -> None:
            self.log.error(f"worker.{what}_failed", error=str(exc), failures=failures)

        return logged

    def _send_retries(self, retrying: list[Done]) -> None:
        """Put each task back in the delayed set as its next attempt: the message with its runs
        so far, replacing the payload in the step that takes the delivery back (token-checked)."""
        for done in retrying:
            message, delivery, delay = done.message, done.delivery, done.retry
            assert message is not None and delay is not None
            run = (message.options.attempts or 0) + 1
            error = str(done.record.result)
            failures = with_failure(message.options, error)
            payload = self.codec.encode_message(
                message.with_options(attempts=run, failures=failures)
            )
            ok = BACKOFF.call(
                functools.partial(self.transport.retry_later, delivery, delay, payload),
                on_error=self.logger("retry"),
                attempts=self.io_attempts,
            )
            if not ok:
                self.log.warning("task.ack_refused", task_id=delivery.task_id)
                continue
            self.events.emit(retried_event(message, run, delay, error, self.retry_defaults))

    def _gather(self, pending: list[Done]) -> None:
        finished = [(done.message, done.record) for done in pending]
        gather_iterations(self.transport, self.codec, self.store, finished)

    def _ack_links(self, pending: list[Done]) -> list[bool]:
        """One ack for a batch holding workflow tasks; one holding links of a chain is acked
        by the step that also queues each link's successor (see qcore.chains)."""
        deliveries = [done.delivery for done in pending]
        links = chain_links([done.message for done in pending], [done.record for done in pending])
        if links is None:
            return self.transport.ack(deliveries)
        return self.transport.ack_links(deliveries, links)

    def _emit_outcomes(self, pending: list[Done], awaited: bool) -> None:
        if not (self._on_succeeded or self._on_failed or awaited):
            return
        emit, consumer = self.events.emit, self.consumer
        for done in pending:
            record = done.record
            if done.timed_out is not None:
                emit(TaskTimedOut(record.id, record, done.timed_out, True, consumer))
            elif record.success:
                if self._on_succeeded:
                    emit(TaskSucceeded(record.id, record, done.duration, consumer))
            elif self._on_failed:
                emit(TaskFailed(record.id, record, done.duration, consumer))

    def _save(self, pending: list[Done]) -> None:
        """Save the batch's records; one that can never be stored is replaced by a Failure.

        A record the store refuses for what it holds (a result over the payload size limit,
        say) is not an outage: retrying it would wedge the worker. Store errors are retried
        by the caller: unsaved work is never acked. A stop does not interrupt that: the
        sentinel's grace period bounds it, and a worker killed then leaves its tasks in
        flight for redelivery (saving is an upsert).
        """
        saved = [done for done in pending if done.save]
        # Fenced by each delivery's token: a late save of ours, if another worker has run the
        # task again since (we were presumed dead), cannot replace its record.
        fences = [done.delivery.token for done in saved]
        try:
            self.store.save_many([done.record for done in saved], fences=fences)
            return
        except (PayloadError, SerializationError):
            pass
        for index, done in enumerate(pending):
            if done.save:
                record = self._save_one(done.record, done.delivery.token)
                pending[index] = done._replace(record=record)

    def _save_one(self, record: TaskResult, fence: int) -> TaskResult:
        """Save one record, or the Failure that replaces it if it cannot be stored."""
        try:
            self.store.save_many([record], fences=[fence])
            return record
        except (PayloadError, SerializationError) as exc:
            error: Exception = exc
        self.log.error(
            "task.unstorable",
            task_id=record.id,
            name=record.name,
            func=record.func,
            error=type(error).__name__,
        )
        failure = unstorable(record, error)
        try:
            self.store.save_many([failure], fences=[fence])
            return failure
        except (PayloadError, SerializationError):
            failure = unstorable(record, error, keep_args=False)  # the args are what is too big
        self.store.save_many([failure], fences=[fence])
        return failure
