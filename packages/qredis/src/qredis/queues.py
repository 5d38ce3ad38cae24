"""Several queues served by one cluster, in strict order or by weight (issue 15, item 2).

:class:`RedisQueues` is a ``qcore.Transport`` over one :class:`~qredis.RedisTransport` per
queue (each its own hash tag, so every script still touches one slot). A fetch takes from the
queues in an order, topping a batch up from the next queue when one runs dry:

- **strict**: always the first queue first, the second only when the first has nothing ready,
  and so on;
- **weighted**: the queue a fetch starts with is chosen by smooth weighted round robin (weights
  3 and 1: three fetches start with the first for each that starts with the second), then the
  others by weight; so every queue with work is served in proportion, none starved.

Priorities still hold inside each queue. The wait stays one blocking call: an idle consumer
blocks on every queue's marker at once (``BZPOPMIN`` of several keys; one Redis server), with
the claim of the queue it would start with in the same pipeline, so a wake-up for that queue
costs one round trip and one for another queue two. An ack, retry or dead letter goes to the
queue its delivery names (``Delivery.queue``); what is done on every queue at once (release,
heartbeats, the reaper, sizes, listings, dead letters) is :class:`~qredis.fanout.FanOut`'s.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from qcore import ConfigError, Delivery
from qredis.fanout import FanOut, _soonest
from qredis.transport import RedisTransport

__all__ = ["RedisQueues"]


class RedisQueues(FanOut):
    """A transport serving the queues of ``transports`` (one per queue, same Redis) in strict
    order, or, with ``weights`` (one integer >= 1 per queue), in proportion to them.

    Build it with :meth:`serving` from one transport and the queue names. Picklable (each
    worker gets its own copy, with its own round-robin state).
    """

    def __init__(
        self, transports: Sequence[RedisTransport], weights: Sequence[int] | None = None
    ) -> None:
        if not transports:
            raise ConfigError("RedisQueues needs at least one queue")
        names = [t.queue for t in transports]
        if len(set(names)) != len(names):
            raise ConfigError(f"each queue may be served once, not {names!r}")
        if weights is not None:
            weights = tuple(weights)
            if len(weights) != len(names) or not all(
                isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in weights
            ):
                raise ConfigError(
                    f"weights must be one integer >= 1 per queue ({len(names)}), not {weights!r}"
                )
        self._transports = list(transports)
        self._by_name = {t.queue: t for t in transports}
        self.weights: tuple[int, ...] | None = weights
        self._current = [0] * len(names)

    @classmethod
    def serving(
        cls,
        transport: RedisTransport,
        queues: Sequence[str],
        weights: Sequence[int] | None = None,
    ) -> RedisQueues:
        """The queues named ``queues`` on ``transport``'s Redis, with its settings."""
        return cls(
            [transport if q == transport.queue else transport.sibling(q) for q in queues], weights
        )

    def sharded(self, shards: int, poll: float = 0.25) -> RedisQueues:
        """These queues, each spread over ``shards`` hash tags as :meth:`RedisTransport.sharded`
        spreads one (:class:`~qredis.sharded_queues.ShardedQueues`), in the same order or
        weights; these queues themselves for 1."""
        from qredis.placement import check_count
        from qredis.sharded_queues import ShardedQueues
        from qredis.shards import ShardedQueue

        if check_count(shards) == 1:
            return self
        members = [ShardedQueue.of(t, shards, poll) for t in self._transports]
        return ShardedQueues(members, self.weights)

    def __getstate__(self) -> dict[str, Any]:
        return {"transports": self._transports, "weights": self.weights}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["transports"], state["weights"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"RedisQueues({self.queue!r}, url={self.url!r})"

    @property
    def queue(self) -> str:
        """The queues' names, in order, with their weights when weighted (``a=3,b=1``)."""
        if self.weights is None:
            return ",".join(self.queues)
        return ",".join(f"{q}={w}" for q, w in zip(self.queues, self.weights))

    @property
    def queues(self) -> tuple[str, ...]:
        """The queues' names, in order."""
        return tuple(self._by_name)

    @property
    def transports(self) -> tuple[RedisTransport, ...]:
        """One transport per queue, in order."""
        return tuple(self._transports)

    @property
    def url(self) -> str:
        """Where the queues are, password masked."""
        return self._transports[0].url

    # -- order ------------------------------------------------------------------------------

    def _order(self) -> list[RedisTransport]:
        """The queues in the order this fetch looks at them."""
        if self.weights is None:
            return self._transports
        weights, current = self.weights, self._current
        for i, w in enumerate(weights):
            current[i] += w
        first = max(range(len(weights)), key=current.__getitem__)
        current[first] -= sum(weights)
        rest = sorted((i for i in range(len(weights)) if i != first), key=lambda i: -weights[i])
        return [self._transports[i] for i in (first, *rest)]

    # -- enqueue: the first queue (producers pick a queue with a transport of their own) ------

    def enqueue(
        self,
        task_id: str,
        payload: bytes,
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> None:
        """Queue on the first queue."""
        self._transports[0].enqueue(
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
        """Queue on the first queue."""
        return self._transports[0].enqueue_many(
            items, delay=delay, max_attempts=max_attempts, priority=priority
        )

    def enqueue_absent(
        self,
        items: Iterable[tuple[str, bytes]],
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> list[bool]:
        """Queue on the first queue what it does not know yet (see
        :meth:`RedisTransport.enqueue_absent`)."""
        return self._transports[0].enqueue_absent(
            items, delay=delay, max_attempts=max_attempts, priority=priority
        )

    # -- fetch ------------------------------------------------------------------------------

    def fetch(
        self,
        consumer: str,
        count: int = 1,
        timeout: float = 0.0,
        *,
        replayed: list[str] | None = None,
    ) -> list[Delivery]:
        """Up to ``count`` ready tasks, from the queues in this fetch's order; blocks up to
        ``timeout`` s on every queue's marker at once. ``replayed`` as for
        :meth:`RedisTransport.fetch`."""
        order = self._order()
        got, next_due = _grab(order, consumer, count, replayed)
        if got or not timeout > 0:
            return got
        markers = [t.keys.marker for t in self._transports]
        first = order[0]
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            block = min(remaining, first._block_cap)
            if next_due is not None:
                block = min(block, next_due)
            got, due_first = first._block_and_grab(consumer, count, block, markers, replayed)
            if got:
                return got
            # Woken for another queue (or the wait ended): look at the others, in order.
            got, next_due = _grab(order[1:], consumer, count, replayed)
            if got:
                return got
            next_due = _soonest(next_due, due_first)

    # -- finishing: by the delivery's queue ---------------------------------------------------

    def _owner(self, delivery: Delivery) -> RedisTransport:
        found = self._by_name.get(delivery.queue)
        if found is not None:
            return found
        # A delivery rebuilt without its queue (the sentinel's, from a worker's slot): the
        # queue whose tokens hold the id (ids are unique across queues).
        for t in self._transports:
            if t.client.hexists(t.keys.tokens, delivery.task_id):
                return t
        return self._transports[0]

    def _by_owner(self, batch: list[Delivery]) -> list[tuple[RedisTransport, list[int]]]:
        """The transports that own ``batch``'s deliveries, each with its deliveries'
        positions, in the order first met."""
        groups: dict[int, tuple[RedisTransport, list[int]]] = {}
        for i, d in enumerate(batch):
            owner = self._owner(d)
            groups.setdefault(id(owner), (owner, []))[1].append(i)
        return list(groups.values())

    def ack(self, deliveries: Iterable[Delivery]) -> list[bool]:
        """Ack each delivery on its queue (one script per queue in the batch)."""
        batch = list(deliveries)
        out = [False] * len(batch)
        request = _request(batch)
        for owner, idx in self._by_owner(batch):
            for i, ok in zip(idx, owner.ack([batch[i] for i in idx], request=request)):
                out[i] = ok
        return out

    def retry_later(self, delivery: Delivery, delay: float, payload: bytes | None = None) -> bool:
        """Put a task back on its own queue, delivered again after ``delay`` s."""
        return self._owner(delivery).retry_later(delivery, delay, payload)

    def ack_links(
        self, deliveries: Iterable[Delivery], links: Sequence[tuple[str, int, bool] | None]
    ) -> list[bool]:
        """:meth:`ack` with chains' next links, each delivery on its own queue."""
        batch, chained = list(deliveries), list(links)
        out = [False] * len(batch)
        request = _request(batch)
        for owner, idx in self._by_owner(batch):
            part = [batch[i] for i in idx]
            acked = owner.ack_links(part, [chained[i] for i in idx], request=request)
            for i, ok in zip(idx, acked):
                out[i] = ok
        return out

    def cancel(self, task_id: str, twin: Any, *, terminate: bool = False) -> str:
        """Cancel a task on whichever queue holds it."""
        from qcore.errors import UnknownTask

        for t in self._transports:
            try:
                return t.cancel(task_id, twin, terminate=terminate)
            except UnknownTask:
                continue
        raise UnknownTask(f"no task {task_id!r} is queued, delayed or running in {self.queue}")

    def terminations(self, task_ids: Collection[str]) -> set[str]:
        ids = list(task_ids)
        return set().union(*(t.terminations(ids) for t in self._transports))

    # Chains, iterations and unique tasks keep their state beside the first queue.

    def start_chain(self, chain_id: str, items: Any, **options: Any) -> bool:
        return self._transports[0].start_chain(chain_id, items, **options)

    def iter_put(self, iter_id: str, index: int, payload: bytes, size: int) -> list[bytes]:
        return self._transports[0].iter_put(iter_id, index, payload, size)

    def enqueue_unique(self, task_id: str, payload: bytes, **options: Any) -> str:
        return self._transports[0].enqueue_unique(task_id, payload, **options)

    def chain_state(self, chain_id: str) -> Any:
        return self._transports[0].chain_state(chain_id)

    def reachable(self) -> bool:
        return self._transports[0].reachable()

    def dead_letter(self, delivery: Delivery, reason: str) -> bool:
        """Dead-letter a task on its own queue."""
        return self._owner(delivery).dead_letter(delivery, reason)

    def schedules(self, codec: Any) -> Any:
        """The schedules kept beside the first queue."""
        return self._transports[0].schedules(codec)

    def ping(self) -> bool:
        return self._transports[0].ping()

    def check_server(self) -> list[str]:
        """Each queue's check (its shard count in Redis: see
        :meth:`RedisTransport.check_server`), the warnings once each."""
        warnings: list[str] = []
        for t in self._transports:
            warnings += [w for w in t.check_server() if w not in warnings]
        return warnings

    def check_permissions(self) -> list[str]:
        missing: list[str] = []
        for t in self._transports:
            missing += [m for m in t.check_permissions() if m not in missing]
        return missing


def _grab(
    order: Sequence[RedisTransport], consumer: str, count: int, replayed: list[str] | None
) -> tuple[list[Delivery], float | None]:
    """What is ready now, from the queues in ``order`` until ``count`` (one script each)."""
    got: list[Delivery] = []
    soonest: float | None = None
    for t in order:
        more, due = t._grab(consumer, count - len(got), replayed)
        got += more
        soonest = _soonest(soonest, due)
        if len(got) >= count:
            break
    return got, soonest


def _request(batch: list[Delivery]) -> str | None:
    """The request id of a whole batch, given to each queue's part of it: its first delivery
    (queue and fencing token: tokens count per queue) and its size."""
    if not batch:
        return None
    return f"ack:{batch[0].queue}:{batch[0].token}:{len(batch)}"
