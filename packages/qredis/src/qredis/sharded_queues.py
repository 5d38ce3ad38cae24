"""Several sharded queues served by one cluster (issue 15): :class:`ShardedQueues` is
:class:`~qredis.RedisQueues`'s order (strict, or by weight) over one
:class:`~qredis.ShardedQueue` per queue, every queue in the same number of shards.

Each queue keeps what its :class:`~qredis.ShardedQueue` does: its tasks placed by id, its
shard count kept in Redis and checked at start-up (per queue: another count stored for any of
them refuses the cluster), the fetch rotating over its shards, its acks marking the tasks held
off their id's shard, its reaper pass crossing its shards. This class only chooses the queue:
a fetch takes from the queues in this fetch's order (each from its shards in rotation),
topping a batch up from the next queue; an idle consumer blocks on every shard's marker of
every queue at once on one Redis server, and on a Redis Cluster (one node, one slot per
blocking call) on its home shard of the first queue in order for at most ``poll`` seconds,
then looks at everything again. A delivery is acked, retried or dead-lettered by the queue
whose shard it names.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import TypeVar, cast

from qcore import ConfigError, Delivery, Reaped
from qredis.fanout import _soonest, beat_alike, reap_alike, wait_on_home
from qredis.queues import RedisQueues, _grab
from qredis.shards import ShardedQueue
from qredis.transport import RedisTransport

__all__ = ["ShardedQueues"]

T = TypeVar("T")


class ShardedQueues(RedisQueues):
    """The queues of ``members`` (one :class:`~qredis.ShardedQueue` each, all with the same
    number of shards) served in strict order or in proportion to ``weights``.

    Build it with :meth:`RedisQueues.sharded`. Picklable, as :class:`RedisQueues` is.
    """

    def __init__(
        self, members: Sequence[ShardedQueue], weights: Sequence[int] | None = None
    ) -> None:
        counts = {m.shards for m in members}
        if len(counts) > 1:
            raise ConfigError(
                f"every queue of a cluster is sharded alike, not {[m.shards for m in members]!r}"
            )
        # FanOut and RedisQueues call on each member only what a Transport has, which a
        # ShardedQueue is: what they do on every queue, each member does on its shards.
        super().__init__(cast(Sequence[RedisTransport], members), weights)
        self._members = list(members)
        self._member_of = {s.queue: m for m in members for s in m.transports}

    def __repr__(self) -> str:
        return f"ShardedQueues({self.queue!r}, shards={self.shards}, url={self.url!r})"

    @property
    def shards(self) -> int:
        """How many shards each queue has."""
        return self._members[0].shards

    def sharded(self, shards: int, poll: float = 0.25) -> ShardedQueues:
        """These queues themselves, for their own count (another is refused)."""
        return same_count(self, self.shards, shards)

    def _ordered(self) -> list[ShardedQueue]:
        return cast(list[ShardedQueue], self._order())

    # -- fetch ------------------------------------------------------------------------------

    def fetch(
        self,
        consumer: str,
        count: int = 1,
        timeout: float = 0.0,
        *,
        replayed: list[str] | None = None,
    ) -> list[Delivery]:
        """Up to ``count`` ready tasks, from the queues in this fetch's order (each from its
        shards in rotation); blocks up to ``timeout`` s (see the module's docstring)."""
        order = self._ordered()
        got, next_due = _take(order, consumer, count, replayed)
        if got or not timeout > 0:
            return got
        first = order[0]
        home = first.transports[zlib.crc32(consumer.encode()) % first.shards]
        home._ready()
        markers = (
            (home.keys.marker,)
            if home._cluster
            else tuple(s.keys.marker for m in self._members for s in m.transports)
        )
        return wait_on_home(
            home,
            consumer,
            count,
            timeout,
            markers,
            first.poll,
            next_due,
            lambda: _take(order, consumer, count, replayed),
            replayed,
        )

    # -- recovery: one deadline for every shard of every queue ---------------------------------

    def heartbeat(self, consumers: Iterable[str], ttl: float) -> None:
        """The same deadline on every shard of every queue, so a consumer that stops beating
        expires everywhere at once (see :func:`~qredis.fanout.beat_alike`)."""
        beat_alike(self._shards(), consumers, ttl)

    def reap(self) -> Reaped:
        """Every queue's pass, the others passed again once one reaped a consumer (see
        :func:`~qredis.fanout.reap_alike`), every shard of every queue scanned in one round
        trip."""
        return reap_alike(self._shards())

    def _shards(self) -> list[RedisTransport]:
        return [s for m in self._members for s in m.transports]

    def _owner_sites(self) -> list[RedisTransport]:
        return [s for m in self._members for s in m._owner_sites()]

    # -- finishing: by the queue whose shard the delivery names ------------------------------

    def _owner(self, delivery: Delivery) -> RedisTransport:
        found = self._member_of.get(delivery.queue)
        if found is None:
            # Rebuilt without its queue (the sentinel's, from a worker's slot): the queue one of
            # whose shards holds its token (ids are unique across queues).
            found = next(
                (m for m in self._members if any(_holds(s, delivery) for s in m.transports)),
                self._members[0],
            )
        return cast(RedisTransport, found)

    def ack(self, deliveries: Iterable[Delivery]) -> list[bool]:
        """Ack each delivery on its queue (which acks on each shard, see
        :meth:`ShardedQueue.ack`)."""
        batch = list(deliveries)
        out = [False] * len(batch)
        for owner, idx in self._by_owner(batch):
            for i, ok in zip(idx, owner.ack([batch[i] for i in idx])):
                out[i] = ok
        return out

    def ack_links(
        self, deliveries: Iterable[Delivery], links: Sequence[tuple[str, int, bool] | None]
    ) -> list[bool]:
        """:meth:`ack` with chains' next links, each delivery on its own queue."""
        batch, chained = list(deliveries), list(links)
        out = [False] * len(batch)
        for owner, idx in self._by_owner(batch):
            acked = owner.ack_links([batch[i] for i in idx], [chained[i] for i in idx])
            for i, ok in zip(idx, acked):
                out[i] = ok
        return out


def _take(
    order: Sequence[ShardedQueue], consumer: str, count: int, replayed: list[str] | None
) -> tuple[list[Delivery], float | None]:
    """What is ready now, from the queues in ``order`` (each from its shards in rotation, as
    its own fetch takes them) until ``count``; and the soonest delayed task's wait."""
    got: list[Delivery] = []
    soonest: float | None = None
    for m in order:
        m._check()
        more, due = _grab(m._order(), consumer, count - len(got), replayed)
        got += more
        soonest = _soonest(soonest, due)
        if len(got) >= count:
            break
    return got, soonest


def _holds(shard: RedisTransport, delivery: Delivery) -> bool:
    return bool(shard.client.hexists(shard.keys.tokens, delivery.task_id))


def same_count(sharded: T, count: int, asked: int) -> T:
    """``sharded`` (spread over ``count`` shards) when ``asked`` is that count: what is sharded
    already is not sharded again."""
    if asked != count:
        raise ConfigError(f"{sharded!r} has {count} shards, not {asked}")
    return sharded
