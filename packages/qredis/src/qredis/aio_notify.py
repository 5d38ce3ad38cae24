"""Waiting for results under asyncio (:class:`AsyncNotifier`): one subscription to a result
channel per producer (or per event loop, for :mod:`qdjango.aio`), no thread and no connection
per waiter; each wakes when a notice names its task."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis

from qredis.aio_queue import _where
from qredis.connection import redis_errors
from qredis.keys import ResultKeys

__all__ = ["AsyncNotifier"]

T = TypeVar("T")

_RECHECK = 5.0  # as the sync notifier: a notice lost in a reconnect costs at most this


class AsyncNotifier:
    """One subscription to a namespace's result channel, shared by every waiter of a loop."""

    def __init__(self, client: aioredis.Redis, namespace: str = "default") -> None:
        self._client = client
        self._channel = ResultKeys.for_namespace(namespace).channel
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._any: set[asyncio.Event] = set()
        self._listener: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._where = _where(client)

    async def wait_for(
        self,
        key: str,
        timeout: float | None,
        check: Callable[[], Awaitable[T | None]],
        *,
        any_message: bool = False,
    ) -> T | None:
        """``await check()`` until it finds something or ``timeout`` seconds pass (None or
        negative: forever); re-checked on each notice naming ``key`` (any notice with
        ``any_message``) and at least every 5 s."""
        found = await check()
        if found is not None or timeout == 0:
            return found
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        event = asyncio.Event()
        bucket = self._any if any_message else self._waiters.setdefault(key, set())
        bucket.add(event)
        try:
            await self._subscribed()
            while True:
                event.clear()
                found = await check()  # after the subscription: a save before it is seen here
                if found is not None:
                    return found
                left = _RECHECK if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(left, _RECHECK))
        finally:
            bucket.discard(event)
            if not any_message and not bucket:
                self._waiters.pop(key, None)

    async def _subscribed(self) -> None:
        if self._listener is None or self._listener.done():
            self._ready = asyncio.Event()
            self._listener = asyncio.ensure_future(self._listen(self._ready))
        assert self._ready is not None
        ready = asyncio.ensure_future(self._ready.wait())
        done, _ = await asyncio.wait({ready, self._listener}, return_when=asyncio.FIRST_COMPLETED)
        if self._listener in done:
            ready.cancel()
            self._listener.result()  # raises what stopped it (Redis unreachable)

    async def _listen(self, ready: asyncio.Event) -> None:
        with redis_errors(self._where):
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                while True:
                    msg = await pubsub.get_message(timeout=_RECHECK)
                    if msg is None:
                        continue
                    if msg["type"] == "subscribe":
                        ready.set()
                    elif msg["type"] == "message":
                        self._wake(msg["data"])
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _wake(self, data: bytes) -> None:
        for event in self._any:
            event.set()
        for task_id in data.split():
            for event in self._waiters.get(task_id.decode(), ()):
                event.set()

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(BaseException):
                await listener
