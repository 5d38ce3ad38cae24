"""What happens to a task and to a worker, as typed events on a bus that anyone can subscribe to.

Logging, Django's signals and the metrics to come are subscribers; the code that runs tasks
only emits. A bus is passed along like a transport (a cluster hands it to its workers in their
spec, an enqueue call takes one), never reached through a global, so a test or a second
cluster in the same process has its own.

Emitting costs a dict lookup when nobody listens, and the hot path does not even build the
event then: ``if bus.wants(TaskStarted): bus.emit(TaskStarted(...))``. A subscriber that
raises is logged (``events.subscriber_failed``: its type and frames, never its message, which
could repeat a task's data) and the task goes on. Subscribers run in the process that emits:
a cluster's task events in its worker processes, its supervision events in the sentinel, so
the handlers a cluster's bus holds must be picklable (module-level functions, or instances of
module-level classes).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from qcore.errors import ConfigError
from qcore.log import get_logger
from qcore.message import TaskMessage, TaskResult
from qcore.protocols import Delivery
from qcore.slots import fast_init

__all__ = [
    "Event",
    "EventBus",
    "HookFailed",
    "TaskDeadLettered",
    "TaskEnqueued",
    "TaskEvent",
    "TaskFailed",
    "TaskOutcome",
    "TaskReplayed",
    "TaskRetried",
    "TaskStarted",
    "TaskSucceeded",
    "TaskTimedOut",
    "TasksSettled",
    "WorkerEvent",
    "WorkerLost",
    "WorkerStarted",
    "WorkerStopped",
]

log = get_logger("qcore.events")

E = TypeVar("E", bound="Event")


@dataclass(frozen=True, slots=True)
class Event:
    """Root of every event: subscribe to it to see them all."""


@dataclass(frozen=True, slots=True)
class TaskEvent(Event):
    """Something happened to one task."""

    task_id: str


@fast_init  # built once per task: see qcore.slots
@dataclass(frozen=True, slots=True)
class TaskEnqueued(TaskEvent):
    """A producer handed the task to a transport (it is queued, or delayed until its eta)."""

    message: TaskMessage
    queue: str


@fast_init  # built once per task: see qcore.slots
@dataclass(frozen=True, slots=True)
class TaskStarted(TaskEvent):
    """A worker (or an in-process ``join()``) is about to call the task's function."""

    message: TaskMessage
    attempt: int
    consumer: str | None
    """The worker's consumer id (``join.<id>`` for a task run in-process by ``join()``)."""


@fast_init  # built once per task: see qcore.slots
@dataclass(frozen=True, slots=True)
class TaskSucceeded(TaskEvent):
    """The task returned and its record is saved (or its ``save`` option said not to)."""

    record: TaskResult
    duration: float
    """Seconds the function ran (the record's ``time_taken`` also counts the time queued)."""
    consumer: str | None


@fast_init  # built once per task: see qcore.slots
@dataclass(frozen=True, slots=True)
class TaskFailed(TaskEvent):
    """The task raised, or could not run here, and its Failure record is saved."""

    record: TaskResult
    """``record.result`` is the error text: ``Type: message``, then the traceback."""
    duration: float
    consumer: str | None


@dataclass(frozen=True, slots=True)
class TaskRetried(TaskEvent):
    """The task goes back for another attempt: its worker was lost mid-run, or its run raised
    and it has retries left (then ``error`` is that run's error text and traceback)."""

    name: str
    func: str
    attempt: int
    """The attempt that did not finish."""
    max_attempts: int
    reason: str
    delay: float = 0.0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class TaskTimedOut(TaskEvent):
    """The task ran past its timeout: its worker was killed and its Failure saved (and acked)."""

    record: TaskResult
    """The Failure ``TimeoutError: the task timed out after N s``."""
    timeout: float
    saved: bool
    """False when the store could not take the record: the task then runs again."""
    consumer: str


@dataclass(frozen=True, slots=True)
class TaskDeadLettered(TaskEvent):
    """The task was taken out of circulation, with the reason (its payload is kept)."""

    reason: str
    attempt: int
    record: TaskResult | None
    """The Failure saved for it, if one was (a payload that failed verification gets none)."""
    consumer: str | None


@dataclass(frozen=True, slots=True)
class TaskReplayed(TaskEvent):
    """A delivery of a task that already completed was refused instead of run again."""

    consumer: str | None


@dataclass(frozen=True, slots=True)
class HookFailed(TaskEvent):
    """The task's hook raised. The task stays saved; a hook is never retried."""

    record: TaskResult
    hook: str
    error: Exception


class TaskOutcome(NamedTuple):
    """How one run ended, or what was made of a delivery that was not run: a worker's record
    of it from the end of the run until its batch is saved and acked."""

    message: TaskMessage | None
    """None when the payload could not be read here (``record`` says why)."""
    delivery: Delivery
    record: TaskResult
    """Its ``stopped`` is when the run ended; ``record.stopped - duration`` when it began."""
    save: bool
    """Whether the record is saved (a success whose ``save`` option is off is not)."""
    duration: float
    """Seconds the run took (0 for a delivery that was not run: a cancelled task's twin, a
    payload that could not be read)."""
    retry: float | None = None
    """Seconds until its next attempt: the run raised and the task goes back (its record is
    not saved)."""
    timed_out: float | None = None
    """The timeout (seconds) of a coroutine task its worker's loop cancelled past it."""


@dataclass(frozen=True, slots=True)
class TasksSettled(Event):
    """A worker (or ``join()``) saved the records of a batch and is about to ack it: one
    event for the batch, with the outcome of each task, those going back for a retry
    included (their :class:`TaskRetried` came first).

    The per-task events of the batch (:class:`TaskSucceeded`, :class:`TaskFailed`,
    :class:`TaskTimedOut`) are emitted just before it. A subscriber that only counts is
    cheaper here: a worker builds no per-task event that nobody else listens to.
    """

    outcomes: tuple[TaskOutcome, ...]
    consumer: str | None


@dataclass(frozen=True, slots=True)
class WorkerEvent(Event):
    """Something happened to one worker process."""

    consumer: str
    pid: int | None


@dataclass(frozen=True, slots=True)
class WorkerStarted(WorkerEvent):
    """A worker process is set up and about to fetch (emitted in that process)."""


@dataclass(frozen=True, slots=True)
class WorkerStopped(WorkerEvent):
    """A worker exited on its own, its work saved, acked or released (emitted by its sentinel)."""

    reason: str
    """``stopped``, ``recycle`` or ``max_rss``."""
    processed: int


@dataclass(frozen=True, slots=True)
class WorkerLost(WorkerEvent):
    """A worker died or was killed (emitted by its sentinel, before what it did to the task)."""

    how: str
    """``killed by SIGKILL``, ``exited with code 1``..."""
    reason: str | None
    """Why the sentinel killed it (``timeout``, ``hook_timeout``, ...); None if it did not."""
    task_id: str | None
    """The task it was running, if any."""
    processed: int
    func: str = ""
    """The dotted path of the task it was running ("" without one)."""
    waited: float | None = None
    """Seconds that task had waited in the queue (since it was enqueued, or due) when its run
    began; None without a task."""


Handler = Callable[[Any], object]


class EventBus:
    """Subscribers by event type; :meth:`emit` calls those of the event's type and its bases.

    Picklable with its subscribers (a cluster sends its bus to every worker process).
    """

    __slots__ = ("_routes", "_subscriptions")

    def __init__(self) -> None:
        self._subscriptions: tuple[tuple[type[Event], Handler], ...] = ()
        self._routes: dict[type[Event], tuple[Handler, ...]] = {}

    def subscribe(self, event_type: type[E], handler: Callable[[E], object]) -> None:
        """Call ``handler(event)`` for every event of ``event_type`` or a subclass of it.

        Handlers run in the order they subscribed, in the emitting thread.
        """
        if not (isinstance(event_type, type) and issubclass(event_type, Event)):
            raise ConfigError(
                f"subscribe to a qcore.events.Event subclass (TaskFailed, Event...), "
                f"not {event_type!r}"
            )
        if not callable(handler):
            raise ConfigError(f"a subscriber must be callable, not {handler!r}")
        self._subscriptions += ((event_type, handler),)
        self._routes = {}

    def unsubscribe(self, event_type: type[E], handler: Callable[[E], object]) -> None:
        """Remove one subscription made with the same ``event_type`` and ``handler``."""
        subscriptions = list(self._subscriptions)
        subscriptions.remove((event_type, handler))
        self._subscriptions = tuple(subscriptions)
        self._routes = {}

    def extend(self, other: EventBus) -> None:
        """Subscribe everything ``other`` has, after what this bus has."""
        self._subscriptions += other._subscriptions
        self._routes = {}

    def copy(self) -> EventBus:
        """A bus with the same subscriptions, subscribed to separately from now on."""
        bus = EventBus()
        bus._subscriptions = self._subscriptions
        return bus

    def wants(self, event_type: type[Event]) -> bool:
        """Whether anyone listens to ``event_type``: skip building an event nobody reads."""
        handlers = self._routes.get(event_type)
        if handlers is None:
            handlers = self._route(event_type)
        return bool(handlers)

    def emit(self, event: Event) -> None:
        """Call each subscriber of the event's type; log, and swallow, what they raise."""
        handlers = self._routes.get(type(event))
        if handlers is None:
            handlers = self._route(type(event))
        for handler in handlers:
            try:
                handler(event)
            except Exception as exc:
                log.error(
                    "events.subscriber_failed",
                    event_type=type(event).__name__,
                    subscriber=_name(handler),
                    error=type(exc).__name__,
                    traceback="".join(traceback.format_tb(exc.__traceback__)).rstrip(),
                )

    def __repr__(self) -> str:
        return f"<EventBus with {len(self._subscriptions)} subscription(s)>"

    def __getstate__(self) -> tuple[tuple[type[Event], Handler], ...]:
        return self._subscriptions

    def __setstate__(self, state: tuple[tuple[type[Event], Handler], ...]) -> None:
        self._subscriptions = state
        self._routes = {}

    def _route(self, event_type: type[Event]) -> tuple[Handler, ...]:
        handlers = tuple(h for t, h in self._subscriptions if issubclass(event_type, t))
        # A new dict, assigned at once: a thread emitting meanwhile never sees it half built.
        self._routes = {**self._routes, event_type: handlers}
        return handlers


def _name(handler: Handler) -> str:
    name = getattr(handler, "__qualname__", None) or type(handler).__qualname__
    module = getattr(handler, "__module__", None) or type(handler).__module__
    return f"{module}.{name}"
