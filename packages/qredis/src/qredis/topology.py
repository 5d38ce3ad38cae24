"""Redis Cluster and Sentinel: which kind of Redis a connection points at, and redis-py's own
client for it. Q writes no failover of its own: a Redis Cluster is reached through
``redis.cluster.RedisCluster`` (it follows ``MOVED`` and a promoted replica), a Sentinel group
through ``redis.sentinel.SentinelConnectionPool`` (each new connection asks the sentinels where
the master is, and a connection to a demoted master is dropped).

URLs::

    redis+cluster://[user:password@]host:port[,host:port...]           any node(s) of a cluster
    redis+sentinel://[user:password@]host:port[,host:port...]/service_name[/db]

``rediss+cluster://`` and ``rediss+sentinel://`` use TLS. The user and password are the data
nodes'; sentinels that require a password of their own take ``?sentinel_password=`` (and
``?sentinel_username=``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from qcore import ConfigError, mask_url
from qredis.errors import TransportConnectionError, TransportError

__all__ = [
    "CLUSTER",
    "SENTINEL",
    "SINGLE",
    "cluster_client",
    "describe",
    "kind_of_url",
    "parse_url",
    "portable",
    "sentinel_pool",
]

SINGLE = "redis"
CLUSTER = "cluster"
SENTINEL = "sentinel"

_SCHEMES = {
    "redis+cluster": (CLUSTER, False),
    "rediss+cluster": (CLUSTER, True),
    "redis+sentinel": (SENTINEL, False),
    "rediss+sentinel": (SENTINEL, True),
}
_QUERY = ("password", "username", "sentinel_password", "sentinel_username")
CLUSTER_RETRIES = 3
"""Attempts redis-py's cluster client makes at a command after a connection error or
``CLUSTERDOWN``, re-reading the slots each time; a caller's own backoff rides out the rest of a
failover (a worker's fetch and ack retry until Redis answers)."""


def kind_of_url(url: str) -> str:
    """``cluster``, ``sentinel`` or ``redis`` (a single server: redis://, rediss://, unix://)."""
    return _SCHEMES.get(url.partition("://")[0].lower(), (SINGLE, False))[0]


def parse_url(url: str) -> dict[str, Any]:
    """The parameters of a ``redis+cluster://`` or ``redis+sentinel://`` URL: ``startup_nodes``
    or ``sentinels`` and ``service_name``/``db``, credentials, ``ssl``. A ``ConfigError`` naming
    the problem when it is malformed."""
    scheme = url.partition("://")[0].lower()
    kind, ssl = _SCHEMES[scheme]
    shown = mask_url(url)
    form = (
        f"{scheme}://host:port[,host:port]"
        if kind == CLUSTER
        else f"{scheme}://host:port[,host:port]/service_name[/db]"
    )
    parts = urlsplit(url)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    hosts = [_host_port(h, shown, form) for h in hostlist.split(",") if h.strip()]
    if not hosts:
        raise ConfigError(f"{shown} names no host: a {kind} URL looks like {form}")
    out: dict[str, Any] = {"ssl": True} if ssl else {}
    if userinfo:
        user, has_password, password = userinfo.partition(":")
        if user:
            out["username"] = unquote(user)
        if has_password:
            out["password"] = unquote(password)
    for name, values in parse_qs(parts.query, keep_blank_values=True).items():
        if name not in _QUERY:
            raise ConfigError(
                f"{shown}: unknown parameter {name!r} (known: {', '.join(_QUERY)}); other "
                "connection settings go in redis-py keyword arguments"
            )
        out[name] = values[-1]
    segments = [s for s in parts.path.split("/") if s]
    if kind == CLUSTER:
        if segments not in ([], ["0"]):
            raise ConfigError(f"{shown}: a Redis Cluster has database 0 only; use {form}")
        out["startup_nodes"] = hosts
        return out
    if not 1 <= len(segments) <= 2:
        raise ConfigError(f"{shown} names no service: a Sentinel URL looks like {form}")
    out["sentinels"] = hosts
    out["service_name"] = unquote(segments[0])
    if len(segments) == 2:
        if not segments[1].isdigit():
            raise ConfigError(f"{shown}: the database must be a number, not {segments[1]!r}")
        out["db"] = int(segments[1])
    return out


def _host_port(text: str, shown: str, form: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{shown}: {text.strip()!r} is not host:port; the URL looks like {form}")
    return host.strip("[]"), int(port)


def describe(kind: str, params: Mapping[str, Any]) -> str:
    """Where a cluster or Sentinel spec built from parameters points (no password)."""
    tls = "s" if params.get("ssl") else ""
    if kind == CLUSTER:
        nodes = ",".join(f"{h}:{p}" for h, p in params.get("startup_nodes", ()))
        return f"redis{tls}+cluster://{nodes}"
    hosts = ",".join(f"{h}:{p}" for h, p in params.get("sentinels", ()))
    return f"redis{tls}+sentinel://{hosts}/{params.get('service_name')}/{params.get('db', 0)}"


# -- making redis-py's clients ------------------------------------------------------------------


def cluster_client(params: Mapping[str, Any], options: dict[str, Any], where: str) -> RedisCluster:
    """A ``RedisCluster`` on ``params['startup_nodes']``; says clearly when the node named is
    not part of a Redis Cluster, or when no node can be reached."""
    params = dict(params)
    nodes = [ClusterNode(h, p) for h, p in params.pop("startup_nodes")]  # type: ignore[no-untyped-call]
    options = {**options, **params}
    # The nodes' own clients never retry (redis-py's rule: the cluster client re-reads the
    # slots and retries instead, so a dead master's replica is found).
    options.pop("retry", None)
    options.pop("retry_on_error", None)
    options.pop("retry_for", None)
    try:
        return RedisCluster(
            startup_nodes=nodes, retry=Retry(NoBackoff(), CLUSTER_RETRIES), **options
        )
    except RedisClusterException as exc:
        text = str(exc)
        if "not enabled" in text or "cluster_enabled" in text.lower():
            raise TransportError(
                f"Redis at {where} is not a Redis Cluster (cluster mode is not enabled on it): "
                "use a redis:// URL for a single Redis, or name a node of a cluster"
            ) from None
        raise TransportConnectionError(
            f"cannot reach Redis Cluster at {where} ({text.splitlines()[0]}); check that its "
            "nodes run and that the host and port are right"
        ) from None
    except redis.ResponseError as exc:
        if "cluster support disabled" in str(exc).lower():
            raise TransportError(
                f"Redis at {where} is not a Redis Cluster (cluster support is disabled on it): "
                "use a redis:// URL for a single Redis, or name a node of a cluster"
            ) from None
        raise


def sentinel_pool(params: Mapping[str, Any], options: dict[str, Any]) -> SentinelConnectionPool:
    """A pool whose connections go to the master the sentinels name at connect time."""
    params = dict(params)
    sentinels = [tuple(s) for s in params.pop("sentinels")]
    service = params.pop("service_name")
    sentinel_kwargs: dict[str, Any] = {
        name: options[name]
        for name in ("socket_timeout", "socket_connect_timeout", "socket_keepalive")
        if name in options
    }
    for name in ("sentinel_password", "sentinel_username"):
        value = params.pop(name, None)
        if value is not None:
            sentinel_kwargs[name.removeprefix("sentinel_")] = value
    if params.get("ssl"):
        sentinel_kwargs["ssl"] = True
    options = {**options, **params}  # ssl=True: redis-py's SentinelManagedSSLConnection
    manager = Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
    return SentinelConnectionPool(service, manager, **options)  # type: ignore[no-untyped-call]


# -- a caller's client, as parameters --------------------------------------------------------

_PLAIN = (str, bytes, int, float, bool, type(None))


def portable(client: Any, plain: Any) -> tuple[str, dict[str, Any]] | None:
    """``(kind, parameters)`` of a caller's cluster client or Sentinel-managed client, or None
    for a plain ``redis.Redis``. ``plain(pool)`` gives a pool's plain keyword arguments."""
    if isinstance(client, RedisCluster):
        kwargs = {
            k: v
            for k, v in client.nodes_manager.connection_kwargs.items()
            if isinstance(v, _PLAIN) and k not in ("host", "port", "retry", "connection_pool")
        }
        known = client.get_nodes()  # type: ignore[no-untyped-call]
        nodes = sorted({(n.host, n.port) for n in known})
        return CLUSTER, {**kwargs, "startup_nodes": nodes}
    pool = getattr(client, "connection_pool", None)
    if isinstance(pool, SentinelConnectionPool):
        kwargs = plain(pool)
        kwargs.pop("host", None)
        kwargs.pop("port", None)
        manager = pool.sentinel_manager
        sentinels = [
            (
                s.connection_pool.connection_kwargs["host"],
                s.connection_pool.connection_kwargs["port"],
            )
            for s in manager.sentinels
        ]
        for name in ("username", "password"):
            if manager.sentinel_kwargs.get(name) is not None:
                kwargs[f"sentinel_{name}"] = manager.sentinel_kwargs[name]
        return SENTINEL, {**kwargs, "sentinels": sentinels, "service_name": pool.service_name}
    return None
