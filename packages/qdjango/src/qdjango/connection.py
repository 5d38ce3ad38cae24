"""Redis for a Django site: the transport, the result notifier and the status board, each built
once from ``Q_CLUSTER`` and shared by every call in the process.

With ``Q_CLUSTER["django_redis"] = "<cache alias>"`` the client comes from django-redis's pool
for that cache, so Q opens no connections of its own. Otherwise ``Q_CLUSTER["redis"]`` (a URL
or redis-py keyword arguments; default ``$Q_REDIS_URL`` or ``redis://127.0.0.1:6379/0``) is
used through qredis's one-pool-per-process registry.
"""

from __future__ import annotations

import threading
from typing import Any

from qcore import ConfigError, EventBus
from qdjango.conf import QSettings, get_settings, on_change
from qdjango.signals import signal_bus
from qredis import (
    KeyWatch,
    RedisStatusBoard,
    RedisTransport,
    ResultNotifier,
    ShardedQueue,
    producer_kwargs,
)

__all__ = [
    "cluster_transport",
    "events",
    "key_watch",
    "notifier",
    "queue_transport",
    "redis_client",
    "served_queue_transport",
    "status_board",
    "transport",
    "transport_for",
]

_lock = threading.Lock()
_shared: dict[str, Any] = {}
# Transports for clients passed with ``redis=``, by identity (a loop passes the same one).
_given: dict[int, tuple[Any, RedisTransport | ShardedQueue]] = {}
_GIVEN_MAX = 16


@on_change
def _forget() -> None:
    with _lock:
        made = [*_shared.values(), *(transport for _, transport in _given.values())]
        _shared.clear()
        _given.clear()
    for obj in made:
        # Gives back the shared pools these objects opened (never a client the caller gave).
        try:
            if hasattr(obj, "close"):
                obj.close()
        except Exception:  # noqa: S110 - closing is best effort; nothing is lost
            pass


def _connection(conf: QSettings, *, producer: bool = True) -> dict[str, Any]:
    """Keyword arguments that point a qredis object at the configured Redis.

    The site's own calls (``producer``: enqueue, result waits, ``qinfo``, the admin) fail
    within ``producer_retry`` / ``producer_timeout`` seconds when Redis cannot be reached;
    a cluster's transport keeps qredis's patience, to ride out a restart.
    """
    if conf.django_redis:
        from django_redis import get_redis_connection

        return {"connection": get_redis_connection(conf.django_redis)}
    out: dict[str, Any] = (
        {"url": conf.redis_url} if conf.redis_url is not None else dict(conf.redis_kwargs)
    )
    if producer:
        out = producer_kwargs(
            out, retry_for=conf.producer_retry, socket_timeout=conf.producer_timeout
        )
    return out


def _get(name: str, make: Any) -> Any:
    found = _shared.get(name)
    if found is None:
        with _lock:
            found = _shared.get(name)
            if found is None:
                found = _shared[name] = make(get_settings())
    return found


def transport() -> RedisTransport | ShardedQueue:
    """The transport of ``Q_CLUSTER``'s queue (shared): every shard of it when
    ``Q_CLUSTER["shards"]`` is more than 1."""
    return _get(  # type: ignore[no-any-return]
        "transport",
        lambda conf: RedisTransport(
            conf.queue,
            max_attempts=conf.cluster.max_attempts,
            wait_replicas=conf.wait_replicas,
            wait_timeout=conf.wait_timeout,
            **_connection(conf),
        ).sharded(conf.cluster.shards),
    )


def queue_transport(queue: str) -> RedisTransport | ShardedQueue:
    """The transport of ``queue`` (shared): ``Q_CLUSTER``'s own, or another queue's; every
    queue ``Q_CLUSTER`` serves is sharded by its ``shards`` (the cluster shards each alike)."""
    if queue == get_settings().queue:
        return transport()
    return _get(  # type: ignore[no-any-return]
        f"transport:{queue}",
        lambda conf: RedisTransport(
            queue, max_attempts=conf.cluster.max_attempts, **_connection(conf)
        ).sharded(conf.cluster.shards if queue in served_queues(conf) else 1),
    )


def served_queues(conf: QSettings) -> list[str]:
    """The queues ``conf``'s clusters serve: its ``queue`` and its ``queues``, in order."""
    return list(dict.fromkeys([conf.queue, *conf.cluster.queue_plan()[0]]))


def served_queue_transport(queue: str) -> RedisTransport | ShardedQueue:
    """The transport of one of ``Q_CLUSTER``'s queues (its ``queue`` or one of its ``queues``).
    Any other name is refused: a task sent there would wait for a cluster never started."""
    return queue_transport(check_served(queue))


def check_served(queue: str) -> str:
    """``queue``, when ``Q_CLUSTER`` serves it (its ``queue`` or one of its ``queues``); any
    other name is a :class:`~qcore.ConfigError` (the sync and the asyncio API's check)."""
    known = served_queues(get_settings())
    if queue not in known:
        raise ConfigError(
            f"unknown queue {queue!r}: Q_CLUSTER serves {', '.join(known)} "
            "(add it to Q_CLUSTER['queues'] to serve it)"
        )
    return queue


def transport_for(client: Any) -> RedisTransport | ShardedQueue:
    """A transport of the configured queue on a redis client or pool the caller gave."""
    import redis

    entry = _given.get(id(client))
    if entry is not None and entry[0] is client:
        return entry[1]
    conf = get_settings()
    if isinstance(client, redis.ConnectionPool):
        plain = RedisTransport(conf.queue, pool=client, max_attempts=conf.cluster.max_attempts)
    elif isinstance(client, redis.Redis | redis.RedisCluster):
        plain = RedisTransport(
            conf.queue, connection=client, max_attempts=conf.cluster.max_attempts
        )
    else:
        raise TypeError(
            f"redis= takes a redis.Redis or redis.cluster.RedisCluster client or a "
            "redis.ConnectionPool, "
            f"not {type(client).__name__}"
        )
    made = plain.sharded(conf.cluster.shards)
    with _lock:
        if len(_given) >= _GIVEN_MAX:
            _given.pop(next(iter(_given)))
        _given[id(client)] = (client, made)
    return made


def events() -> EventBus:
    """The bus this process's producers emit on: Django's signals (:mod:`qdjango.signals`)
    and the producer metrics (:mod:`qdjango.metrics`)."""
    from qdjango.metrics import producer_metrics

    return _get(  # type: ignore[no-any-return]
        "events", lambda conf: producer_metrics().subscribe(signal_bus(using=conf.database))
    )


def notifier() -> ResultNotifier:
    """The notifier saved results are announced on (namespace: the queue's name)."""
    return _get(  # type: ignore[no-any-return]
        "notifier", lambda conf: ResultNotifier(namespace=conf.queue, **_connection(conf))
    )


def status_board(queue: str | None = None) -> RedisStatusBoard:
    """Where the clusters of a queue (default: ``Q_CLUSTER``'s) publish their status."""
    if queue is not None and queue != get_settings().queue:
        # Shared too, and given back with the others when a setting changes.
        return _get(  # type: ignore[no-any-return]
            f"status_board:{queue}",
            lambda conf: RedisStatusBoard(namespace=queue, **_connection(conf)),
        )
    return _get(  # type: ignore[no-any-return]
        "status_board", lambda conf: RedisStatusBoard(namespace=conf.queue, **_connection(conf))
    )


def key_watch() -> KeyWatch:
    """Warns once per process and key when no live cluster of a queue accepts the site's
    signing key (:class:`qredis.KeyWatch`; the clusters of ``Q_CLUSTER`` publish on
    :func:`status_board`)."""
    board = status_board()  # first: _get holds the lock while it makes the watch
    return _get("key_watch", lambda conf: KeyWatch(board, conf.queue))  # type: ignore[no-any-return]


def cluster_transport(queue: str, max_attempts: int) -> RedisTransport:
    """A new transport for a cluster (its own object: the cluster pickles it to its workers)."""
    conn = _connection(get_settings(), producer=False)
    return RedisTransport(queue, max_attempts=max_attempts, **conn)


def redis_client() -> Any:
    """The redis client Q uses in this process (Django Q's ``django_q.conf.redis_client``):
    pass it as ``async_task(..., redis=redis_client)`` in loops."""
    return transport().client
