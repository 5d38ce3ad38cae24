"""Where a sharded queue's shards and tasks live (see :mod:`qredis.shards`), and its shard
count in Redis."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import redis
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from qcore import ConfigError, get_logger
from qredis.base import TransportBase, positive_int
from qredis.errors import TransportError
from qredis.keys import check_name

__all__ = [
    "MAX_SHARDS",
    "check_count",
    "check_shard_count",
    "count_mismatch",
    "mark_away",
    "shard_of",
    "shard_queues",
    "stored_shards",
]

if TYPE_CHECKING:
    from qredis.transport import RedisTransport

log = get_logger("qredis.shards")

MAX_SHARDS = 128
"""A queue spread over more hash tags than this gains nothing a Redis Cluster can use."""


def _part(queue: str, count: int) -> int:
    """Which Nth of the slot space the queue's hash tag falls in."""
    return key_slot(f"q:{queue}".encode()) * count // REDIS_CLUSTER_HASH_SLOTS


def shard_queues(name: str, count: int) -> tuple[str, ...]:
    """The queue names of ``name``'s ``count`` shards: ``name`` itself, then one per remaining
    Nth of the slot space (see the module's docstring)."""
    check_name("queue", name)
    check_count(count)
    if count == 1:
        return (name,)
    parts = [p for p in range(count) if p != _part(name, count)]
    out = [name]
    for i, part in enumerate(parts, start=1):
        k = 0
        while _part(candidate := f"{name}~{i}" + (f".{k}" if k else ""), count) != part:
            k += 1
        out.append(candidate)
    return tuple(out)


def check_count(count: object) -> int:
    """A shard count, or :class:`~qcore.ConfigError`."""
    positive_int("shards", count)
    assert isinstance(count, int)
    if count > MAX_SHARDS:
        raise ConfigError(f"shards must be at most {MAX_SHARDS}, not {count}")
    return count


def check_shard_count(transport: TransportBase, count: int, who: str) -> None:
    """Record ``count`` as the queue's shard count unless one is recorded (SET NX), and refuse
    a different one, naming both (``who``: "this producer", "this cluster"). A Redis too full
    to take the key records nothing (a cluster must still start to drain it)."""
    key = transport.keys.shards
    client: Any = transport.client
    with transport._errors():
        stored = client.get(key)
        if stored is None:
            try:
                client.set(key, count, nx=True)
            except redis.exceptions.OutOfMemoryError:
                pass
            stored = client.get(key)
    if stored is not None and int(stored) != count:
        raise count_mismatch(transport.queue, key, int(stored), count, who)


def count_mismatch(queue: str, key: str, stored: int, count: int, who: str) -> ConfigError:
    """The error of a shard count that differs from the one kept in Redis, naming both."""
    return ConfigError(
        f"queue {queue!r} has {stored} shard(s) in Redis ({key}) but {who} is configured with "
        f"shards={count}: use shards={stored} everywhere this queue is used (to change the "
        f"count, stop its producers and clusters, let the queue drain and delete {key})"
    )


def shard_of(task_id: str, count: int) -> int:
    """The shard an id lives on (CRC-32 of its UTF-8 bytes, mod the count)."""
    return zlib.crc32(task_id.encode()) % count


def stored_shards(transport: TransportBase) -> int:
    """The queue's shard count kept in Redis (1 when none is): what a view that is not told
    the count shards by (``qcluster info``)."""
    client: Any = transport.client
    with transport._errors():
        raw = client.get(transport.keys.shards)
    return int(raw) if raw else 1


def mark_away(
    shards: Sequence[RedisTransport],
    placed: Iterable[tuple[str, RedisTransport]],
    *,
    strict: bool = True,
) -> None:
    """Mark done, on its id's shard, each task that lives on another (``placed``: its id and
    the shard holding it: a chain's link, a unique task, a firing). A copy of its payload sent
    through ``enqueue`` lands on the id's shard, which holds neither that payload nor the
    ack's mark: with this mark the fetch there refuses the copy as a replay (and
    ``enqueue_absent`` skips it), as the task's own shard would; nothing else is ever queued
    there under that id. Not ``strict`` (before an ack), a shard that fails is logged, not
    raised: an ack never waits on another node than its own."""
    away: dict[int, list[str]] = {}
    for task_id, where in placed:
        home = shard_of(task_id, len(shards))
        if shards[home] is not where:
            away.setdefault(home, []).append(task_id)
    for home, ids in away.items():
        try:
            shards[home].mark_done(ids)
        except TransportError as exc:
            if strict:
                raise
            log.warning("shard.mark_failed", shard=home, count=len(ids), error=str(exc))
