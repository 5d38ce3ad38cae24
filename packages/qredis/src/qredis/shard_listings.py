"""The listings and dead letters of a sharded queue taken across its shards: the next tasks
each shard's head first, the delayed due first, the queue's dead letters bounded and counted as
one queue's (part of :class:`~qredis.ShardedQueue`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qcore import DEAD_REASONS_LIMIT, count_reasons
from qredis.fanout import FanOut
from qredis.inspection import Waiting, _dead_info

__all__ = ["ShardListings"]


class ShardListings(FanOut):
    """Listings and dead letters across shards (part of :class:`~qredis.ShardedQueue`)."""

    def waiting(self, limit: int = 100) -> list[Waiting]:
        """The next tasks workers will take, each shard's head first, taken in turn."""
        lists = [t.waiting(limit) for t in self._transports]
        out = [w for turn in zip(*_padded(lists)) for w in turn if w is not None]
        return out[: max(0, limit)]

    def delayed(self, limit: int = 100) -> list[Waiting]:
        """The delayed tasks due first, on every shard."""
        found = [w for t in self._transports for w in t.delayed(limit)]
        found.sort(key=lambda w: w.due or 0.0)
        return found[: max(0, limit)]

    def remove_waiting(self, task_ids: Iterable[str]) -> list[str]:
        ids = list(task_ids)
        return [i for t in self._transports for i in t.remove_waiting(ids)]

    def trim_dead(self, max_age: float, keep: int) -> int:
        """Dead letters older than ``max_age`` go on every shard, then the oldest beyond the
        newest ``keep`` of the whole queue (``keep`` is a cap for the queue, not per shard)."""
        gone = sum(t.trim_dead(max_age, max(keep, t.dead_size())) for t in self._transports)
        excess = self.dead_size() - keep
        if excess <= 0:
            return gone
        oldest: list[tuple[float, int, str]] = []
        for n, t in enumerate(self._transports):
            client: Any = t.client
            with t._errors():
                pairs = client.zrange(t.keys.dead, 0, excess - 1, withscores=True)
            oldest += [(score, n, raw.decode()) for raw, score in pairs]
        oldest.sort()
        doomed: dict[int, list[str]] = {}
        for _, n, task_id in oldest[:excess]:
            doomed.setdefault(n, []).append(task_id)
        return gone + sum(self._transports[n].purge_dead(ids) for n, ids in doomed.items())

    def dead_reasons(self, limit: int = DEAD_REASONS_LIMIT) -> dict[str, int]:
        """The queue's newest ``limit`` dead letters (across shards) counted by the kind of
        their reason."""
        if limit <= 0:
            return {}
        newest: list[tuple[float, int, bytes]] = []
        for n, t in enumerate(self._transports):
            client: Any = t.client
            with t._errors():
                pairs = client.zrevrange(t.keys.dead, 0, limit - 1, withscores=True)
            newest += [(score, n, raw) for raw, score in pairs]
        newest.sort(reverse=True)
        chosen: dict[int, list[bytes]] = {}
        for _, n, raw in newest[:limit]:
            chosen.setdefault(n, []).append(raw)
        infos: list[Any] = []
        for n, ids in chosen.items():
            t = self._transports[n]
            client = t.client
            with t._errors():
                infos += client.hmget(t.keys.deadinfo, ids)
        return count_reasons(_dead_info(info)[0] for info in infos)

    def level_sizes(self) -> dict[int, int]:
        sizes: dict[int, int] = {}
        for t in self._transports:
            for level, n in t.level_sizes().items():
                sizes[level] = sizes.get(level, 0) + n
        return sizes


def _padded(lists: list[list[Waiting]]) -> list[list[Waiting | None]]:
    longest = max((len(x) for x in lists), default=0)
    return [[*x, *([None] * (longest - len(x)))] for x in lists]
