"""Producer: enqueue tasks and read their results without Django (``qcore`` + ``qredis`` only).

::

    from qredis import Producer

    q = Producer("redis://localhost:6379/0")   # signing secret from $Q_SECRET_KEY
    task_id = q.enqueue("math.copysign", 2, -1, hook="myapp.hooks.done")
    q.result(task_id, wait=5)                   # -> -2.0, waiting up to 5 seconds
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis

from qcore import (
    Codec,
    EventBus,
    TaskMessage,
    TaskResult,
    build_message,
    codec_for,
    enqueue_many,
    send_message,
)
from qredis.connection import PRODUCER_RETRY_FOR, PRODUCER_SOCKET_TIMEOUT, producer_kwargs
from qredis.results import DEFAULT_RESULT_TTL, RedisResultStore
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
        **redis_kwargs: Any,
    ) -> None:
        self.codec = codec if codec is not None else codec_for(secret)
        self.events = events
        if connection is None and pool is None:
            redis_kwargs = producer_kwargs(
                redis_kwargs, retry_for=retry_for, socket_timeout=socket_timeout
            )
        conn: dict[str, Any] = {"url": url, "connection": connection, "pool": pool, **redis_kwargs}
        self.transport = RedisTransport(queue, max_attempts=max_attempts, **conn)
        self.store = RedisResultStore(namespace=namespace, ttl=result_ttl, codec=self.codec, **conn)

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
        q_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> str:
        """Queue ``func(*args, **kwargs)``; returns the task id. One Redis round trip.

        ``func`` and ``hook`` are callables or dotted paths. ``timeout`` (seconds), ``save``,
        ``max_attempts``, ``eta`` (epoch seconds) or ``countdown`` (seconds from now) are Q's
        options, also accepted in ``q_options`` (which wins; it also takes ``task_name``), so
        a task may use those names for its own keyword arguments.
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
            q_options=q_options,
        )
        send_message(self.transport, self.codec, message, self.events)
        return message.id

    def send(self, message: TaskMessage) -> None:
        """Sign and queue a prepared message (from :meth:`message` or ``qcore.build_message``)."""
        send_message(self.transport, self.codec, message, self.events)

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
    ) -> list[str]:
        """Queue ``func(*call)`` for each element of ``calls`` (a non-tuple element is one
        argument), in all-or-nothing chunks; returns the ids in order."""
        return enqueue_many(
            self.transport,
            self.codec,
            func,
            calls,
            hook=hook,
            group=group,
            timeout=timeout,
            save=save,
            max_attempts=max_attempts,
            events=self.events,
        )

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

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
