"""What some transports, stores and boards can do beyond their protocol (:mod:`qcore.protocols`):
serve several queues as one, spread a queue over shards, check their server before a cluster
starts, record the process that owns each cluster. A cluster asks with ``isinstance``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from qcore.deliveries import Reaped

if TYPE_CHECKING:
    from qcore.protocols import Transport

__all__ = ["Owners", "Preflight", "QueueSource", "ShardSource"]


@runtime_checkable
class QueueSource(Protocol):
    """A transport that can serve several queues of its backend as one (qredis.RedisTransport):
    ``queues`` in strict order, or in proportion to ``weights`` (one integer >= 1 each)."""

    def serving(self, queues: Sequence[str], weights: Sequence[int] | None = None) -> Transport:
        """A transport fetching from ``queues`` (acks, retries and dead letters go to the
        queue each delivery came from)."""
        ...


@runtime_checkable
class ShardSource(Protocol):
    """A transport whose queue can be spread over several parts of its backend
    (qredis.RedisTransport: hash tags, so Redis Cluster nodes)."""

    def sharded(self, shards: int) -> Transport:
        """This queue in ``shards`` shards (itself for 1); a backend that keeps the count
        refuses another one."""
        ...


@runtime_checkable
class Preflight(Protocol):
    """What a transport, store or board can say about its server before a cluster starts.

    Both calls make one quick attempt (no long retries) and raise ``ConnectionError`` when the
    server cannot be reached, so a cluster can say so at once and try again.
    """

    def check_permissions(self) -> list[str]:
        """What the server will not let this object do (commands, keys, channels), by name;
        empty when nothing is missing. A cluster refuses to start while anything is."""
        ...

    def check_server(self) -> list[str]:
        """Settings of the server that put tasks at risk, one warning each (empty: none)."""
        ...

    def reachable(self) -> bool:
        """True when the server answers now (one quick attempt; False, never an error, when
        it cannot be reached). A stopping cluster asks, so as not to wait on a dead server."""
        ...


@runtime_checkable
class Owners(Protocol):
    """A transport that records which process runs each cluster, so that a cluster on the same
    host can take back at once the tasks of one whose process is provably gone, instead of
    waiting for its consumers' heartbeats to expire. What an owner record holds, and when a
    process is gone, is the cluster's business (``qcluster.ownership``); the transport keeps
    the records beside the queue.
    """

    def record_owner(self, cluster_id: str, owner: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Record (or refresh) ``cluster_id``'s owner; returns every cluster's record."""
        ...

    def remove_owner(self, cluster_id: str) -> None:
        """Forget ``cluster_id``'s owner record (the cluster stopped)."""
        ...

    def reclaim(self, cluster_id: str) -> Reaped:
        """Requeue every in-flight task of ``cluster_id``'s consumers now, whatever their
        heartbeats (attempts kept), and forget its owner record."""
        ...
