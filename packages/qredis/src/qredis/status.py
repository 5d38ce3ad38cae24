"""RedisStatusBoard: clusters publish their status with a TTL; readers list the live ones."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import redis

from qcore import ConfigError
from qredis.connection import Connector, redis_errors
from qredis.keys import StatusKeys
from qredis.scripts import Scripts

__all__ = ["RedisStatusBoard", "live_clusters"]


class RedisStatusBoard:
    """Implements ``qcore.StatusBoard``: a JSON value per cluster with a TTL, plus a zset
    registry scored by expiry, so :meth:`clusters` needs no ``KEYS`` and prunes the dead.

    Values that JSON cannot represent (datetimes, enums) are stored as their ``str``.
    Connection parameters as for :class:`~qredis.transport.RedisTransport`.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        connection: redis.Redis | None = None,
        pool: redis.ConnectionPool | None = None,
        namespace: str = "default",
        **redis_kwargs: Any,
    ) -> None:
        self._keys = StatusKeys.for_namespace(namespace)
        self._conn = Connector(url, connection=connection, pool=pool, redis_kwargs=redis_kwargs)
        self._scripts: tuple[Any, Scripts] | None = None

    def _ready(self) -> tuple[Any, Scripts]:
        client = self._conn.client
        if self._scripts is None or self._scripts[0] is not client:
            self._scripts = (client, Scripts(client))
        return self._scripts

    def publish(self, cluster_id: str, status: Mapping[str, Any], ttl: float) -> None:
        """Publish a cluster's status; it disappears ``ttl`` seconds after its last publish."""
        if not ttl > 0:
            raise ConfigError(f"ttl must be a positive number of seconds, not {ttl!r}")
        value = json.dumps({**status, "cluster_id": cluster_id}, default=str)
        _, scripts = self._ready()
        with redis_errors(self._conn.display):
            scripts.status(
                (self._keys.registry, self._keys.cluster(cluster_id)),
                (cluster_id, value, max(1, round(ttl * 1000))),
            )

    def clusters(self) -> list[dict[str, Any]]:
        """Statuses of live clusters, ordered by cluster id; expired entries are pruned."""
        client, _ = self._ready()
        with redis_errors(self._conn.display):
            seconds, micros = client.time()
            now = seconds * 1000 + micros // 1000
            client.zremrangebyscore(self._keys.registry, "-inf", now)
            ids = sorted(i.decode() for i in client.zrange(self._keys.registry, 0, -1))
            if not ids:
                return []
            values = client.mget([self._keys.cluster(i) for i in ids])
        return [json.loads(v) for v in values if v is not None]

    def remove(self, cluster_id: str) -> None:
        """Remove a stopped cluster's status at once."""
        client, _ = self._ready()
        with redis_errors(self._conn.display):
            pipe = client.pipeline(transaction=True)
            pipe.delete(self._keys.cluster(cluster_id))
            pipe.zrem(self._keys.registry, cluster_id)
            pipe.execute()

    def check_permissions(self) -> list[str]:
        """What the Redis user may not do that this object needs (its keys, channels and
        commands); empty when all is allowed. Runs nothing; one attempt (see
        :class:`qcore.Preflight`)."""
        from qredis.permissions import Probe, missing_permissions

        with (
            redis_errors(self._conn.display),
            self._conn.spec.one_shot(key=self._keys.registry) as client,
        ):
            return missing_permissions(client, Probe(self._keys.registry))

    def reachable(self) -> bool:
        """True when Redis answers now: one quick attempt (see :class:`qcore.Preflight`)."""
        from qredis.server import reachable

        return reachable(self._conn.spec)

    def check_server(self) -> list[str]:
        """Warnings about the server's settings (see :func:`qredis.check_server`)."""
        from qredis.server import check_server

        with (
            redis_errors(self._conn.display),
            self._conn.spec.one_shot(key=self._keys.registry) as client,
        ):
            return check_server(client, self._conn.display)

    def close(self) -> None:
        """Give back the connection pool this board opened."""
        self._conn.close()
        self._scripts = None

    def __getstate__(self) -> dict[str, Any]:
        return {"namespace": self._keys.namespace, "conn": self._conn}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._keys = StatusKeys.for_namespace(state["namespace"])
        self._conn = state["conn"]
        self._scripts = None


async def live_clusters(client: Any, namespace: str = "default") -> list[dict[str, Any]]:
    """:meth:`RedisStatusBoard.clusters` read with a ``redis.asyncio`` client (the asyncio
    producer's key check), leaving the pruning of expired entries to the sync readers."""
    keys = StatusKeys.for_namespace(namespace)
    seconds, micros = await client.time()
    now = int(seconds) * 1000 + int(micros) // 1000
    found = await client.zrangebyscore(keys.registry, f"({now}", "+inf")
    ids = sorted(i.decode() if isinstance(i, bytes) else str(i) for i in found)
    if not ids:
        return []
    values = await client.mget([keys.cluster(i) for i in ids])
    return [json.loads(v) for v in values if v is not None]
