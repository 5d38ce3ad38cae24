"""Connection economy: one shared pool per process and per set of parameters.

A transport, store or board is built from a URL, redis-py keyword arguments, a client or a pool.
It keeps a :class:`ConnectionSpec` -- plain, picklable parameters -- and opens its client lazily
from the process-wide registry (:mod:`qredis.pools`), so every object built from the same
parameters in one process shares one pool, and an object pickled into a child process (fork,
forkserver or spawn) opens its own pool there instead of reusing the parent's sockets. What a
pool Q opens is given: :mod:`qredis.client_options`; redis-py's errors as Q's:
:func:`qredis.errors.redis_errors` (both re-exported here).
"""

from __future__ import annotations

import inspect
import os
import pickle
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.driver_info import DriverInfo
from redis.retry import Retry

from qcore import ConfigError, mask_mapping, mask_url
from qredis import topology
from qredis.client_options import (
    PRODUCER_RETRY_FOR,
    PRODUCER_SOCKET_TIMEOUT,
    default_options,
    producer_kwargs,
)
from qredis.errors import redis_errors
from qredis.pools import acquire_pool, release_pool, reset_pools, shared_pool_count

__all__ = [
    "DEFAULT_URL",
    "PRODUCER_RETRY_FOR",
    "PRODUCER_SOCKET_TIMEOUT",
    "ConnectionSpec",
    "Connector",
    "connection_kwargs",
    "default_options",
    "producer_kwargs",
    "redis_errors",
    "reset_pools",
    "shared_pool_count",
]

DEFAULT_URL = "redis://127.0.0.1:6379/0"
URL_ENV = "Q_REDIS_URL"


@dataclass(frozen=True)
class ConnectionSpec:
    """Picklable parameters of a Redis connection: a URL and/or ``redis.Redis`` keyword
    arguments (for a client or pool the caller passed in: its plain connection settings).

    ``kind`` says what the parameters point at: ``redis`` (one server), ``cluster`` (a Redis
    Cluster: ``redis+cluster://`` or a ``RedisCluster`` client) or ``sentinel`` (the master of
    a Sentinel group: ``redis+sentinel://`` or a client from ``Sentinel.master_for``); see
    :mod:`qredis.topology`."""

    url: str | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    kind: str = topology.SINGLE

    @classmethod
    def build(
        cls,
        url: str | None = None,
        *,
        connection: redis.Redis | None = None,
        pool: redis.ConnectionPool | None = None,
        redis_kwargs: Mapping[str, Any] | None = None,
    ) -> ConnectionSpec:
        given = [x for x in (url, connection, pool) if x is not None]
        if len(given) > 1:
            raise ConfigError("pass at most one of url=, connection= and pool=")
        if connection is not None and not isinstance(connection, redis.Redis | redis.RedisCluster):
            raise TypeError(
                "connection must be a redis.Redis or redis.cluster.RedisCluster client, not "
                f"{type(connection).__name__}"
            )
        if pool is not None and not isinstance(pool, redis.ConnectionPool):
            raise TypeError(f"pool must be a redis.ConnectionPool, not {type(pool).__name__}")
        kwargs = dict(redis_kwargs or {})
        if connection is not None or pool is not None:
            if kwargs:
                raise ConfigError("redis keyword arguments cannot be combined with a client/pool")
            found = topology.portable(connection, _portable_kwargs) if pool is None else None
            if found is not None:
                return cls(kwargs=found[1], kind=found[0])
            source = pool if pool is not None else connection.connection_pool  # type: ignore[union-attr]
            return cls(kwargs=_portable_kwargs(source))
        if url is None and not kwargs:
            url = os.environ.get(URL_ENV) or DEFAULT_URL
        if url is not None and not isinstance(url, str):
            raise TypeError(f"url must be a string such as redis://host:6379/0, not {url!r}")
        kind = topology.SINGLE if url is None else topology.kind_of_url(url)
        if kind != topology.SINGLE:
            topology.parse_url(url)  # type: ignore[arg-type]  # a bad URL fails here, not later
        return cls(url=url, kwargs=kwargs, kind=kind)

    @property
    def is_cluster(self) -> bool:
        """Whether this points at a Redis Cluster (its client is a ``RedisCluster``)."""
        return self.kind == topology.CLUSTER

    @property
    def display(self) -> str:
        """Where this spec points, with any password masked."""
        if self.url is not None:
            return mask_url(self.url)
        kw = self.kwargs
        if self.kind != topology.SINGLE:
            return topology.describe(self.kind, kw)
        if kw.get("unix_socket_path"):
            return f"unix://{kw['unix_socket_path']}"
        scheme = "rediss" if kw.get("ssl") else "redis"
        return f"{scheme}://{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"

    def __repr__(self) -> str:  # the dataclass's would show passwords
        kwargs = mask_mapping(self.kwargs)
        return (
            f"ConnectionSpec(url={None if self.url is None else mask_url(self.url)!r}, {kwargs=}"
            + ("" if self.kind == topology.SINGLE else f", kind={self.kind!r}")
            + ")"
        )

    def _options(self) -> dict[str, Any]:
        kwargs = dict(self.kwargs)
        options = default_options(kwargs.pop("retry_for", None))
        if kwargs.get("unix_socket_path") or (self.url or "").startswith("unix:"):
            del options["socket_keepalive"]  # a TCP option: a unix socket's connection refuses it
        options.update(kwargs)
        # Q's scripts return payloads as bytes: a decoding client would corrupt them.
        options["decode_responses"] = False
        if not {"driver_info", "lib_name", "lib_version"} & options.keys():
            # Else each new connection asks importlib.metadata for redis-py's version: most of
            # the cost of a connection, and of a recycled worker's start (tools/bench, 'R50').
            options["driver_info"] = DriverInfo(lib_version=redis.__version__)
        return options

    def _params(self) -> dict[str, Any]:
        """A cluster's or Sentinel group's parameters: from the URL, then the keywords."""
        params = topology.parse_url(self.url) if self.url is not None else {}
        params.update(self.kwargs)
        params.pop("retry_for", None)  # Q's own: made into the retry policy by _options()
        return params

    def _make_pool(self) -> redis.ConnectionPool | redis.RedisCluster:
        """What the registry shares: a pool, or for a Redis Cluster its client (which keeps a
        pool per node)."""
        options = self._options()
        if self.kind == topology.CLUSTER:
            params = self._params()
            return topology.cluster_client(params, _without(options, params), self.display)
        if self.kind == topology.SENTINEL:
            params = self._params()
            return topology.sentinel_pool(params, _without(options, params))
        if self.url is not None:
            return redis.ConnectionPool.from_url(self.url, **options)
        return redis.Redis(**options).connection_pool

    @contextmanager
    def one_shot(self, timeout: float = 2.0, *, key: str | None = None) -> Iterator[redis.Redis]:
        """A client of its own (no shared pool) that tries once and waits at most ``timeout``
        seconds for a connection or a reply: for start-up checks, which must say at once that
        a Redis is unreachable instead of retrying behind the caller's back."""
        options = self._options()
        options.pop("retry", None)
        options.update(
            retry=Retry(NoBackoff(), 0),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=0,
        )
        if self.kind == topology.CLUSTER:
            # The checks ask the node that serves ``key`` (ACLs and settings are set per node).
            params = self._params()
            cluster = topology.cluster_client(params, _without(options, params), self.display)
            try:
                node = (
                    cluster.get_node_from_key(key)  # type: ignore[no-untyped-call]
                    if key
                    else cluster.get_default_node()  # type: ignore[no-untyped-call]
                )
                yield cluster.get_redis_connection(node)
            finally:
                cluster.close()
            return
        if self.kind == topology.SENTINEL:
            params = self._params()
            pool = topology.sentinel_pool(params, _without(options, params))
            client = redis.Redis(connection_pool=pool)
        elif self.url is not None:
            client = redis.Redis(connection_pool=redis.ConnectionPool.from_url(self.url, **options))
        else:
            client = redis.Redis(**options)
        try:
            yield client
        finally:
            client.connection_pool.disconnect()
            client.close()

    def _key(self) -> bytes:
        try:
            return pickle.dumps((self.url, self.kind, sorted(self.kwargs.items())))
        except Exception:
            # Unpicklable parameters (a credential provider, say): share by identity only.
            return repr(id(self)).encode()


class Connector:
    """The Redis client of one transport, store or board, opened lazily and reopened after fork.

    A client or pool the caller passed is used as it is in this process (unless it decodes
    responses, which would corrupt payloads); pickling keeps only the :class:`ConnectionSpec`.
    """

    __slots__ = ("_client", "_given", "_key", "_lock", "_pid", "_pool", "spec")

    def __init__(
        self,
        url: str | None = None,
        *,
        connection: redis.Redis | None = None,
        pool: redis.ConnectionPool | None = None,
        redis_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.spec = ConnectionSpec.build(
            url, connection=connection, pool=pool, redis_kwargs=redis_kwargs
        )
        given: Any = None
        if connection is not None:
            given = connection
        elif pool is not None:
            given = redis.Redis(connection_pool=pool)
        if given is not None and given.get_encoder().decode_responses:
            given = None
        self._given = given
        self._pid = os.getpid()
        self._client: Any = None
        self._pool: Any = None
        self._key = b""
        self._lock = threading.Lock()

    @property
    def display(self) -> str:
        return self.spec.display

    @property
    def owns_pool(self) -> bool:
        """Whether the client in this process is on a pool Q opened (not the caller's)."""
        return self._given is None or self._pid != os.getpid()

    @property
    def client(self) -> Any:
        """The client to use in this process: a ``redis.Redis``, or a ``RedisCluster`` for a
        Redis Cluster (typed Any: redis-py's two clients share their commands, not a type)."""
        client = self._client
        if client is not None and self._pid == os.getpid():
            return client
        return self._open()

    def _open(self) -> Any:
        if self._pid != os.getpid():
            # A lock a parent's thread held at fork time would never be released here.
            self._lock = threading.Lock()
        with self._lock:  # two threads opening at once must not take the pool twice
            if self._client is not None and self._pid == os.getpid():
                return self._client
            return self._open_locked()

    def _open_locked(self) -> Any:
        if self._pid != os.getpid():
            # Inherited through fork: never touch the parent's client or pool.
            self._given = None
            self._pool = None
            self._pid = os.getpid()
        if self._given is not None:
            self._client = self._given
        else:
            self._key = self.spec._key()
            self._pool = pool = acquire_pool(self._key, self.spec._make_pool)
            self._client = (
                pool if isinstance(pool, redis.RedisCluster) else redis.Redis(connection_pool=pool)
            )
        return self._client

    def close(self) -> None:
        """Give back the shared pool (disconnected when its last user closes)."""
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                release_pool(self._key, self._pool)
            self._pool = None
            self._client = None

    def __getstate__(self) -> ConnectionSpec:
        return self.spec

    def __setstate__(self, spec: ConnectionSpec) -> None:
        self.spec = spec
        self._given = None
        self._client = None
        self._pool = None
        self._key = b""
        self._pid = os.getpid()
        self._lock = threading.Lock()


_PLAIN = (str, bytes, int, float, bool, type(None))
_REDIS_PARAMS = frozenset(inspect.signature(redis.Redis.__init__).parameters) - {
    "self",
    "connection_pool",
    "retry",
    "retry_on_error",
    "retry_on_timeout",
}


def connection_kwargs(client: Any) -> Mapping[str, Any]:
    """The connection settings of a client: a ``redis.Redis``'s pool's, or a cluster's."""
    if isinstance(client, redis.RedisCluster):
        return client.nodes_manager.connection_kwargs
    return client.connection_pool.connection_kwargs  # type: ignore[no-any-return]


def _without(options: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Connection options without the names a cluster's or group's parameters set."""
    return {k: v for k, v in options.items() if k not in params}


def _portable_kwargs(pool: redis.ConnectionPool) -> dict[str, Any]:
    """The plain settings of a pool, as ``redis.Redis`` keyword arguments.

    Objects (a Retry, a credential provider, redis-py's internal registries) do not cross a
    process boundary; the child gets Q's default retry policy instead.
    """
    out: dict[str, Any] = {}
    for name, value in pool.connection_kwargs.items():
        if name == "path":
            name = "unix_socket_path"
        if name in _REDIS_PARAMS and isinstance(value, _PLAIN):
            out[name] = value
    if issubclass(pool.connection_class, redis.SSLConnection):
        out["ssl"] = True
    return out
