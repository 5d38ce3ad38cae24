"""qredis errors, under Q's one root :class:`qcore.QError`."""

from __future__ import annotations

from qcore import QError

__all__ = [
    "ReplicationTimeout",
    "TransportConnectionError",
    "TransportError",
    "TransportOutOfMemory",
]


class TransportError(QError):
    """Redis refused or failed an operation of the transport, result store or status board."""


class TransportConnectionError(TransportError, ConnectionError):
    """Redis could not be reached (after redis-py's retries); nothing was written."""


class TransportOutOfMemory(TransportError):
    """Redis hit ``maxmemory`` and refused the write; nothing of the call was written."""


class ReplicationTimeout(TransportError):
    """The tasks are queued on the master, but fewer replicas than ``wait_replicas``
    acknowledged them in time: a failover could still lose them."""
