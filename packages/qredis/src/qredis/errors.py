"""qredis errors, under Q's one root :class:`qcore.QError`."""

from __future__ import annotations

from qcore import QError

__all__ = ["BrokerConnectionError", "BrokerError", "BrokerOutOfMemory"]


class BrokerError(QError):
    """Redis refused or failed an operation of the broker, result store or status board."""


class BrokerConnectionError(BrokerError, ConnectionError):
    """Redis could not be reached (after redis-py's retries); nothing was written."""


class BrokerOutOfMemory(BrokerError):
    """Redis hit ``maxmemory`` and refused the write; nothing of the call was written."""
