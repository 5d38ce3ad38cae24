"""From fetched deliveries to finished tasks: decode, execute, then hand them to the flush.

The one code path a task takes after the transport handed it out, run by every worker process
and by :func:`qcluster.join` in the caller's own process. What comes after a task ran (retries,
save, ack, events, hooks, in that order) is :mod:`qcluster.flushing`.

The hooks of a batch are called once the whole batch ran (a slow hook never holds the tasks
its worker prefetched behind it), and in a worker each runs under an alarm of
``hook_timeout`` seconds: a hook past it is interrupted (``HookFailed`` with a
``TimeoutError``) and the batch's other hooks still run. The sentinel's kill stays as the
backstop, a little later, for a hook stuck where the alarm cannot reach it (C code).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from qcluster.awaits import Awaits
from qcluster.config import ClusterConfig
from qcluster.eventloop import Settled, TaskLoop
from qcluster.execution import Awaiting, call, failure, settle, should_save, task_timeout
from qcluster.flushing import BACKOFF, Flusher
from qcluster.hookalarm import call_hook
from qcluster.tracking import Done, InFlight, NoTracker, Tracker
from qcluster.workflows import in_workflow, retry_delay_for
from qcore import (
    Codec,
    Delivery,
    EventBus,
    HookRunner,
    PayloadError,
    ResultStore,
    TaskMessage,
    TaskResult,
    Transport,
    UndecodablePayload,
    get_logger,
)
from qcore.cancelling import cancelled_error
from qcore.events import TaskDeadLettered, TaskReplayed, TaskStarted

__all__ = ["FLUSH_AFTER", "Done", "NoTracker", "Processor", "Tracker", "call_hook"]

log = get_logger("qcluster.worker")

FLUSH_AFTER = 0.005
"""Finished results older than this are saved before the next task starts."""
REFILL_TICK = 0.05
"""Seconds a worker awaiting coroutines, with room for more, waits before it looks again."""


class Processor:
    """Runs batches of deliveries for one consumer.

    ``errors``, when given, collects what the tasks raised (``join()`` re-raises it).
    ``io_attempts``: tries of a save or an ack before its error is raised (None, a worker's
    choice: until it works, with backoff). Set :attr:`stopping` to leave the rest of a batch
    unstarted (it is released, uncounted).
    """

    def __init__(
        self,
        *,
        transport: Transport,
        store: ResultStore,
        codec: Codec,
        config: ClusterConfig,
        cluster_id: str | None,
        consumer: str,
        events: EventBus,
        hook_runner: HookRunner | None = None,
        tracker: Tracker | None = None,
        errors: list[BaseException] | None = None,
        io_attempts: int | None = None,
        hook_alarm: float | None = None,
    ) -> None:
        self.transport = transport
        self.codec = codec
        self.config = config
        self.cluster_id = cluster_id
        self.consumer = consumer
        self.events = events
        self.tracker: Tracker = tracker if tracker is not None else NoTracker()
        self.errors = errors
        self.stopping = False
        self.processed = 0
        self.log = log.bind(consumer=consumer)
        # Looked up once: with nobody listening, the hot path never builds these events.
        self._on_started = events.wants(TaskStarted)
        self._retry_defaults = config.retry_defaults()
        self.flusher = Flusher(
            transport=transport,
            store=store,
            codec=codec,
            consumer=consumer,
            events=events,
            tracker=self.tracker,
            retry_defaults=self._retry_defaults,
            log=self.log,
            hook_runner=hook_runner,
            io_attempts=io_attempts,
            hook_alarm=hook_alarm,
        )
        """Saves, acks and hooks what ran (``hook_alarm``: seconds a hook may run before
        SIGALRM interrupts it, a worker's main thread only; None: no alarm, as in ``join()``)."""
        self._raised: list[BaseException] = []
        self._retrying = 0
        # Tasks run and not yet flushed that are a chain's link or an iteration's call, told
        # once per task from its options: a flush looks for them only when there are some.
        self._workflows = 0
        self.loop = TaskLoop()
        """Where coroutine tasks are awaited (its asyncio loop is made on the first one)."""
        self.concurrency = config.async_concurrency
        self.awaited = 0
        """Coroutine tasks run in the last batch (a worker sizes its next fetch by it)."""
        self.awaits = Awaits(self.loop, self.tracker, self.concurrency)

    def close(self) -> None:
        """Close the event loop (a worker leaving, the end of ``join()``)."""
        self.loop.close()

    def run(
        self,
        deliveries: Iterable[Delivery],
        refill: Callable[[int], list[Delivery]] | None = None,
    ) -> int:
        """Run, save, ack and hook a batch; returns how many tasks ran.

        With ``async_concurrency`` > 1 the coroutine tasks of the batch are awaited up to that
        many at once, and the batch ends when the last has ended; ``refill(n)`` gives up to
        ``n`` more deliveries (fetched without waiting) while there is room beside them.
        """
        pending: list[Done] = []
        oldest = 0.0
        ran = 0
        concurrent = self.concurrency > 1
        self.awaited = 0
        try:
            for delivery in deliveries:
                if self.stopping:
                    break  # the rest never started: released, uncounted, when the worker leaves
                if pending and time.perf_counter() - oldest > FLUSH_AFTER:
                    self.flush(pending, hooks=False)
                    pending = []
                done = self.run_one(delivery)
                if done is not None:
                    if not pending:
                        oldest = time.perf_counter()
                    pending.append(done)
                    ran += 1
                if concurrent and self.awaits:
                    if not self.awaits.room:
                        ran += self._await_some(pending, None)
                    elif done is not None:
                        self.awaits.watch()  # a sync task ran in between: show them again
            if concurrent and self.awaits:
                ran += self._await_rest(pending, refill)
            self.flush(pending, hooks=False)
        finally:
            self.call_hooks()
        return ran

    # -- one task ---------------------------------------------------------------------------

    def run_one(self, delivery: Delivery) -> Done | None:
        """Verify and run one delivery; None when it was dead-lettered instead."""
        try:
            message = self.codec.decode_message(delivery.payload)
        except UndecodablePayload as exc:
            record = TaskResult.failure_without_message(
                delivery.task_id,
                f"UndecodablePayload: {exc}",
                attempt_count=delivery.attempt,
                cluster=self.cluster_id,
            )
            self.tracker.end(False)  # counted in the status like any failure
            self.processed += 1
            return Done(None, delivery, record, True, 0.0)
        except PayloadError as exc:
            self._dead_letter(delivery, f"{type(exc).__name__}: {exc}")
            return None
        if message.id != delivery.task_id:
            self._dead_letter(
                delivery,
                f"CopiedPayload: the payload stored under {delivery.task_id} is task "
                f"{message.id}: "
                "a signed payload was copied under another id",
            )
            return None
        options = message.options
        if options.chain is not None or options.iter is not None:
            self._workflows += 1
        if options.cancelled is not None:
            return self._cancelled(message, delivery)
        return self._execute(message, delivery)

    def _cancelled(self, message: TaskMessage, delivery: Delivery, how: str | None = None) -> Done:
        """A cancelled task's twin (never run), or (``how="awaited"``) a coroutine task
        cancelled in the loop at its termination: its Failure, saved, acked and hooked."""
        attempt = (message.options.attempts or 0) + delivery.attempt
        record = failure(
            message, cancelled_error(message, how), attempt=attempt, cluster=self.cluster_id
        )
        self.tracker.end(False)
        self.processed += 1
        return Done(message, delivery, record, True, 0.0)

    def _execute(self, message: TaskMessage, delivery: Delivery) -> Done | None:
        timeout = task_timeout(message, self.config.timeout)
        options = message.options
        # message.due written out: once per task (tools/bench/README.md, "Metrics on").
        due = message.started
        eta = options.eta
        if eta is not None and eta > due:
            due = eta
        self.tracker.begin(
            message.id,
            message.name,
            message.func_path,
            attempt=delivery.attempt,
            max_attempts=delivery.max_attempts,
            token=delivery.token,
            timeout=timeout,
            due=due,
        )
        if self._on_started:
            self.events.emit(TaskStarted(message.id, message, delivery.attempt, self.consumer))
        begun = time.perf_counter()
        attempt = (options.attempts or 0) + delivery.attempt
        raised = self._raised
        outcome = call(message, attempt=attempt, cluster=self.cluster_id, errors=raised)
        if isinstance(outcome, Awaiting):
            if self.concurrency > 1:
                self.awaits.start(message, delivery, outcome, attempt, timeout)
                self.awaited += 1
                return None
            settled = self.loop.run(outcome.awaitable)
            outcome = settle(
                message, outcome, settled, attempt=attempt, cluster=self.cluster_id, errors=raised
            )
        record = outcome
        return self._ended(message, delivery, record, time.perf_counter() - begun)

    def _ended(
        self, message: TaskMessage, delivery: Delivery, record: TaskResult, duration: float
    ) -> Done:
        """The Done of a task that ran (its error, if any, in ``self._raised``)."""
        self.tracker.end(record.success, record.run_time)
        self.processed += 1
        raised = self._raised
        if raised:
            exc = raised.pop()
            raised.clear()
            prior = message.options.attempts or 0
            delay = retry_delay_for(message, exc, prior + 1, self._retry_defaults)
            if delay is not None:
                self._retrying += 1
                return Done(message, delivery, record, False, duration, delay)
            if self.errors is not None:
                self.errors.append(exc)
        save = should_save(message, record, self.config.save)
        return Done(message, delivery, record, save, duration)

    # -- coroutine tasks awaited side by side (async_concurrency > 1) -----------------------

    def _await_some(self, pending: list[Done], wait: float | None) -> int:
        """Run the loop until some coroutine tasks ended (or ``wait`` seconds passed), then
        save and ack what ended with the rest of ``pending``; how many ended."""
        ended = self.awaits.wait(wait)
        for entry, settled, terminated in ended:
            if terminated:  # its termination was asked: it ends as a cancelled task does
                pending.append(self._cancelled(entry.message, entry.delivery, "awaited"))
            else:
                pending.append(self._settled(entry, settled))
        if pending:
            self.flush(pending, hooks=False)
            pending.clear()
        self.awaits.watch()
        return len(ended)

    def _await_rest(
        self, pending: list[Done], refill: Callable[[int], list[Delivery]] | None
    ) -> int:
        """Await the batch's coroutine tasks to the last, starting more from ``refill`` while
        there is room; the hooks of what ended are called as it goes."""
        ran = 0
        awaits = self.awaits
        while awaits:
            if awaits.room and refill is not None and not self.stopping:
                for delivery in refill(awaits.room):
                    done = self.run_one(delivery)
                    if done is not None:
                        pending.append(done)
                        ran += 1
                if not awaits:
                    break
            tick = REFILL_TICK if awaits.room and refill is not None and not self.stopping else None
            ran += self._await_some(pending, tick)
            if self.flusher.owed_hooks:
                self.call_hooks()
                awaits.watch()
        return ran

    def _settled(self, entry: InFlight, settled: Settled) -> Done:
        message = entry.message
        record = settle(
            message,
            entry.awaiting,
            settled,
            attempt=entry.attempt,
            cluster=self.cluster_id,
            errors=self._raised,
            timeout=entry.timeout,
        )
        duration = settled.ended - entry.awaiting.begun
        if settled.timed_out:
            # Like a timeout the sentinel enforces: saved, never retried.
            self.tracker.end(False)
            self.processed += 1
            return Done(message, entry.delivery, record, True, duration, None, entry.timeout)
        return self._ended(message, entry.delivery, record, duration)

    def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        """A payload we must not trust: never unpickled, out of circulation."""
        try:
            BACKOFF.call(
                lambda: self.transport.dead_letter(delivery, reason),
                on_error=self.flusher.logger("dead_letter"),
                stop=lambda: self.stopping,
            )
        except Exception:
            return  # stopping: still in flight, released and seen again by the next consumer
        event = TaskDeadLettered(delivery.task_id, reason, delivery.attempt, None, self.consumer)
        self.events.emit(event)

    def replays_refused(self, task_ids: Iterable[str]) -> None:
        """Report the copies of completed tasks the fetch refused (already dead-lettered as
        ``replayed`` by the transport): one :class:`~qcore.events.TaskReplayed` each, which the
        task log logs and the metrics count."""
        for task_id in task_ids:
            self.events.emit(TaskReplayed(task_id, self.consumer))

    # -- the batch's end: see qcluster.flushing ----------------------------------------------

    def flush(self, pending: list[Done], *, hooks: bool = True) -> None:
        """Save, then ack, then call the hooks of what was acked (``hooks=False``: owe them
        until :meth:`call_hooks`, at the end of the batch)."""
        workflows = 0
        if self._workflows:
            workflows = sum(1 for done in pending if in_workflow(done.message))
            self._workflows = max(0, self._workflows - workflows)
        retrying = self._retrying > 0
        self._retrying = 0
        self.flusher.flush(
            pending,
            retrying=retrying,
            workflows=workflows > 0,
            awaited=self.awaited > 0,
            hooks=hooks,
        )

    def call_hooks(self) -> None:
        """Call the hooks owed for acked deliveries, each under the alarm when one is set."""
        self.flusher.call_hooks()
