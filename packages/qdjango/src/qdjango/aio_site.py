"""What :mod:`qdjango.aio` keeps per event loop (``redis.asyncio`` clients belong to a loop):
a client, the queues and a result notifier, closed with the loop; and what every awaited call
does after sending (the site's key check, the enqueue's events in asgiref's thread)."""

from __future__ import annotations

import asyncio
import functools
import weakref
from typing import Any

from asgiref.sync import sync_to_async

from qcore import Codec, EventBus
from qcore.events import TaskEnqueued
from qdjango import connection
from qdjango.conf import QSettings, get_settings, on_change
from qredis.aio import AsyncNotifier, AsyncQueue, async_client
from qredis.aio_shards import AsyncShardedQueue
from qredis.status import live_clusters

__all__ = ["Site", "announce", "key_check", "site"]


class Site:
    """The asyncio objects of one event loop."""

    def __init__(self, conf: QSettings) -> None:
        self.client = _client(conf)
        self.queues: dict[str, AsyncQueue | AsyncShardedQueue] = {}
        self.notifier = AsyncNotifier(self.client, namespace=conf.queue)
        self.served, self.shards = set(connection.served_queues(conf)), conf.cluster.shards
        # Q_CLUSTER["wait_replicas"]: each enqueue returns once replicas hold it, as async_task
        self.waits = {"wait_replicas": conf.wait_replicas, "wait_timeout": conf.wait_timeout}
        self.closer = _closing(self)
        """Closes the site's connections when its loop shuts down (see :func:`site`)."""

    async def close(self) -> None:
        await self.notifier.close()
        await self.client.aclose()

    def queue(self, name: str) -> AsyncQueue | AsyncShardedQueue:
        """``name``'s queue; one ``Q_CLUSTER`` serves in its ``shards``."""
        found = self.queues.get(name)
        if found is None:
            if name in self.served and self.shards > 1:
                found = AsyncShardedQueue(self.client, name, self.shards, **self.waits)
            else:
                found = AsyncQueue(self.client, name, **self.waits)
            self.queues[name] = found
        return found


sites: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Site] = weakref.WeakKeyDictionary()


@on_change
def _forget() -> None:
    sites.clear()  # their closers close their clients in their loops, once collected


def _client(conf: QSettings) -> Any:
    if conf.django_redis:
        from django_redis import get_redis_connection

        kwargs = dict(get_redis_connection(conf.django_redis).connection_pool.connection_kwargs)
        kwargs.pop("connection_class", None)
        return async_client(**kwargs)
    if conf.redis_url is not None:
        return async_client(conf.redis_url, socket_timeout=conf.producer_timeout)
    return async_client(**{"socket_timeout": conf.producer_timeout, **dict(conf.redis_kwargs)})


def site() -> Site:
    """The running loop's site, made on its first call."""
    loop = asyncio.get_running_loop()
    found = sites.get(loop)
    if found is None:
        found = sites[loop] = Site(get_settings())
        # The loop knows the site's closer from its first step (an async generator's first
        # iteration registers it with the running loop): asyncio.run(), or any loop shut
        # down with shutdown_asyncgens(), closes it, and so the site's connections, in the
        # loop before the loop closes (otherwise each loop's sockets stayed open until
        # collected, and were then closed from a closed loop, with ResourceWarnings).
        try:
            found.closer.asend(None).send(None)
        except StopIteration:
            pass
    return found


async def _closing(closed: Site) -> Any:
    try:
        yield
    finally:
        for loop, found in list(sites.items()):
            if found is closed:  # the site refers to its loop: the weak key never died alone
                del sites[loop]
        await closed.close()


async def key_check(at: Site, codec: Codec, queue: str) -> None:
    """The sync async_task's key check, reading the clusters' statuses on this loop's
    client."""
    statuses = functools.partial(live_clusters, at.client, get_settings().queue)
    await connection.key_watch().acheck(codec, statuses, queue)


async def announce(bus: EventBus, events: list[TaskEnqueued]) -> None:
    """Emit ``events`` on ``bus`` in asgiref's thread (receivers may use the ORM)."""

    def emit() -> None:
        for event in events:
            bus.emit(event)

    await sync_to_async(emit, thread_sensitive=True)()
