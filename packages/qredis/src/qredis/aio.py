"""asyncio producers on ``redis.asyncio``: the same messages, signing and Lua as the sync ones.

::

    from qredis.aio import Producer

    async with Producer("redis://localhost:6379/0") as q:   # secret from $Q_SECRET_KEY
        task_id = await q.enqueue("math.copysign", 2, -1)
        await q.result(task_id, wait=5)                      # -> -2.0

Concurrent enqueues share one connection: the calls made while the event loop runs one step
are sent as one script call (:class:`AsyncQueue`, in :mod:`qredis.aio_queue`), so 100
``gather``-ed enqueues cost one round trip. Waiting for results takes no thread and no
connection per waiter: one subscription per producer (:class:`AsyncNotifier`, in
:mod:`qredis.aio_notify`) wakes the waiters its notices name. Unique tasks, chains and
iterations run the sync transport's Lua (:mod:`qredis.aio_chains`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.sentinel import Sentinel as AsyncSentinel

from qcore import (
    ChainState,
    Codec,
    EventBus,
    TaskMessage,
    TaskResult,
    acancel,
    aenqueue_many,
    asend_iter,
    asend_message,
    astart_chain,
    build_message,
    chain_messages,
    codec_for,
    get_logger,
    humanize,
    iter_messages,
)
from qredis.aio_notify import AsyncNotifier
from qredis.aio_queue import AsyncQueue, _bytes, _opt_bytes
from qredis.connection import PRODUCER_SOCKET_TIMEOUT, redis_errors
from qredis.keys import ResultKeys
from qredis.keywatch import KEY_CHECK_EVERY, KeyWatch
from qredis.results import decode_record, looks_like_id, raw_id, records_in
from qredis.status import live_clusters
from qredis.topology import CLUSTER, SENTINEL, kind_of_url, parse_url

__all__ = ["AsyncNotifier", "AsyncQueue", "Producer", "async_client"]

TaskFunc = Callable[..., Any] | str

log = get_logger("qredis.aio")

MAX_CONNECTIONS = 10_000
"""Connections a producer's client may open at once (per node of a Redis Cluster)."""


def async_client(url: str | None = None, **redis_kwargs: Any) -> Any:
    """A ``redis.asyncio`` client with a producer's bounds (a Redis that never answers fails
    the call after ``socket_timeout``): redis-py's ``RedisCluster`` for a ``redis+cluster://``
    URL, a client of the master a Sentinel group names for ``redis+sentinel://`` (see
    :mod:`qredis.topology`), else a ``Redis``."""
    redis_kwargs.setdefault("socket_timeout", PRODUCER_SOCKET_TIMEOUT)
    redis_kwargs.setdefault("socket_connect_timeout", redis_kwargs["socket_timeout"])
    # Each waiter's check reads once on a connection of its own (enqueues share one): past
    # redis.asyncio's default of 100, the 101st concurrent wait would fail, not wait.
    redis_kwargs.setdefault("max_connections", MAX_CONNECTIONS)
    if url is None:
        return aioredis.Redis(**redis_kwargs)
    kind = kind_of_url(url)
    if kind == CLUSTER:
        params = parse_url(url)
        nodes = [ClusterNode(h, p) for h, p in params.pop("startup_nodes")]
        return aioredis.RedisCluster(startup_nodes=nodes, **params, **redis_kwargs)
    if kind == SENTINEL:
        params = parse_url(url)
        sentinel_kwargs = {k: redis_kwargs[k] for k in ("socket_timeout", "socket_connect_timeout")}
        for name in ("sentinel_password", "sentinel_username"):
            value = params.pop(name, None)
            if value is not None:
                sentinel_kwargs[name.removeprefix("sentinel_")] = value
        manager = AsyncSentinel(params.pop("sentinels"), sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
        return manager.master_for(params.pop("service_name"), **params, **redis_kwargs)
    return aioredis.Redis.from_url(url, **redis_kwargs)


class Producer:
    """:class:`qredis.Producer`, awaited: enqueue and read results from an event loop.

    Parameters as the sync producer's (``url`` or ``connection``: a ``redis.asyncio.Redis``);
    one client per producer, made in the loop that uses it. ``shards``: the queue's shard
    count (:class:`qredis.aio_shards.AsyncShardedQueue`; see :class:`qredis.ShardedQueue`).
    The signing key is checked as the sync producer's is (``status_namespace``,
    ``key_check_every``: :class:`~qredis.KeyWatch`), on this producer's client.
    ``wait_replicas``/``wait_timeout``: as the sync producer's, each enqueue (and
    ``enqueue_many``) returns once that many replicas hold its tasks, the mark's ``SET`` and
    ``WAIT`` sent in the same write as the batch (not on a Redis Cluster yet: a
    :class:`~qcore.ConfigError`); unique tasks wait too (sent in the same batches), chains
    and cancels do not, as on the sync producer.
    """

    def __init__(
        self,
        url: str | None = None,
        queue: str = "default",
        *,
        secret: str | bytes | None = None,
        connection: aioredis.Redis | None = None,
        namespace: str = "default",
        codec: Codec | None = None,
        events: EventBus | None = None,
        shards: int = 1,
        status_namespace: str = "default",
        key_check_every: float = KEY_CHECK_EVERY,
        wait_replicas: int = 0,
        wait_timeout: float = 2.0,
        **redis_kwargs: Any,
    ) -> None:
        from qredis.aio_shards import AsyncShardedQueue
        from qredis.placement import check_count

        self.codec = codec if codec is not None else codec_for(secret)
        self.events = events
        self._own = connection is None
        self.client = connection if connection is not None else async_client(url, **redis_kwargs)
        waits: dict[str, Any] = {"wait_replicas": wait_replicas, "wait_timeout": wait_timeout}
        self.queue: AsyncQueue | AsyncShardedQueue = (
            AsyncQueue(self.client, queue, **waits)
            if check_count(shards) == 1
            else AsyncShardedQueue(self.client, queue, shards, **waits)
        )
        self.notifier = AsyncNotifier(self.client, namespace)
        self._results = ResultKeys.for_namespace(namespace)
        self.key_watch = KeyWatch(None, queue, every=key_check_every)
        self._statuses = functools.partial(live_clusters, self.client, status_namespace)

    def message(
        self,
        func: TaskFunc,
        *args: Any,
        hook: TaskFunc | None = None,
        group: str | None = None,
        timeout: float | None = None,
        save: bool | None = None,
        max_attempts: int | None = None,
        eta: float | None = None,
        countdown: float | None = None,
        retries: int | None = None,
        retry_backoff: float | None = None,
        retry_backoff_max: float | None = None,
        retry_jitter: bool | None = None,
        retry_on: Any = None,
        priority: int | None = None,
        q_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> TaskMessage:
        """The message :meth:`enqueue` would send (:meth:`qredis.Producer.message`)."""
        return build_message(
            func,
            args,
            kwargs,
            hook=hook,
            group=group,
            timeout=timeout,
            save=save,
            max_attempts=max_attempts,
            eta=eta,
            countdown=countdown,
            retries=retries,
            retry_backoff=retry_backoff,
            retry_backoff_max=retry_backoff_max,
            retry_jitter=retry_jitter,
            retry_on=retry_on,
            priority=priority,
            q_options=q_options,
        )

    async def enqueue(
        self,
        func: TaskFunc,
        *args: Any,
        hook: TaskFunc | None = None,
        group: str | None = None,
        timeout: float | None = None,
        save: bool | None = None,
        max_attempts: int | None = None,
        eta: float | None = None,
        countdown: float | None = None,
        retries: int | None = None,
        retry_backoff: float | None = None,
        retry_backoff_max: float | None = None,
        retry_jitter: bool | None = None,
        retry_on: Any = None,
        priority: int | None = None,
        q_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> str:
        """Queue ``func(*args, **kwargs)``; returns the task id. The options of
        :meth:`qredis.Producer.enqueue`, ``q_options`` too: with ``{"unique": True | "<key>",
        "unique_for": seconds}``, while a task of the same key is queued, delayed or running,
        that task's id is returned and nothing is queued."""
        message = self.message(
            func,
            *args,
            hook=hook,
            group=group,
            timeout=timeout,
            save=save,
            max_attempts=max_attempts,
            eta=eta,
            countdown=countdown,
            retries=retries,
            retry_backoff=retry_backoff,
            retry_backoff_max=retry_backoff_max,
            retry_jitter=retry_jitter,
            retry_on=retry_on,
            priority=priority,
            q_options=q_options,
            **kwargs,
        )
        return await self.send(message)

    async def send(self, message: TaskMessage) -> str:
        """Sign and queue a prepared message; returns its id (for a unique task already
        live: that task's id)."""
        task_id = await asend_message(self.queue, self.codec, message, self.events)
        await self.key_watch.acheck(self.codec, self._statuses)
        return task_id

    async def enqueue_many(
        self,
        func: TaskFunc,
        calls: Iterable[Any],
        *,
        hook: TaskFunc | None = None,
        group: str | None = None,
        timeout: float | None = None,
        save: bool | None = None,
        max_attempts: int | None = None,
        priority: int | None = None,
        task_ids: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> list[str]:
        """Queue ``func(*call)`` for each element of ``calls``, as the sync producer's
        ``enqueue_many``; returns the ids in order. With ``task_ids`` or ``idempotency_key``
        the batch can be sent again after an error (or a crash) and no task runs twice."""
        ids = await aenqueue_many(
            self.queue,
            self.codec,
            func,
            calls,
            hook=hook,
            group=group,
            timeout=timeout,
            save=save,
            max_attempts=max_attempts,
            priority=priority,
            events=self.events,
            task_ids=task_ids,
            idempotency_key=idempotency_key,
        )
        await self.key_watch.acheck(self.codec, self._statuses)
        return ids

    async def chain(
        self,
        chain: Sequence[Any],
        group: str | None = None,
        *,
        stop_on_failure: bool = True,
        q_options: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """:meth:`qredis.Producer.chain`, awaited: the links (callables, dotted paths or
        ``(func, args, kwargs)`` tuples) run one after the other, each queued by the step that
        acks the one before it; returns the links' ids, in order."""
        chain_id, messages = chain_messages(chain, group=group, q_options=q_options)
        await astart_chain(
            self.queue,
            self.codec,
            chain_id,
            messages,
            stop_on_failure=stop_on_failure,
            events=self.events,
        )
        await self.key_watch.acheck(self.codec, self._statuses)
        return [m.id for m in messages]

    async def chain_state(self, group: str) -> ChainState | None:
        """Where the chain of ``group`` is (:meth:`qredis.Producer.chain_state`), or None."""
        return await self.queue.chain_state(group)

    async def iterate(
        self,
        func: TaskFunc,
        args_iter: Iterable[Any],
        group: str | None = None,
        *,
        q_options: Mapping[str, Any] | None = None,
    ) -> str:
        """:meth:`qredis.Producer.iterate`, awaited: ``func(*args)`` for each element of
        ``args_iter``; returns the iteration's id, under which one record with the list of
        results is saved once every call has finished."""
        iter_id, messages = iter_messages(func, args_iter, group=group, q_options=q_options)
        await asend_iter(self.queue, self.codec, messages, self.events)
        await self.key_watch.acheck(self.codec, self._statuses)
        return iter_id

    async def cancel(self, task_id: str, terminate: bool = False) -> str:
        """:meth:`qredis.Producer.cancel`, awaited: ``"queued"`` or ``"delayed"`` (it never
        runs, and ends as a Failure "Cancelled" with its hook), ``"terminating"`` with
        ``terminate=True`` for a running one; :class:`~qcore.TaskRunning` without it,
        :class:`~qcore.UnknownTask` for one not queued, delayed or running (one that finished
        already says so, from its record)."""
        return await acancel(
            self.queue, self.codec, task_id, terminate=terminate, record=lambda: self.get(task_id)
        )

    async def get(self, task_id: str) -> TaskResult | None:
        """The record saved in the Redis result store for an id or a name, or None (the
        store's layout: see :class:`qredis.RedisResultStore`)."""
        keys = self._results
        if looks_like_id(task_id):
            return await self._by_id(task_id)
        with redis_errors(self.queue._where):
            stored, indexed = await self.client.mget(keys.records(task_id), keys.name(task_id))
        found = [
            r for r in records_in(self.codec, _opt_bytes(stored), task_id) if r.name == task_id
        ]
        if indexed is not None:
            other = await self._by_id(_bytes(indexed).split(b" ", 1)[1].decode())
            if other is not None and other.name == task_id:
                found.append(other)
        return max(found, key=lambda r: r.started, default=None)

    async def _by_id(self, task_id: str) -> TaskResult | None:
        keys = self._results
        with redis_errors(self.queue._where):
            stored, legacy = await self.client.mget(
                keys.records(humanize(task_id)), keys.record(task_id)
            )
        found = records_in(self.codec, _opt_bytes(stored), task_id, raw_id(task_id))
        if found:
            return found[0]
        if legacy is None:
            return None
        return decode_record(self.codec, _bytes(legacy)[1:], task_id)

    async def fetch(self, task_id: str, wait: float = 0) -> TaskResult | None:
        """The task's record, or None; ``wait`` in seconds (negative: forever), woken by the
        store's notice, not by polling."""
        is_name = not (len(task_id) == 32 and all(c in "0123456789abcdef" for c in task_id))
        return await self.notifier.wait_for(
            task_id, wait, lambda: self.get(task_id), any_message=is_name
        )

    async def result(self, task_id: str, wait: float = 0) -> Any:
        """The task's result (a failure's error text), or None; ``wait`` as in :meth:`fetch`."""
        record = await self.fetch(task_id, wait)
        return None if record is None else record.result

    async def queue_size(self) -> int:
        return await self.queue.queue_size()

    async def close(self) -> None:
        """Stop the subscription and close the client this producer made."""
        await self.notifier.close()
        if self._own:
            await self.client.aclose()

    async def __aenter__(self) -> Producer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
