"""The asyncio queue's bulk enqueues (part of :class:`~qredis.aio.AsyncQueue`), on the sync
transport's own Lua: ``enqueue_many`` sends enqueue.lua's body for each task (the batch script
concurrent enqueues share), ``enqueue_absent`` runs ``enqueue_absent.lua`` (see
:mod:`qredis.idempotent`), so a batch whose ids were fixed before sending can be sent again
after an error (a lost reply, a dropped connection) and no task runs twice."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from qcore import check_priority
from qredis.base import chunks, ms, positive_int
from qredis.connection import redis_errors
from qredis.idempotent import _check
from qredis.keys import QueueKeys
from qredis.scripts import source

__all__ = ["AsyncBulk", "checked_items"]


class AsyncBulk:
    """``enqueue_many`` and ``enqueue_absent``, awaited, in chunks of ``chunk_size`` tasks
    (each chunk one atomic script call, as on the sync transport). Every item is checked
    before anything is sent."""

    chunk_size = 1000

    if TYPE_CHECKING:  # AsyncQueue's
        _client: aioredis.Redis
        _keys: QueueKeys
        _where: str

        _wait: int

        async def _send(self, calls: list[list[Any]]) -> list[Any]: ...

        async def _waited(self, script: Any, keys: Sequence[str], args: Sequence[Any]) -> Any: ...

    _absent: Any = None

    async def enqueue_many(
        self,
        items: Iterable[tuple[str, bytes]],
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> int:
        """Queue each ``(task_id, payload)`` (``delay`` s ahead, if given) at ``priority``;
        returns how many were queued (an id already stored is left as it is)."""
        limit, level, batch = checked_items(items, max_attempts, priority)
        due = ms(delay) if delay > 0 else 0
        queued = 0
        for chunk in chunks(batch, self.chunk_size):
            replies = await self._send([[i, p, due, limit, level] for i, p in chunk])
            with redis_errors(self._where):  # an error reply as the error Q raises for it
                for reply in replies:
                    if isinstance(reply, Exception):
                        raise reply
                    queued += int(reply)
        return queued

    async def enqueue_absent(
        self,
        items: Iterable[tuple[str, bytes]],
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> list[bool]:
        """As :meth:`qredis.RedisTransport.enqueue_absent`: each task whose id is not queued,
        delayed, in flight or dead-lettered, nor completed within the cluster's replay window,
        is queued; True per task queued now, False per task skipped. A chunk whose connection
        dropped is sent once more (the script queues nothing twice); then the error is the
        caller's, who sends the whole batch again."""
        limit, level, batch = checked_items(items, max_attempts, priority)
        if self._absent is None:
            self._absent = self._client.register_script(source("enqueue_absent"))
        k = self._keys
        keys = (k.ready(level), k.msg, k.delayed, k.maxatt, k.levels, k.prio, k.marker, k.done)
        out: list[bool] = []
        with redis_errors(self._where):
            for chunk in chunks(batch, self.chunk_size):
                args: list[Any] = [ms(delay) if delay > 0 else 0, limit, level]
                for task_id, payload in chunk:
                    args += (task_id, payload)
                if self._wait:  # with the mark and WAIT on its connection (wait_replicas)
                    res = await self._waited(self._absent, keys, args)
                else:
                    try:
                        res = await self._absent(keys, args)
                    except (RedisConnectionError, RedisTimeoutError):
                        res = await self._absent(keys, args)
                out += [bool(x) for x in res]
        return out


def checked_items(
    items: Iterable[tuple[str, bytes]], max_attempts: int | None, priority: int
) -> tuple[str | int, int, list[tuple[str, bytes]]]:
    """The attempt limit and priority level a bulk enqueue sends, and its items, each checked
    (before anything is sent: nothing is queued half)."""
    limit: str | int = "" if max_attempts is None else positive_int("max_attempts", max_attempts)
    level = check_priority(priority) if priority or type(priority) is not int else 0
    batch = list(items)
    for item in batch:
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError(
                f"bulk enqueues take (task_id: str, payload: bytes) pairs, not {item!r}"
            )
        _check(*item)
    return limit, level, batch
