"""What a transport hands out and reports: a delivery, a dead letter, an in-flight task, and
what one pass of the reaper did. The :class:`~qcore.Transport` protocol (:mod:`qcore.protocols`)
speaks in these."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DeadLetter", "Delivery", "InFlight", "Reaped"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One task handed to one consumer. It stays in the consumer's in-flight list until acked."""

    task_id: str
    payload: bytes
    attempt: int
    """1 on the first delivery; counts deliveries to a consumer that then died or vanished."""
    max_attempts: int
    """Deliveries allowed before the task is dead-lettered instead of requeued."""
    token: int
    """Fencing token: an ack or a retry with a token that is no longer current is refused."""
    consumer: str
    queue: str = ""
    """The queue it came from (a transport serving several queues routes acks by it)."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A task taken out of circulation, with the reason. It keeps its payload for a requeue."""

    task_id: str
    reason: str
    failed_at: float
    attempts: int
    payload: bytes | None


@dataclass(frozen=True, slots=True)
class InFlight:
    """A task held by a consumer and not acked yet."""

    task_id: str
    consumer: str
    attempt: int


@dataclass(frozen=True, slots=True)
class Reaped:
    """What one pass of the reaper did."""

    consumers: int = 0
    """Consumers found dead (heartbeat expired)."""
    requeued: int = 0
    dead_lettered: int = 0
