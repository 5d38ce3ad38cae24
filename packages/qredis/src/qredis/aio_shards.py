"""The asyncio producer's sharded queue: each task on its id's shard, as
:class:`qredis.ShardedQueue` places it (see :mod:`qredis.shards`), through one
:class:`~qredis.aio.AsyncQueue` per shard (concurrent enqueues of one shard still share one
script call)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from qcore import ChainState, UnknownTask
from qredis.aio import AsyncQueue
from qredis.aio_bulk import checked_items
from qredis.connection import redis_errors
from qredis.keys import QueueKeys
from qredis.placement import check_count, count_mismatch, shard_of, shard_queues

__all__ = ["AsyncShardedQueue"]


class AsyncShardedQueue:
    """The producing half of a sharded queue, awaited (``qcore.AsyncTransport``). The first
    enqueue checks ``shards`` against the count kept in Redis (written when none is) and
    refuses another with a :class:`~qcore.ConfigError` naming both."""

    def __init__(self, client: Any, queue: str, shards: int, **options: Any) -> None:
        self._client = client
        self._name = queue
        self._count = check_count(shards)
        # options: AsyncQueue's (wait_replicas, wait_timeout), the same for each shard
        self._queues = [AsyncQueue(client, n, **options) for n in shard_queues(queue, shards)]
        self._where = self._queues[0]._where
        self._checked: asyncio.Future[None] | None = None

    @property
    def queue(self) -> str:
        return self._name

    @property
    def shards(self) -> int:
        return self._count

    def shard(self, task_id: str) -> AsyncQueue:
        """The shard where ``task_id`` is enqueued."""
        return self._queues[shard_of(task_id, self._count)]

    async def _check(self) -> None:
        key = QueueKeys.for_queue(self._name).shards
        with redis_errors(self._where):
            stored = await self._client.get(key)
            if stored is None:
                await self._client.set(key, self._count, nx=True)
                stored = await self._client.get(key)
        if stored is not None and int(stored) != self._count:
            raise count_mismatch(self._name, key, int(stored), self._count, "this producer")

    async def enqueue(
        self,
        task_id: str,
        payload: bytes,
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> None:
        """Queue on the id's shard (as :meth:`AsyncQueue.enqueue`)."""
        if not isinstance(task_id, str) or not task_id:
            raise TypeError(f"task_id must be a non-empty string without NUL, not {task_id!r}")
        await self._counted()
        await self.shard(task_id).enqueue(
            task_id, payload, delay=delay, max_attempts=max_attempts, priority=priority
        )

    async def _counted(self) -> None:
        if self._checked is None or (self._checked.done() and self._checked.exception()):
            # Concurrent first enqueues wait for one check.
            self._checked = asyncio.ensure_future(self._check())
        await asyncio.shield(self._checked)

    async def enqueue_many(self, items: Iterable[tuple[str, bytes]], **options: Any) -> int:
        """Each task on its id's shard (as :meth:`AsyncQueue.enqueue_many`, per shard)."""
        batch, groups = await self._grouped(items, options)
        return sum(
            [
                await self._queues[shard].enqueue_many([batch[n] for n in positions], **options)
                for shard, positions in groups.items()
            ]
        )

    async def enqueue_absent(
        self, items: Iterable[tuple[str, bytes]], **options: Any
    ) -> list[bool]:
        """Each task on its id's shard, where it would be known (as
        :meth:`AsyncQueue.enqueue_absent`); the flags in the order of ``items``."""
        batch, groups = await self._grouped(items, options)
        out = [False] * len(batch)
        for shard, positions in groups.items():
            chunk = [batch[n] for n in positions]
            for n, ok in zip(positions, await self._queues[shard].enqueue_absent(chunk, **options)):
                out[n] = ok
        return out

    async def _grouped(
        self, items: Iterable[tuple[str, bytes]], options: dict[str, Any]
    ) -> tuple[list[tuple[str, bytes]], dict[int, list[int]]]:
        """The items, checked before anything is sent, and their positions by shard."""
        batch = checked_items(items, options.get("max_attempts"), options.get("priority", 0))[2]
        await self._counted()
        groups: dict[int, list[int]] = {}
        for n, (task_id, _) in enumerate(batch):
            groups.setdefault(shard_of(task_id, self._count), []).append(n)
        return batch, groups

    async def enqueue_unique(self, task_id: str, payload: bytes, **options: Any) -> str:
        """On the lock's shard (every producer must find the lock in one place), the id
        marked known on its own shard first, as :meth:`qredis.ShardedQueue.enqueue_unique`."""
        await self._counted()
        where = self.shard(str(options.get("lock", task_id)))
        await self._mark_away([task_id], where)
        return await where.enqueue_unique(task_id, payload, **options)

    async def start_chain(
        self, chain_id: str, items: Sequence[tuple[str, bytes, int | None]], **options: Any
    ) -> bool:
        """On the chain id's shard (its links follow there), the links' ids marked known on
        their own shards first, as :meth:`qredis.ShardedQueue.start_chain`."""
        await self._counted()
        where = self.shard(chain_id)
        await self._mark_away([item[0] for item in items], where)
        return await where.start_chain(chain_id, items, **options)

    async def chain_state(self, chain_id: str) -> ChainState | None:
        return await self.shard(chain_id).chain_state(chain_id)

    async def _mark_away(self, task_ids: Iterable[str], where: AsyncQueue) -> None:
        """Mark done, on its id's shard, each task that lives on ``where`` instead (see
        :func:`qredis.placement.mark_away`): a copy sent there is then refused as a replay."""
        away: dict[int, list[str]] = {}
        for task_id in task_ids:
            home = shard_of(task_id, self._count)
            if self._queues[home] is not where:
                away.setdefault(home, []).append(task_id)
        for home, ids in away.items():
            await self._queues[home].mark_done(ids)

    async def cancel(self, task_id: str, twin: Any, *, terminate: bool = False) -> str:
        """Cancel a task on its shard (the id's, else whichever holds it), as
        :meth:`qredis.ShardedQueue.cancel`."""
        home = self.shard(task_id)
        for q in (home, *(q for q in self._queues if q is not home)):
            try:
                return await q.cancel(task_id, twin, terminate=terminate)
            except UnknownTask:
                continue
        raise UnknownTask(f"no task {task_id!r} is queued, delayed or running in {self._name}")

    async def queue_size(self) -> int:
        """Tasks ready to run, on every shard."""
        return sum([await q.queue_size() for q in self._queues])

    async def payload(self, task_id: str) -> bytes | None:
        """The signed payload stored under ``task_id``, on its shard (else any)."""
        home = self.shard(task_id)
        for q in (home, *(q for q in self._queues if q is not home)):
            found = await q.payload(task_id)
            if found is not None:
                return found
        return None
