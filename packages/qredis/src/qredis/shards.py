"""Sharded queues (issue 15): one queue's tasks spread over N hash tags, so over several Redis
Cluster nodes.

:class:`ShardedQueue` is a ``qcore.Transport`` over one :class:`~qredis.RedisTransport` per
shard, as :class:`~qredis.RedisQueues` is over one per queue: every script still touches one
slot, the shard's.

- **Names.** Shard 0 is the queue itself (``{q:<name>}``), so tasks of an unsharded producer
  are still served. Shard ``i`` is ``<name>~<i>`` (or ``<name>~<i>.<k>``, the first ``k``
  that works), chosen so that each shard's slot falls in its own Nth of the slot space:
  with the equal slot ranges ``redis-cli --cluster create`` gives N masters, N shards land
  one per master.
- **Placement: by a hash of the task id** (CRC-32 mod N), not round robin: enqueue is
  idempotent per id, and a schedule's firing and a requeue rely on that, which needs one home
  per id; the id alone also finds a task to cancel or read without asking every shard. Ids
  are random (uuid4), so shards fill evenly. A unique task goes to its lock's shard, a
  chain's links and an iteration's records to the chain's or the iteration's id's shard,
  schedules and their firings to shard 0.
- **Replays.** A copy of a task sent through ``enqueue`` lands on its id's shard, whose fetch
  refuses it only if the id is marked done there: a task held on another shard (a link, a
  unique task, a firing, an unsharded producer's task) is marked on its id's shard too, when
  placed (links, unique tasks, firings) and before its ack.
- **Fetch.** Each fetch starts at the next shard (rotation) and tops its batch up from the
  following ones, so none is starved. Priority and FIFO hold within a shard; across shards a
  task waits at most one fetch per shard behind lower ones. An idle consumer blocks on its
  *home* shard's marker (a hash of its name): on one Redis server on every shard's marker at
  once; on a Redis Cluster, where a blocking command waits on one node and its keys must
  share a slot, on the home shard's only, for at most ``poll`` seconds, then it looks at the
  other shards. A task pushed on a shard with no idle consumer homed there waits up to
  ``poll`` (default 0.25 s) before an idle consumer takes it.
- **The count lives in Redis** (``{q:<name>}:shards``): the first sharded producer or any
  cluster writes it; a sharded queue, or a cluster, configured with another count is refused
  with a :class:`~qcore.ConfigError` naming both counts.

Recovery (heartbeats, release, the reaper), delayed tasks, dead letters and every size and
listing cover every shard (:mod:`qredis.fanout`, and :mod:`qredis.shard_listings` where the
shards are taken as one queue).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from qcore import ConfigError, Delivery, Reaped
from qcore.errors import UnknownTask
from qredis.fanout import _total, beat_alike, reap_alike, wait_on_home
from qredis.placement import check_shard_count, mark_away, shard_of, shard_queues
from qredis.queues import RedisQueues, _grab
from qredis.shard_listings import ShardListings
from qredis.transport import RedisTransport

__all__ = ["ShardedQueue"]


class ShardedQueue(ShardListings, RedisQueues):
    """One queue spread over ``len(shards)`` hash tags (see the module's docstring).

    Build it with :meth:`RedisTransport.sharded`. Picklable (each worker gets its own copy,
    with its own rotation).
    """

    def __init__(self, name: str, shards: Sequence[RedisTransport], poll: float = 0.25) -> None:
        if [t.queue for t in shards] != list(shard_queues(name, len(shards))):
            raise ConfigError(
                f"the shards of queue {name!r} must be {shard_queues(name, len(shards))!r}"
            )
        if not poll > 0:
            raise ConfigError(f"poll must be a positive number of seconds, not {poll!r}")
        super().__init__(shards)
        self.name = name
        self.poll = float(poll)
        self._count = len(shards)
        self._next = 0
        self._checked = -1  # the pid that checked the count in Redis

    @classmethod
    def of(cls, transport: RedisTransport, count: int, poll: float = 0.25) -> ShardedQueue:
        """``transport``'s queue in ``count`` shards, with its settings."""
        names = shard_queues(transport.queue, count)
        shards = [transport, *(transport.sibling(n) for n in names[1:])]
        return cls(transport.queue, shards, poll)

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name, "transports": self._transports, "poll": self.poll}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["name"], state["transports"], state["poll"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"ShardedQueue({self.name!r}, shards={self._count}, url={self.url!r})"

    @property
    def queue(self) -> str:
        """The queue's name."""
        return self.name

    @property
    def client(self) -> Any:
        """The redis-py client of the first shard (the shards of a queue share one)."""
        return self._transports[0].client

    @property
    def shards(self) -> int:
        """How many shards."""
        return self._count

    def sharded(self, shards: int, poll: float = 0.25) -> ShardedQueue:
        """This queue itself, for its own count (another is refused)."""
        from qredis.sharded_queues import same_count

        return same_count(self, self._count, shards)

    def shard(self, task_id: str) -> RedisTransport:
        """The shard where ``task_id`` is enqueued."""
        return self._transports[shard_of(task_id, self._count)]

    def _check(self) -> None:
        if self._checked != os.getpid():
            check_shard_count(self._transports[0], self._count, "this sharded queue")
            self._checked = os.getpid()

    # -- enqueue: each id on its shard ------------------------------------------------------

    def enqueue(
        self,
        task_id: str,
        payload: bytes,
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> None:
        """Queue on the id's shard."""
        if not isinstance(task_id, str):
            raise TypeError(f"task_id must be a non-empty string without NUL, not {task_id!r}")
        self._check()
        self.shard(task_id).enqueue(
            task_id, payload, delay=delay, max_attempts=max_attempts, priority=priority
        )

    def enqueue_many(
        self,
        items: Iterable[tuple[str, bytes]],
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> int:
        """Each id on its shard: one :meth:`RedisTransport.enqueue_many` per shard for every
        ``chunk_size`` x shards items (each chunk all-or-nothing, as there)."""
        self._check()
        first = self._transports[0]
        queued = 0
        it = iter(items)
        size = first.chunk_size * self._count
        while True:
            groups: list[list[tuple[str, bytes]]] = [[] for _ in self._transports]
            n = 0
            for item in it:
                try:
                    task_id = item[0]
                    groups[shard_of(task_id, self._count)].append(item)
                except (TypeError, AttributeError, IndexError):
                    raise TypeError(
                        f"enqueue_many takes (task_id: str, payload: bytes) pairs, not {item!r}"
                    ) from None
                n += 1
                if n == size:
                    break
            if not n:
                return queued
            for shard, group in zip(self._transports, groups):
                if group:
                    try:
                        queued += shard.enqueue_many(
                            group, delay=delay, max_attempts=max_attempts, priority=priority
                        )
                    except Exception as exc:
                        exc.add_note(f"{queued} task(s) on the other shards were queued before")
                        raise

    def enqueue_absent(
        self,
        items: Iterable[tuple[str, bytes]],
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> list[bool]:
        """Each id on its shard, where its task would be known (see
        :meth:`RedisTransport.enqueue_absent`); the flags in the order of ``items``."""
        self._check()
        batch = list(items)
        groups: dict[int, list[int]] = {}
        for n, item in enumerate(batch):
            if not isinstance(item, tuple) or len(item) != 2 or not isinstance(item[0], str):
                raise TypeError(
                    f"enqueue_absent takes (task_id: str, payload: bytes) pairs, not {item!r}"
                )
            groups.setdefault(shard_of(item[0], self._count), []).append(n)
        out = [False] * len(batch)
        for shard, positions in groups.items():
            queued = self._transports[shard].enqueue_absent(
                [batch[n] for n in positions],
                delay=delay,
                max_attempts=max_attempts,
                priority=priority,
            )
            for n, ok in zip(positions, queued):
                out[n] = ok
        return out

    def enqueue_unique(self, task_id: str, payload: bytes, **options: Any) -> str:
        """On the lock's shard (every producer must find the lock in one place); the id is
        marked known on its own shard first (see :meth:`_mark_away`)."""
        self._check()
        where = self.shard(str(options.get("lock", task_id)))
        self._mark_away([(task_id, where)])
        return where.enqueue_unique(task_id, payload, **options)

    def start_chain(self, chain_id: str, items: Any, **options: Any) -> bool:
        """On the chain id's shard (its links follow there, acked and queued in one step);
        the links' ids are marked known on their own shards first (see :meth:`_mark_away`)."""
        self._check()
        where = self.shard(chain_id)
        self._mark_away([(item[0], where) for item in items])
        return where.start_chain(chain_id, items, **options)

    def _mark_away(
        self, placed: Iterable[tuple[str, RedisTransport]], *, strict: bool = True
    ) -> None:
        """:func:`~qredis.placement.mark_away` on this queue's shards."""
        mark_away(self._transports, placed, strict=strict)

    def ack(self, deliveries: Iterable[Delivery]) -> list[bool]:
        """Ack each delivery on its shard; one held off its id's shard is marked done on the
        id's shard first (the ack's own mark is on the shard that held it)."""
        batch = list(deliveries)
        self._mark_away(((d.task_id, self._owner(d)) for d in batch), strict=False)
        return super().ack(batch)

    def ack_links(
        self, deliveries: Iterable[Delivery], links: Sequence[tuple[str, int, bool] | None]
    ) -> list[bool]:
        """:meth:`ack` with chains' next links (see :meth:`RedisQueues.ack_links`)."""
        batch = list(deliveries)
        self._mark_away(((d.task_id, self._owner(d)) for d in batch), strict=False)
        return super().ack_links(batch, links)

    def chain_state(self, chain_id: str) -> Any:
        return self.shard(chain_id).chain_state(chain_id)

    def schedules(self, codec: Any) -> Any:
        """The schedules, kept on shard 0, each firing marked on its id's shard (see
        :class:`~qredis.schedules.ShardedSchedules`)."""
        from qredis.schedules import ShardedSchedules

        return ShardedSchedules(self._transports, codec)

    def iter_put(self, iter_id: str, index: int, payload: bytes, size: int) -> list[bytes]:
        return self.shard(iter_id).iter_put(iter_id, index, payload, size)

    # -- fetch ------------------------------------------------------------------------------

    def _order(self) -> list[RedisTransport]:
        """Every shard, starting with the next one in rotation."""
        start = self._next
        self._next = (start + 1) % self._count
        return self._transports[start:] + self._transports[:start]

    def fetch(
        self,
        consumer: str,
        count: int = 1,
        timeout: float = 0.0,
        *,
        replayed: list[str] | None = None,
    ) -> list[Delivery]:
        """Up to ``count`` ready tasks, from the shards starting with the next in rotation;
        blocks up to ``timeout`` s on the consumer's home shard (see the module's docstring).
        ``replayed`` as for :meth:`RedisTransport.fetch`."""
        self._check()
        order = self._order()
        got, next_due = _grab(order, consumer, count, replayed)
        if got or not timeout > 0:
            return got
        home = self._transports[zlib.crc32(consumer.encode()) % self._count]
        home._ready()
        markers = (home.keys.marker,) if home._cluster else tuple(t.keys.marker for t in order)
        others = [t for t in order if t is not home]
        return wait_on_home(
            home,
            consumer,
            count,
            timeout,
            markers,
            self.poll,
            next_due,
            lambda: _grab(others, consumer, count, replayed),
            replayed,
        )

    # -- finishing: by the delivery's shard ---------------------------------------------------

    def _owner(self, delivery: Delivery) -> RedisTransport:
        found = self._by_name.get(delivery.queue)
        if found is not None:
            return found
        # Rebuilt without its queue (the sentinel's, from a worker's slot): the id's shard
        # holds it unless it is a chain's link or a unique task queued elsewhere.
        home = self.shard(delivery.task_id)
        for t in (home, *(t for t in self._transports if t is not home)):
            if t.client.hexists(t.keys.tokens, delivery.task_id):
                return t
        return home

    def cancel(self, task_id: str, twin: Any, *, terminate: bool = False) -> str:
        """Cancel a task on its shard (the id's, else whichever holds it)."""
        home = self.shard(task_id)
        for t in (home, *(t for t in self._transports if t is not home)):
            try:
                return t.cancel(task_id, twin, terminate=terminate)
            except UnknownTask:
                continue
        raise UnknownTask(f"no task {task_id!r} is queued, delayed or running in {self.name}")

    def payload(self, task_id: str) -> bytes | None:
        home = self.shard(task_id)
        for t in (home, *(t for t in self._transports if t is not home)):
            found = t.payload(task_id)
            if found is not None:
                return found
        return None

    # -- every shard ------------------------------------------------------------------------

    def heartbeat(self, consumers: Iterable[str], ttl: float) -> None:
        """The same deadline on every shard (see :func:`beat_alike`)."""
        beat_alike(self._transports, consumers, ttl)

    def reap(self) -> Reaped:
        """Every shard's pass of the reaper (see :func:`reap_alike`)."""
        return reap_alike(self._transports)

    def _owner_sites(self) -> list[RedisTransport]:
        return self._transports[:1]  # a queue's records: on shard 0, the queue itself

    def remove_owner(self, cluster_id: str) -> None:
        self._transports[0].remove_owner(cluster_id)

    def reclaim(self, cluster_id: str) -> Any:
        """Every shard's in-flight tasks of ``cluster_id``'s consumers, shard 0 (which keeps
        the owner record, forgotten once its part is done) last."""
        return _total(t.reclaim(cluster_id) for t in reversed(self._transports))

    def check_server(self) -> list[str]:
        """Each shard's node's warnings (once each), after recording the shard count in
        Redis and refusing another (:class:`~qcore.ConfigError`)."""
        check_shard_count(self._transports[0], self._count, "this cluster")
        warnings: list[str] = []
        for t in self._transports:
            warnings += [w for w in t._server_warnings() if w not in warnings]
        return warnings

    def check_permissions(self) -> list[str]:
        missing: list[str] = []
        for t in self._transports:
            missing += [m for m in t.check_permissions() if m not in missing]
        return missing
