"""The seams between Q's packages: a transport, a result store, a status board, a hook runner.

The cluster depends on these protocols, never on Redis or Django. Every implementation must be
picklable: a cluster passes them to its worker processes, which reopen their own connections
from parameters (under ``fork``, ``forkserver`` and ``spawn`` alike). What a transport hands
out is in :mod:`qcore.deliveries`, what some implementations can do beyond these protocols in
:mod:`qcore.capabilities`; both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from qcore.capabilities import Owners, Preflight, QueueSource, ShardSource
from qcore.deliveries import DeadLetter, Delivery, InFlight, Reaped
from qcore.message import TaskResult

if TYPE_CHECKING:
    from qcore.chains import ChainState

__all__ = [
    "AsyncTransport",
    "DeadLetter",
    "Delivery",
    "HookRunner",
    "InFlight",
    "Owners",
    "Preflight",
    "QueueSource",
    "Reaped",
    "ResultStore",
    "ShardSource",
    "StatusBoard",
    "Transport",
]


@runtime_checkable
class Transport(Protocol):
    """A reliable queue: at-least-once delivery with acks, redelivery and dead letters."""

    @property
    def queue(self) -> str:
        """The queue's name."""
        ...

    def enqueue(
        self,
        task_id: str,
        payload: bytes,
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> None:
        """Store ``payload`` under ``task_id`` and queue it, or schedule it ``delay`` s ahead.

        ``priority`` (-100 to 100): a higher level is served first, FIFO within a level; the
        task keeps it when delayed, retried or requeued. Idempotent per ``task_id``:
        enqueueing an id already present changes nothing, so a client may retry after a
        dropped connection. Raises a connection error, never drops.
        """
        ...

    def enqueue_many(
        self,
        items: Iterable[tuple[str, bytes]],
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> int:
        """Enqueue ``(task_id, payload)`` pairs in chunks, each chunk all-or-nothing."""
        ...

    def enqueue_absent(
        self,
        items: Iterable[tuple[str, bytes]],
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> list[bool]:
        """Enqueue each pair whose id is not queued, delayed, in flight or dead-lettered, nor
        completed within the replay window (an idempotent bulk: the same batch sent again
        queues nothing twice); True per task queued, False per task skipped."""
        ...

    def fetch(
        self,
        consumer: str,
        count: int = 1,
        timeout: float = 0.0,
        *,
        replayed: list[str] | None = None,
    ) -> list[Delivery]:
        """Move up to ``count`` ready tasks into ``consumer``'s in-flight list, atomically.

        Blocks up to ``timeout`` seconds for the first task (0: return at once). Each task's
        attempt count and fencing token are bumped. The highest priority first; within a
        priority, tasks given back and delayed tasks whose time came (oldest due first) before
        the tasks queued, which come in their order.

        A task acked within the transport's replay window is never delivered again: a copy of
        it that was queued (a replay) is dead-lettered with the reason ``"replayed"`` and its
        id appended to ``replayed``, for the caller to report.
        """
        ...

    def ack(self, deliveries: Iterable[Delivery]) -> list[bool]:
        """Forget finished tasks (after their results are saved). False where a token is stale."""
        ...

    def retry_later(self, delivery: Delivery, delay: float, payload: bytes | None = None) -> bool:
        """Put an in-flight task back, to be delivered again after ``delay`` seconds.

        With ``payload`` (the task's next attempt, carrying its runs so far) the stored
        payload is replaced and the delivery count starts again, in the same atomic step.
        False, and nothing changes, when the token is stale.
        """
        ...

    def dead_letter(self, delivery: Delivery, reason: str) -> bool:
        """Take an in-flight task out of circulation, keeping its payload and the reason."""
        ...

    def release(
        self, consumer: str, *, started: Collection[str] = (), reason: str | None = None
    ) -> Reaped:
        """Return all of ``consumer``'s in-flight tasks to the head of the queue, now.

        For a consumer that stopped or died under our eyes. Tasks in ``started`` were running
        and keep their attempt count (dead-lettered if it reached ``max_attempts``, with
        ``reason`` or a default naming the lost worker); the others never ran and have this
        delivery uncounted.
        """
        ...

    def unrecorded(self, limit: int = 100) -> list[DeadLetter]:
        """Dead letters made by :meth:`release` or :meth:`reap` (out of attempts) whose Failure
        record is not saved yet, oldest first: a cluster saves each, then calls
        :meth:`recorded`, so no task is dead-lettered without its record for good."""
        ...

    def recorded(self, task_ids: Iterable[str]) -> None:
        """The Failure records of these dead letters are saved: no longer owed."""
        ...

    def heartbeat(self, consumers: Iterable[str], ttl: float) -> None:
        """Declare ``consumers`` alive for ``ttl`` more seconds."""
        ...

    def forget(self, consumers: Iterable[str]) -> None:
        """Deregister consumers that have released their work and stopped."""
        ...

    def reap(self) -> Reaped:
        """Requeue the in-flight tasks of consumers whose heartbeat expired (one reaper at a
        time, under a lock), and move due delayed tasks to the queue."""
        ...

    def queue_size(self) -> int:
        """Tasks ready to run."""
        ...

    def inflight_size(self) -> int:
        """Tasks handed to consumers and not acked."""
        ...

    def delayed_size(self) -> int:
        """Tasks waiting for their time (eta or retry delay)."""
        ...

    def inflight(self, limit: int = 100) -> list[InFlight]:
        """Some in-flight tasks, for status pages."""
        ...

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The most recent dead letters first."""
        ...

    def dead_size(self) -> int:
        """How many tasks are dead-lettered."""
        ...

    def dead_reasons(self, limit: int = 1000) -> dict[str, int]:
        """The newest ``limit`` dead letters counted by the kind of their reason
        (:func:`qcore.reason_kind`), the most frequent first."""
        ...

    def requeue_dead(self, task_ids: Iterable[str] | None = None) -> int:
        """Queue dead letters again with a fresh attempt count (all of them when None)."""
        ...

    def purge_dead(self, task_ids: Iterable[str] | None = None) -> int:
        """Delete dead letters for good (all of them when None)."""
        ...

    def cancel(
        self, task_id: str, twin: Callable[[bytes], bytes], *, terminate: bool = False
    ) -> str:
        """Cancel a task: ``"queued"`` / ``"delayed"`` when it had not run (its payload is
        swapped for ``twin(payload)``, the cancelled twin, due at once, in one atomic step);
        ``"terminating"`` when a worker holds it and ``terminate`` is true (its cluster's
        sentinel kills that worker). Raises ``TaskRunning`` for a held task without
        ``terminate``, ``UnknownTask`` when it is not queued, delayed or held."""
        ...

    def terminations(self, task_ids: Collection[str]) -> set[str]:
        """Which of ``task_ids`` (held by a cluster's workers) are to be terminated."""
        ...

    def start_chain(
        self,
        chain_id: str,
        items: Sequence[tuple[str, bytes, int | None]],
        *,
        stop_on_failure: bool = True,
        priorities: Sequence[int] | None = None,
    ) -> bool:
        """Store a chain's links ``(task_id, payload, max_attempts)`` and queue the first, in
        one atomic step, each link at its priority (``priorities``, one per link, given only
        when one is not 0); False (nothing changes) when a chain of that id exists."""
        ...

    def ack_links(
        self, deliveries: Iterable[Delivery], links: Sequence[tuple[str, int, bool] | None]
    ) -> list[bool]:
        """:meth:`ack`; for each acked delivery that is a chain's link ``(chain id, index,
        succeeded)``, queue the chain's next link (or stop it at a failure, when it stops on
        failures) in the same atomic step."""
        ...

    def iter_put(self, iter_id: str, index: int, payload: bytes, size: int) -> list[bytes]:
        """Keep call ``index``'s signed record in iteration ``iter_id``'s store (one write per
        index); every record once all ``size`` are there, else ``[]``."""
        ...

    def enqueue_unique(
        self,
        task_id: str,
        payload: bytes,
        *,
        lock: str,
        ttl: float,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> str:
        """:meth:`enqueue` (at ``priority``, given only when not 0) unless a live task
        (queued, delayed or in flight) holds ``lock``;
        returns the id of the task that holds it (``task_id`` when this one was queued). The
        lock lasts ``ttl`` seconds at the most."""
        ...

    def chain_state(self, chain_id: str) -> ChainState | None:
        """Where a chain is (links, finished, state), or None."""
        ...

    def trim_dead(self, max_age: float, keep: int) -> int:
        """Delete the dead letters older than ``max_age`` seconds, then the oldest beyond the
        newest ``keep``; returns how many went. Clusters call it, so dead letters stay bounded."""
        ...

    def ping(self) -> bool:
        """True when the backend answers."""
        ...

    def close(self) -> None:
        """Release connections this object opened (not ones the caller passed in)."""
        ...


@runtime_checkable
class AsyncTransport(Protocol):
    """What an asyncio producer sends through (``qredis.aio``): the producing half of a
    transport, awaited."""

    @property
    def queue(self) -> str:
        """The queue's name."""
        ...

    async def enqueue(
        self,
        task_id: str,
        payload: bytes,
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> None:
        """As :meth:`Transport.enqueue`."""
        ...

    async def enqueue_many(
        self,
        items: Iterable[tuple[str, bytes]],
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> int:
        """As :meth:`Transport.enqueue_many`."""
        ...

    async def enqueue_absent(
        self,
        items: Iterable[tuple[str, bytes]],
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> list[bool]:
        """As :meth:`Transport.enqueue_absent`: safe to send again after an error."""
        ...

    async def enqueue_unique(
        self,
        task_id: str,
        payload: bytes,
        *,
        lock: str,
        ttl: float,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> str:
        """As :meth:`Transport.enqueue_unique`."""
        ...

    async def start_chain(
        self,
        chain_id: str,
        items: Sequence[tuple[str, bytes, int | None]],
        *,
        stop_on_failure: bool = True,
        priorities: Sequence[int] | None = None,
    ) -> bool:
        """As :meth:`Transport.start_chain`."""
        ...

    async def cancel(
        self, task_id: str, twin: Callable[[bytes], bytes], *, terminate: bool = False
    ) -> str:
        """As :meth:`Transport.cancel`."""
        ...


@runtime_checkable
class ResultStore(Protocol):
    """Where task records are saved and read back."""

    def save_many(
        self, results: Sequence[TaskResult], *, fences: Sequence[int] | None = None
    ) -> None:
        """Upsert records by task id, all in one round trip or transaction.

        Saving the same record twice leaves one record (redelivery never duplicates).
        ``fences``: per record, the fencing token of the delivery that ran it (0: none); a
        record never replaces one saved with a higher fence, so the late save of a superseded
        delivery cannot overwrite the newer delivery's record. Then, once a task has a
        successful record, a later failure for the same id does not replace it.
        """
        ...

    def get(self, task_id: str) -> TaskResult | None:
        """The record for an id or a humanized name (the most recent for a name), or None."""
        ...

    def close(self) -> None:
        """Release connections this object opened."""
        ...


@runtime_checkable
class StatusBoard(Protocol):
    """Where clusters publish their status for ``info`` and ``monitor``."""

    def publish(self, cluster_id: str, status: Mapping[str, Any], ttl: float) -> None:
        """Publish a cluster's status; it disappears ``ttl`` seconds after its last publish."""
        ...

    def clusters(self) -> list[dict[str, Any]]:
        """Statuses of live clusters."""
        ...

    def remove(self, cluster_id: str) -> None:
        """Remove a stopped cluster's status at once."""
        ...


HookRunner = Callable[[Callable[..., Any], TaskResult], None]
"""Calls a resolved hook for a saved record. The default calls ``hook(record)``; qdjango's
passes the saved ``Task`` row instead. Errors are caught and logged by the cluster."""
