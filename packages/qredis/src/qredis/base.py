"""The plumbing every part of :class:`~qredis.transport.RedisTransport` shares: parameters, the
per-process client and scripts, pickling, errors."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Self

import redis

from qcore import ConfigError
from qredis.connection import Connector, connection_kwargs, redis_errors
from qredis.keys import QueueKeys
from qredis.scripts import Scripts
from qredis.wire import HeldConnection, bulk

__all__ = ["DEFAULT_REPLAY_WINDOW", "TransportBase", "chunks", "ms", "positive_int"]


def positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, not {value!r}")
    return value


def _replicas(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(
            f"wait_replicas must be a whole number of replicas (0: do not wait), not {value!r}"
        )
    return value


DEFAULT_REPLAY_WINDOW = 7 * 24 * 3600.0
"""Seconds a completed task's id is remembered, so a copy of it is refused: the result TTL's
default (``qredis.DEFAULT_RESULT_TTL``)."""


def _window(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigError(
            f"replay_window must be a number of seconds >= 0 (0: completed tasks are not "
            f"remembered, copies of them run again), not {value!r}"
        )
    return float(value)


def ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of up to ``size`` items, consuming ``items`` lazily."""
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


class TransportBase:
    """Parameters, connection and scripts of a transport (see :class:`~qredis.RedisTransport`)."""

    def __init__(
        self,
        queue: str = "default",
        *,
        url: str | None = None,
        connection: redis.Redis | None = None,
        pool: redis.ConnectionPool | None = None,
        max_attempts: int = 3,
        chunk_size: int = 1000,
        consumer_ttl: float = 60.0,
        block_slice: float = 1.0,
        wait_replicas: int = 0,
        wait_timeout: float = 2.0,
        replay_window: float = DEFAULT_REPLAY_WINDOW,
        **redis_kwargs: Any,
    ) -> None:
        self._keys = QueueKeys.for_queue(queue)
        self.replay_window = _window(replay_window)
        self.wait_replicas = _replicas(wait_replicas)
        if isinstance(wait_timeout, bool) or not isinstance(wait_timeout, int | float):
            raise ConfigError(f"wait_timeout must be a number of seconds, not {wait_timeout!r}")
        if not wait_timeout > 0:
            raise ConfigError(
                f"wait_timeout must be a positive number of seconds, not {wait_timeout!r}"
            )
        self.wait_timeout = float(wait_timeout)
        self.max_attempts = positive_int("max_attempts", max_attempts)
        self.chunk_size = positive_int("chunk_size", chunk_size)
        if not consumer_ttl > 0 or not block_slice > 0:
            raise ConfigError("consumer_ttl and block_slice must be positive numbers of seconds")
        self.consumer_ttl = float(consumer_ttl)
        self.block_slice = float(block_slice)
        self._conn = Connector(url, connection=connection, pool=pool, redis_kwargs=redis_kwargs)
        self._setup()

    def _setup(self) -> None:
        k = self._keys
        self._enqueue_keys0 = self._enqueue_keys_at(0)
        self._ack_keys = (k.tokens, k.msg, k.attempts, k.maxatt, k.acks, k.done)
        self._scan_keys = (k.delayed, k.due, k.consumers, k.prio, k.levels, k.marker)
        self._pid = -1
        self._client: redis.Redis | None = None
        self._scripts: Scripts | None = None
        self._held: HeldConnection | None = None
        self._cluster = False

    def _enqueue_keys_at(self, priority: int) -> tuple[str, ...]:
        """enqueue.lua's KEYS for a task of ``priority`` (fire.lua passes the same)."""
        k = self._keys
        return (k.ready(priority), k.msg, k.delayed, k.maxatt, k.levels, k.prio, k.marker)

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def queue(self) -> str:
        """The queue's name."""
        return self._keys.name

    @property
    def keys(self) -> QueueKeys:
        """The Redis keys of this queue."""
        return self._keys

    @property
    def url(self) -> str:
        """Where the transport connects, password masked (for logs and errors)."""
        return self._conn.display

    @property
    def client(self) -> redis.Redis:
        """The redis-py client this transport uses in this process."""
        client: redis.Redis = self._ready()[0]
        return client

    def _ready(self) -> tuple[Any, Scripts]:
        # The client is typed Any here: redis-py's return types are unions of every
        # decoding mode, and this client never decodes.
        if self._pid == os.getpid():
            return self._client, self._scripts  # type: ignore[return-value]
        client = self._conn.client
        self._client, self._scripts = client, Scripts(client)
        # Enqueue and the blocking fetch's wake-up: see qredis.wire. Never on a caller's
        # client or pool: a connection taken from it for good could be the only one it has;
        # nor on a Redis Cluster, whose client routes each command to the node of its slot.
        self._cluster = isinstance(client, redis.RedisCluster)
        held = self._conn.owns_pool and not self._cluster
        self._held = HeldConnection(client) if held else None
        # Fetch and ack request ids: unique per transport object and process, cheap to make.
        self._request_prefix = f"{uuid.uuid4().hex[:12]}-"
        self._requests = itertools.count()  # next() is atomic under the GIL
        self._enqueue_cmd: tuple[str | int, ...] = (
            "EVALSHA",
            self._scripts.enqueue.sha,
            7,
            *self._enqueue_keys0,
        )
        # The same command's fixed part in RESP, its 4 arguments to follow (framed once, not by
        # redis-py's packer per call: see tools/bench/README.md, 'held connection'); a task of
        # another priority level adds a fifth and names that level's list.
        self._enqueue_head = b"*%d\r\n%b" % (len(self._enqueue_cmd) + 4, bulk(*self._enqueue_cmd))
        # A blocking command must return before the socket times out under it.
        socket_timeout = connection_kwargs(client).get("socket_timeout")
        self._block_cap = self.block_slice
        if socket_timeout:
            self._block_cap = min(self.block_slice, max(0.01, socket_timeout / 2))
        # Last: another thread takes this process's set-up as done once it sees the pid.
        self._pid = os.getpid()
        return client, self._scripts

    def _errors(self) -> AbstractContextManager[None]:
        return redis_errors(self._conn.display)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "queue": self._keys.name,
            "max_attempts": self.max_attempts,
            "chunk_size": self.chunk_size,
            "consumer_ttl": self.consumer_ttl,
            "block_slice": self.block_slice,
            "wait_replicas": self.wait_replicas,
            "wait_timeout": self.wait_timeout,
            "replay_window": self.replay_window,
            "conn": self._conn,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._keys = QueueKeys.for_queue(state["queue"])
        self.max_attempts = state["max_attempts"]
        self.chunk_size = state["chunk_size"]
        self.consumer_ttl = state["consumer_ttl"]
        self.block_slice = state["block_slice"]
        self.wait_replicas = state.get("wait_replicas", 0)
        self.wait_timeout = state.get("wait_timeout", 2.0)
        self.replay_window = state.get("replay_window", DEFAULT_REPLAY_WINDOW)
        self._conn = state["conn"]
        self._setup()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(queue={self.queue!r}, url={self.url!r})"

    def sibling(self, queue: str) -> Self:
        """A transport of the same kind and settings, on the same Redis, for ``queue``."""
        state = self.__getstate__()
        state["queue"] = queue
        clone = type(self).__new__(type(self))
        clone.__setstate__(state)
        return clone

    # -- server -----------------------------------------------------------------------------

    def ping(self) -> bool:
        """True when Redis answers."""
        try:
            client, _ = self._ready()
            return bool(client.ping())
        except redis.RedisError:
            return False

    def reachable(self) -> bool:
        """True when Redis answers now: one quick attempt (see :class:`qcore.Preflight`)."""
        from qredis.server import reachable

        return reachable(self._conn.spec)

    def check_server(self) -> list[str]:
        """Warnings about server settings that put tasks at risk (empty when all is well).
        One attempt: raises :class:`~qredis.TransportConnectionError` at once when Redis
        cannot be reached. On a Redis Cluster: the node that serves this queue.

        A cluster calls it before it starts: the queue's shard count is recorded as 1 unless
        one is recorded, and a queue sharded in Redis is refused with a
        :class:`~qcore.ConfigError` (a cluster serving shard 0 only would starve the others;
        see :mod:`qredis.shards`)."""
        from qredis.placement import check_shard_count

        check_shard_count(self, 1, "this cluster")
        return self._server_warnings()

    def _server_warnings(self) -> list[str]:
        from qredis.server import check_server

        with self._errors(), self._conn.spec.one_shot(key=self._keys.queue) as client:
            return check_server(client, self.url)

    def check_permissions(self) -> list[str]:
        """What the Redis user may not do that this transport needs (commands by name, key
        patterns, channels); empty when all is allowed. Runs nothing (see
        :mod:`qredis.permissions`); one attempt, like :meth:`check_server`."""
        from qredis.permissions import Probe, missing_permissions

        waits = ("WAIT", "SET") if self.wait_replicas else ()
        probe = Probe(self._keys.queue, blocking_list=True, commands=waits)
        with self._errors(), self._conn.spec.one_shot(key=self._keys.queue) as client:
            return missing_permissions(client, probe)

    def close(self) -> None:
        """Release the connections this transport opened (a caller's client is left open)."""
        if self._held is not None and self._pid == os.getpid():
            self._held.release()
        self._held = None
        self._conn.close()
        self._pid = -1
        self._client = None
        self._scripts = None
