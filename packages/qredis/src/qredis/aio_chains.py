"""The asyncio queue's chains (part of :class:`~qredis.aio.AsyncQueue`), on the sync
transport's own Lua: ``chain_start.lua`` (see :mod:`qcore.chains`) and ``mark_done.lua`` (a
sharded queue's marks, see :mod:`qredis.placement`), so what they store is what
:class:`~qredis.RedisTransport` stores and a cluster acks. (Unique tasks are batched with the
enqueues: :meth:`qredis.aio.AsyncQueue.enqueue_unique`.)"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from qcore import ChainState
from qredis.base import DEFAULT_REPLAY_WINDOW, chunks, ms
from qredis.chains import _NUL, _levels, _limit
from qredis.connection import redis_errors
from qredis.keys import QueueKeys
from qredis.scripts import source

__all__ = ["AsyncChains"]


class AsyncChains:
    """``start_chain``, ``chain_state`` and ``mark_done``, awaited."""

    if TYPE_CHECKING:  # AsyncQueue's
        _client: aioredis.Redis
        _keys: QueueKeys
        _where: str

    replay_window = DEFAULT_REPLAY_WINDOW
    """Seconds :meth:`mark_done` marks an id done for (the sync transport's default)."""

    _scripts: dict[str, Any] | None = None

    def _keys_at(self, level: int) -> list[str]:
        """enqueue.lua's KEYS for a task of priority ``level``."""
        k = self._keys
        return [k.ready(level), k.msg, k.delayed, k.maxatt, k.levels, k.prio, k.marker]

    async def _run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """``lua/<name>.lua`` (registered on this client once), sent once more on a dropped
        connection: each of these scripts changes nothing when run again with the same
        arguments (see their headers)."""
        if self._scripts is None:
            self._scripts = {}
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self._client.register_script(source(name))
        with redis_errors(self._where):
            try:
                return await script(keys, args)
            except (RedisConnectionError, RedisTimeoutError):
                return await script(keys, args)

    async def start_chain(
        self,
        chain_id: str,
        items: Sequence[tuple[str, bytes, int | None]],
        *,
        stop_on_failure: bool = True,
        priorities: Sequence[int] | None = None,
    ) -> bool:
        """As :meth:`qredis.RedisTransport.start_chain`: store the links and queue the first
        in one step; False (nothing changes) when the chain exists already."""
        if not items:
            raise ValueError("a chain needs at least one link")
        levels = _levels(priorities, len(items))
        (first_id, first_payload, first_limit), rest = items[0], items[1:]
        args: list[Any] = [
            "1" if stop_on_failure else "0",
            len(items),
            first_id,
            first_payload,
            _limit(first_limit),
            levels[0],
        ]
        for (task_id, payload, limit), level in zip(rest, levels[1:]):
            args.append(task_id.encode() + _NUL + _limit(limit).encode() + _NUL + bytes(payload))
            args.append(level)
        keys = [*self._keys_at(levels[0]), self._keys.chain(chain_id)]
        return bool(await self._run("chain_start", keys, args))

    async def chain_state(self, chain_id: str) -> ChainState | None:
        """Where chain ``chain_id`` is, or None (no such chain, or it ended a day ago)."""
        with redis_errors(self._where):
            n, done, state, stopped = await self._client.hmget(
                self._keys.chain(chain_id), ["n", "done", "state", "stopped_at"]
            )
        if n is None:
            return None
        text = state.decode() if isinstance(state, bytes) else (state or "running")
        return ChainState(int(n), int(done or 0), text, None if stopped is None else int(stopped))

    async def mark_done(self, task_ids: Iterable[str]) -> None:
        """As :meth:`qredis.RedisTransport.mark_done`: the ids done here for
        :attr:`replay_window` (a sharded queue's task that lives on another shard)."""
        ids = list(task_ids)
        if not ids or self.replay_window <= 0:
            return
        for chunk in chunks(ids, 1000):
            await self._run("mark_done", [self._keys.done], [ms(self.replay_window), *chunk])
