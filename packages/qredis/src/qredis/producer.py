"""Producer: enqueue tasks and read their results without Django (``qcore`` + ``qredis`` only).

::

    from qredis import Producer

    q = Producer("redis://localhost:6379/0")   # signing secret from $Q_SECRET_KEY
    task_id = q.enqueue("math.copysign", 2, -1, hook="myapp.hooks.done")
    q.result(task_id, wait=5)                   # -> -2.0, waiting up to 5 seconds
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis

from qcore import Codec, TaskMessage, TaskResult, apply_q_options, codec_for, task_options
from qredis.results import DEFAULT_RESULT_TTL, RedisResultStore
from qredis.transport import RedisTransport

__all__ = ["Producer"]

TaskFunc = Callable[..., Any] | str


class Producer:
    """Enqueues tasks on a Redis queue and reads their records from the Redis result store.

    ``secret`` signs payloads (default ``$Q_SECRET_KEY``; the cluster must use the same one);
    ``codec`` replaces the codec outright. ``namespace`` names the result store the cluster
    saves into. Connection parameters as for :class:`~qredis.RedisTransport`; the transport and
    the store share one pool.
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
        **redis_kwargs: Any,
    ) -> None:
        self.codec = codec if codec is not None else codec_for(secret)
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
        name = None
        if q_options:
            given = {
                "hook": hook,
                "group": group,
                "timeout": timeout,
                "save": save,
                "max_attempts": max_attempts,
                "eta": eta,
                "countdown": countdown,
            }
            chosen = apply_q_options(q_options, given, kwargs)
            hook, group, name = chosen["hook"], chosen["group"], chosen.get("task_name")
            timeout, save, eta = chosen["timeout"], chosen["save"], chosen["eta"]
            max_attempts, countdown = chosen["max_attempts"], chosen["countdown"]
        options = task_options(
            timeout=timeout, save=save, max_attempts=max_attempts, eta=eta, countdown=countdown
        )
        return TaskMessage.new(
            func, args, kwargs, hook=hook, group=group, options=options, name=name
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
        options, also accepted in ``q_options`` (which wins), so a task may use those names
        for its own keyword arguments.
        """
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
            q_options=q_options,
            **kwargs,
        )
        self.send(message)
        return message.id

    def send(self, message: TaskMessage) -> None:
        """Sign and queue a prepared message."""
        opts = message.options
        delay = 0.0 if opts.eta is None else max(0.0, opts.eta - time.time())
        self.transport.enqueue(
            message.id,
            self.codec.encode_message(message),
            delay=delay,
            max_attempts=opts.max_attempts,
        )

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
        options = task_options(timeout=timeout, save=save, max_attempts=max_attempts)
        encode = self.codec.encode_message
        ids: list[str] = []
        items: list[tuple[str, bytes]] = []
        for call in calls:
            args = call if isinstance(call, tuple) else (call,)
            msg = TaskMessage.new(func, args, hook=hook, group=group, options=options)
            ids.append(msg.id)
            items.append((msg.id, encode(msg)))
        self.transport.enqueue_many(items, max_attempts=max_attempts)
        return ids

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
