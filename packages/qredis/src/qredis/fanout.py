"""What a transport over several queues of one Redis does on every one of them (one
:class:`~qredis.RedisTransport` per queue for :class:`~qredis.RedisQueues`, per shard for
:class:`~qredis.ShardedQueue`): release, heartbeats, the reaper, the delayed sets, sizes,
listings and dead letters, their answers added up; and the heartbeat, the reaper pass and the
blocking wait that treat several parts (a queue's shards, a cluster's sharded queues) as one."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

from qcore import DEAD_REASONS_LIMIT, ConfigError, DeadLetter, Delivery, InFlight, Reaped
from qredis.recovery import _owners, _scanned

if TYPE_CHECKING:
    from qredis.transport import RedisTransport

__all__ = ["FanOut", "beat_alike", "beat_at_once", "pipelined", "reap_alike", "wait_on_home"]


class FanOut:
    """Calls made on every transport of ``_transports`` (the base of
    :class:`~qredis.RedisQueues`)."""

    _transports: list[RedisTransport]

    def release(
        self, consumer: str, *, started: Collection[str] = (), reason: str | None = None
    ) -> Reaped:
        """Give back what ``consumer`` holds, on every queue."""
        return _total(t.release(consumer, started=started, reason=reason) for t in self._transports)

    def unrecorded(self, limit: int = 100) -> list[DeadLetter]:
        """Dead letters owed their Failure record, on every queue, oldest first."""
        owed = [x for t in self._transports for x in t.unrecorded(limit)]
        owed.sort(key=lambda x: x.failed_at)
        return owed[: max(0, limit)]

    def recorded(self, task_ids: Iterable[str]) -> None:
        ids = list(task_ids)
        for t in self._transports:
            t.recorded(ids)

    def heartbeat(self, consumers: Iterable[str], ttl: float) -> None:
        """Every queue's heartbeat in one round trip (see :func:`beat_at_once`)."""
        beat_at_once(self._transports, consumers, ttl)

    def forget(self, consumers: Iterable[str]) -> None:
        names = list(consumers)
        for t in self._transports:
            t.forget(names)

    def reap(self) -> Reaped:
        """Every queue's pass of the reaper, one round trip when nothing expired (see
        :func:`reap_alike`)."""
        return reap_alike(self._transports)

    # A cluster's owner record goes beside every queue it serves: a cluster on the same host
    # serving any one of them can then take back what the dead one held there.

    def record_owner(self, cluster_id: str, owner: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Record ``cluster_id``'s owner on every queue (one round trip); every cluster's
        record on any."""
        sites = self._owner_sites()
        owners: dict[str, dict[str, Any]] = {}
        for res in pipelined([(t, *t._owner_call(cluster_id, owner)) for t in sites]):
            owners.update(_owners(res))
        return owners

    def _owner_sites(self) -> list[RedisTransport]:
        """Where the owner records are kept: beside each queue."""
        return self._transports

    def remove_owner(self, cluster_id: str) -> None:
        for t in self._transports:
            t.remove_owner(cluster_id)

    def reclaim(self, cluster_id: str) -> Reaped:
        """Every queue's in-flight tasks of ``cluster_id``'s consumers (see
        :meth:`RedisTransport.reclaim`), each queue's record forgotten once its part is done."""
        return _total(t.reclaim(cluster_id) for t in self._transports)

    def promote_due(self) -> int:
        return sum(t.promote_due() for t in self._transports)

    def next_due(self) -> float | None:
        soonest: float | None = None
        for t in self._transports:
            soonest = _soonest(soonest, t.next_due())
        return soonest

    def payload(self, task_id: str) -> bytes | None:
        for t in self._transports:
            found = t.payload(task_id)
            if found is not None:
                return found
        return None

    def queue_size(self) -> int:
        return sum(t.queue_size() for t in self._transports)

    def inflight_size(self) -> int:
        return sum(t.inflight_size() for t in self._transports)

    def delayed_size(self) -> int:
        return sum(t.delayed_size() for t in self._transports)

    def dead_size(self) -> int:
        return sum(t.dead_size() for t in self._transports)

    def inflight(self, limit: int = 100) -> list[InFlight]:
        return [x for t in self._transports for x in t.inflight(limit)][: max(0, limit)]

    def dead_reasons(self, limit: int = DEAD_REASONS_LIMIT) -> dict[str, int]:
        """Each queue's newest ``limit`` dead letters counted by the kind of their reason,
        added up."""
        counts: dict[str, int] = {}
        for transport in self._transports:
            for kind, n in transport.dead_reasons(limit).items():
                counts[kind] = counts.get(kind, 0) + n
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        letters = [x for t in self._transports for x in t.dead_letters(limit)]
        letters.sort(key=lambda x: x.failed_at, reverse=True)
        return letters[: max(0, limit)]

    def requeue_dead(self, task_ids: Iterable[str] | None = None) -> int:
        ids = None if task_ids is None else list(task_ids)
        return sum(t.requeue_dead(ids) for t in self._transports)

    def purge_dead(self, task_ids: Iterable[str] | None = None) -> int:
        ids = None if task_ids is None else list(task_ids)
        return sum(t.purge_dead(ids) for t in self._transports)

    def trim_dead(self, max_age: float, keep: int) -> int:
        """Each queue's dead letters bounded on their own (``keep`` is a cap per queue)."""
        return sum(t.trim_dead(max_age, keep) for t in self._transports)

    def close(self) -> None:
        for t in self._transports:
            t.close()


def _soonest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _total(passes: Iterable[Reaped]) -> Reaped:
    consumers = requeued = dead = 0
    for r in passes:
        consumers = max(consumers, r.consumers)
        requeued += r.requeued
        dead += r.dead_lettered
    return Reaped(consumers=consumers, requeued=requeued, dead_lettered=dead)


def beat_alike(shards: Sequence[RedisTransport], consumers: Iterable[str], ttl: float) -> None:
    """Heartbeats giving every one of ``shards`` the same deadline (read from the first one's
    clock), so a consumer that stops beating expires on all of them at once: two round trips
    (the clock, then every shard's beat in one pipeline)."""
    names = _beating(consumers, ttl)
    if not names:
        return
    first = shards[0]
    with first._errors():
        seconds, micros = first.client.time()
    until = f"@{seconds * 1000 + micros // 1000 + round(ttl * 1000)}"
    pipelined([(t, *t._beat_call(names, until)) for t in shards])


def beat_at_once(queues: Sequence[RedisTransport], consumers: Iterable[str], ttl: float) -> None:
    """Heartbeats on every one of ``queues`` in one round trip (one pipeline), each deadline
    read from its own server's clock: on one server they run back to back, so they fall on
    the same millisecond or the next, and :func:`reap_alike` passes again the queues a
    crossing left behind."""
    names = _beating(consumers, ttl)
    if names:
        pipelined([(t, *t._beat_call(names, round(ttl * 1000))) for t in queues])


def _beating(consumers: Iterable[str], ttl: float) -> list[str]:
    names = list(consumers)
    if names and not ttl > 0:
        raise ConfigError(f"ttl must be a positive number of seconds, not {ttl!r}")
    return names


def reap_alike(parts: Sequence[RedisTransport]) -> Reaped:
    """Every part's pass of the reaper (a queue's shards, or the queues of a cluster, or every
    shard of its sharded queues): one pipeline of their scans (one round trip when nothing
    expired), then each expired consumer requeued where it was found. When the pass crosses
    a deadline (a part reaps a consumer another had not found expired yet), the parts that
    reaped nothing are passed again, so a lost consumer's tasks come back from every part in
    one call."""
    scans = pipelined([(p, *p._reap_call()) for p in parts])
    passes = [p._reap_expired(_scanned(res)[2]) for p, res in zip(parts, scans)]
    if any(r.consumers for r in passes):
        passes += [p.reap() for p, r in zip(parts, passes) if not r.consumers]
    return _total(passes)


Call = tuple["RedisTransport", str, tuple[str, ...], tuple[Any, ...]]


def pipelined(calls: Sequence[Call]) -> list[Any]:
    """Each ``(transport, script, KEYS, ARGV)`` call's reply, in order: the calls of transports
    on one Redis (the same connection settings) travel in one pipeline, one round trip (one
    per node on a Redis Cluster, whose pipeline takes ``EVALSHA`` as a plain command only). A
    script the server does not have (first use, or after a restart) is run again on its own,
    which loads it."""
    groups: list[tuple[RedisTransport, list[int]]] = []
    for n, (t, *_) in enumerate(calls):
        group = next((g for g in groups if g[0]._conn.spec == t._conn.spec), None)
        if group is None:
            groups.append((t, [n]))
        else:
            group[1].append(n)
    out: list[Any] = [None] * len(calls)
    for head, members in groups:
        client, _ = head._ready()
        with head._errors():
            pipe = client.pipeline(transaction=False)
            for n in members:
                t, name, keys, args = calls[n]
                sha = getattr(t._ready()[1], name).sha
                pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
            for n, reply in zip(members, pipe.execute(raise_on_error=False)):
                t, name, keys, args = calls[n]
                if isinstance(reply, NoScriptError):
                    reply = getattr(t._ready()[1], name)(keys, args)
                elif isinstance(reply, Exception):
                    raise reply
                out[n] = reply
    return out


def wait_on_home(
    home: RedisTransport,
    consumer: str,
    count: int,
    timeout: float,
    markers: tuple[str, ...],
    poll: float,
    next_due: float | None,
    take_rest: Callable[[], tuple[list[Delivery], float | None]],
    replayed: list[str] | None,
) -> list[Delivery]:
    """Up to ``count`` tasks within ``timeout`` s, for a consumer blocked on its ``home``
    shard: woken through ``markers`` (every shard's on one server; on a Redis Cluster the home
    shard's alone, for at most ``poll`` s at a time), it takes from ``home`` first, then from
    the other shards (``take_rest()``: what it got, and the soonest delayed task's wait)."""
    cluster = home._cluster
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return []
        block = min(remaining, home._block_cap)
        if cluster:
            block = min(block, poll)
        if next_due is not None:
            block = min(block, next_due)
        got, due_home = home._block_and_grab(consumer, count, block, markers, replayed)
        if got:
            return got
        got, next_due = take_rest()
        if got:
            return got
        next_due = _soonest(next_due, due_home)
