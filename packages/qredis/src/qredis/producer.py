"""Producer: enqueue tasks and read their results without Django (``qcore`` + ``qredis`` only).

::

    from qredis import Producer

    q = Producer("redis://localhost:6379/0")   # signing secret from $Q_SECRET_KEY
    task_id = q.enqueue("math.copysign", 2, -1, hook="myapp.hooks.done")
    q.result(task_id, wait=5)                   # -> -2.0, waiting up to 5 seconds
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import redis

from qcore import (
    ChainState,
    Codec,
    EventBus,
    TaskMessage,
    TaskResult,
    build_message,
    cancel,
    chain_messages,
    codec_for,
    enqueue_many,
    iter_messages,
    send_iter,
    send_message,
    start_chain,
)
from qredis.connection import PRODUCER_RETRY_FOR, PRODUCER_SOCKET_TIMEOUT, producer_kwargs
from qredis.keywatch import KEY_CHECK_EVERY, KeyWatch
from qredis.results import DEFAULT_RESULT_TTL, RedisResultStore
from qredis.shards import ShardedQueue
from qredis.status import RedisStatusBoard
from qredis.transport import RedisTransport

__all__ = ["Producer"]

TaskFunc = Callable[..., Any] | str


class Producer:
    """Enqueues tasks on a Redis queue and reads their records from the Redis result store.

    ``secret`` signs payloads (default ``$Q_SECRET_KEY``; the cluster must use the same one);
    ``codec`` replaces the codec outright. ``namespace`` names the result store the cluster
    saves into. ``events``: a ``qcore.EventBus`` told about each task enqueued
    (``TaskEnqueued``). Connection parameters as for :class:`~qredis.RedisTransport`; the
    transport and the store share one pool. A producer does not wait long for a Redis it
    cannot reach: a call raises :class:`~qredis.TransportConnectionError` after about
    ``retry_for`` seconds when Redis refuses or drops the connection, ``socket_timeout`` when
    it never answers.

    ``wait_replicas``: each enqueue returns only once that many replicas of the Redis master
    hold the tasks (``WAIT``, at most ``wait_timeout`` seconds, else
    :class:`~qredis.ReplicationTimeout`), so a failover (Sentinel, Redis Cluster) cannot lose
    them; 0 (the default) does not wait. See ``docs/deployment/redis-sentinel.md``.

    After its first enqueue, and then at most every ``key_check_every`` seconds (0: never),
    the producer reads the status board of ``status_namespace`` (where its clusters publish:
    ``qcluster run --status-namespace``) and logs one warning, ``producer.key_not_accepted``,
    when no live cluster of its queue accepts its signing key (:class:`~qredis.KeyWatch`).

    ``shards``: the queue's shard count (:class:`~qredis.ShardedQueue`): each task goes to the
    shard its id hashes to. The first enqueue checks it against the count kept in Redis and
    refuses another with a :class:`~qcore.ConfigError` naming both.
    """

    def __init__(
        self,
        url: str | None = None,
        queue: str = "default",
        *,
        secret: str | bytes | None = None,
        connection: redis.Redis | None = None,
        pool: redis.ConnectionPool | None = None,
        namespace: str = "default",
        codec: Codec | None = None,
        max_attempts: int = 3,
        result_ttl: float = DEFAULT_RESULT_TTL,
        events: EventBus | None = None,
        retry_for: float = PRODUCER_RETRY_FOR,
        socket_timeout: float = PRODUCER_SOCKET_TIMEOUT,
        wait_replicas: int = 0,
        wait_timeout: float = 2.0,
        status_namespace: str = "default",
        key_check_every: float = KEY_CHECK_EVERY,
        shards: int = 1,
        **redis_kwargs: Any,
    ) -> None:
        self.codec = codec if codec is not None else codec_for(secret)
        self.events = events
        if connection is None and pool is None:
            redis_kwargs = producer_kwargs(
                redis_kwargs, retry_for=retry_for, socket_timeout=socket_timeout
            )
        conn: dict[str, Any] = {"url": url, "connection": connection, "pool": pool, **redis_kwargs}
        self.transport: RedisTransport | ShardedQueue = RedisTransport(
            queue,
            max_attempts=max_attempts,
            wait_replicas=wait_replicas,
            wait_timeout=wait_timeout,
            **conn,
        ).sharded(shards)
        self.store = RedisResultStore(namespace=namespace, ttl=result_ttl, codec=self.codec, **conn)
        self.board = RedisStatusBoard(namespace=status_namespace, **conn)
        self.key_watch = KeyWatch(self.board, queue, every=key_check_every)

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
        """The message :meth:`enqueue` would send (for callers that batch or inspect)."""
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

    def enqueue(
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
        """Queue ``func(*args, **kwargs)``; returns the task id. One Redis round trip.

        ``func`` and ``hook`` are callables or dotted paths. ``timeout`` (seconds), ``save``,
        ``max_attempts``, ``eta`` (epoch seconds), ``countdown`` (seconds from now) and
        ``priority`` (-100 to 100, higher runs first; 0 by default) are Q's options, also
        accepted in ``q_options`` (which wins; it also takes ``task_name``), so
        a task may use those names for its own keyword arguments.

        Retries after an exception: ``retries`` (further runs), ``retry_backoff`` (seconds
        before the first, doubling), ``retry_backoff_max``, ``retry_jitter`` and ``retry_on``
        (exception classes or dotted paths; default any Exception); unset ones take the
        cluster's settings.

        ``q_options={"unique": True | "<key>", "unique_for": seconds}``: while a task of the
        same key (default: func and arguments) is queued, delayed or running, the first one's
        id is returned and nothing is queued.
        """
        message = build_message(
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
        return self.send(message)

    def send(self, message: TaskMessage) -> str:
        """Sign and queue a prepared message (from :meth:`message` or ``qcore.build_message``);
        returns its id (for a unique task already live: that task's id)."""
        task_id = send_message(self.transport, self.codec, message, self.events)
        self.key_watch.check(self.codec)
        return task_id

    def enqueue_many(
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
        """Queue ``func(*call)`` for each element of ``calls`` (a non-tuple element is one
        argument), in all-or-nothing chunks, at ``priority``; returns the ids in order.

        To send a batch again safely (after a crash or an error), fix its ids: ``task_ids``
        (one per call, 32 hex digits) or ``idempotency_key`` (ids derived from it and each
        call's position). Tasks whose ids are queued, running or completed (within the
        cluster's replay window, the result TTL by default) are skipped, so none runs twice.
        """
        ids = enqueue_many(
            self.transport,
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
        self.key_watch.check(self.codec)
        return ids

    def chain(
        self,
        chain: Sequence[Any],
        group: str | None = None,
        *,
        stop_on_failure: bool = True,
        q_options: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """Run ``chain`` (callables, dotted paths or ``(func, args, kwargs)`` tuples) link after
        link; returns the links' task ids, in order. Every link belongs to ``group`` (a new
        one unless given; the chain's id for :meth:`chain_state`). The next link is queued by
        the step that acks the one before it, after its record is saved; a failed link stops
        the chain unless ``stop_on_failure=False``. ``q_options`` apply to every link.
        """
        chain_id, messages = chain_messages(chain, group=group, q_options=q_options)
        start_chain(
            self.transport,
            self.codec,
            chain_id,
            messages,
            stop_on_failure=stop_on_failure,
            events=self.events,
        )
        self.key_watch.check(self.codec)
        return [m.id for m in messages]

    def iterate(
        self,
        func: TaskFunc,
        args_iter: Iterable[Any],
        group: str | None = None,
        *,
        q_options: Mapping[str, Any] | None = None,
    ) -> str:
        """Queue ``func(*args)`` for each element of ``args_iter`` (django-q2's ``async_iter``;
        a non-tuple element is one argument); returns the iteration's id. Once every call has
        finished, one record is saved under that id: ``result`` is the list of results in the
        order of the arguments (``fetch(id, wait)`` / ``result(id, wait)``)."""
        iter_id, messages = iter_messages(func, args_iter, group=group, q_options=q_options)
        send_iter(self.transport, self.codec, messages, self.events)
        self.key_watch.check(self.codec)
        return iter_id

    def chain_state(self, group: str) -> ChainState | None:
        """Where the chain of ``group`` is: ``length``, ``done``, ``state`` (``"running"``,
        ``"done"``, ``"stopped"``), ``stopped_at``; None for no such chain."""
        return self.transport.chain_state(group)

    def cancel(self, task_id: str, terminate: bool = False) -> str:
        """Cancel a task that has not run: it never runs, and ends as a Failure "Cancelled"
        with its hook. Returns ``"queued"`` or ``"delayed"`` (where it was). With
        ``terminate=True`` a running task's worker is killed (and replaced, as after a
        timeout): ``"terminating"``. Raises :class:`~qcore.TaskRunning` for a running task
        without ``terminate``, :class:`~qcore.UnknownTask` for an id that is not queued,
        delayed or running (one that finished already says so)."""
        return cancel(self.transport, self.codec, task_id, terminate=terminate, store=self.store)

    def fetch(self, task_id: str, wait: float = 0) -> TaskResult | None:
        """The task's record (by id or humanized name), or None.

        ``wait`` is in **seconds** (unlike qdjango's milliseconds): 0 checks once, a negative
        value waits forever; the wait is woken by Redis when the record is saved.
        """
        if wait == 0:
            return self.store.get(task_id)
        return self.store.wait(task_id, wait)

    def result(self, task_id: str, wait: float = 0) -> Any:
        """The task's result (for a failure: the error text), or None. ``wait`` as in
        :meth:`fetch`, in seconds."""
        record = self.fetch(task_id, wait)
        return None if record is None else record.result

    def queue_size(self) -> int:
        """Tasks waiting in the queue."""
        return self.transport.queue_size()

    def close(self) -> None:
        """Give back the connections this producer opened."""
        self.transport.close()
        self.store.close()
        self.board.close()

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
