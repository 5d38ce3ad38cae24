"""Consumers' liveness and recovery: heartbeats, release, the reaper, delayed tasks."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from qcore import ConfigError, DeadLetter, Reaped, get_logger
from qredis.base import TransportBase, ms

__all__ = ["Recovery"]

log = get_logger("qredis.transport")

_REAP_BATCH = 100  # expired consumers handled per reaper pass
_PROMOTE_BATCH = 1000  # due delayed tasks moved per script call
_OWNER_KEPT_MS = 3_600_000  # an owner record not written again for an hour is forgotten


class Recovery(TransportBase):
    """Heartbeats, release, reap, and the delayed set (part of :class:`~qredis.RedisTransport`)."""

    def release(
        self, consumer: str, *, started: Collection[str] = (), reason: str | None = None
    ) -> Reaped:
        """Return all of ``consumer``'s in-flight tasks to the head of the queue, now.

        Tasks in ``started`` keep their attempt count and are dead-lettered if it reached their
        limit, with ``reason`` (default: the worker was lost) and their Failure record owed
        (:meth:`unrecorded`), and marked done as an ack marks a task (a copy pushed back is
        refused as a replay); the others never ran and have this delivery uncounted.
        """
        if reason is None:
            reason = f"worker lost while running the task (consumer {consumer}): out of attempts"
        res = self._requeue(consumer, "release", "", reason, list(started))
        return Reaped(consumers=1, requeued=int(res[0]), dead_lettered=int(res[1]))

    def _requeue(
        self, consumer: str, mode: str, owner: str, reason: str, started: list[str]
    ) -> list[int]:
        _, scripts = self._ready()
        k = self._keys
        keys = (
            k.inflight(consumer),
            k.consumers,
            k.queue,
            k.msg,
            k.attempts,
            k.tokens,
            k.maxatt,
            k.dead,
            k.deadinfo,
            k.reaper,
            k.fetches,
            k.acks,
            k.unrecorded,
            k.due,
            k.prio,
            k.levels,
            k.marker,
            k.done,
        )
        window = ms(self.replay_window)
        with self._errors():
            res = scripts.requeue(
                keys, (consumer, mode, owner, self.max_attempts, reason, window, *started)
            )
        requeued, dead, dropped = (int(x) for x in res)
        if dropped:
            log.error("task.payload_missing", consumer=consumer, count=dropped, queue=self.queue)
        if requeued > 0 or dead:
            log.info(
                "consumer.requeued",
                consumer=consumer,
                mode=mode,
                requeued=requeued,
                dead_lettered=dead,
                queue=self.queue,
            )
        return [requeued, dead, dropped]

    def heartbeat(self, consumers: Iterable[str], ttl: float, *, until: int | None = None) -> None:
        """Declare ``consumers`` alive for ``ttl`` more seconds (one ZADD, Redis clock), or
        until ``until`` (epoch ms) when given (see :class:`~qredis.ShardedQueue`)."""
        names = list(consumers)
        if not names:
            return
        if not ttl > 0:
            raise ConfigError(f"ttl must be a positive number of seconds, not {ttl!r}")
        _, scripts = self._ready()
        _, keys, args = self._beat_call(names, ms(ttl) if until is None else f"@{until}")
        with self._errors():
            scripts.heartbeat(keys, args)

    def forget(self, consumers: Iterable[str]) -> None:
        """Deregister consumers that stopped. One still holding tasks is marked expired
        instead, so the next :meth:`reap` returns its work."""
        names = list(consumers)
        if not names:
            return
        _, scripts = self._ready()
        k = self._keys
        with self._errors():
            scripts.forget((k.consumers, k.fetches, k.acks, *(k.inflight(c) for c in names)), names)

    def reap(self) -> Reaped:
        """Move due delayed tasks onto their due lists, then requeue the in-flight tasks of
        consumers whose heartbeat expired (one reaper at a time, under a ``SET NX PX`` lock).

        Tasks keep their attempt count; one at its limit is dead-lettered with a reason naming
        the lost consumer. One round trip and no writes when there is nothing to do.
        """
        return self._reap_expired(self._scan(_REAP_BATCH)[2])

    def _reap_expired(self, expired: list[str]) -> Reaped:
        """:meth:`reap`'s work once a scan listed the ``expired`` consumers (none: nothing)."""
        if not expired:
            return Reaped()
        client, scripts = self._ready()
        owner = uuid.uuid4().hex
        with self._errors():
            if not client.set(self._keys.reaper, owner, nx=True, px=30_000):
                return Reaped()  # another reaper is at work
        consumers = requeued = dead = 0
        try:
            for consumer in expired:
                reason = (
                    f"consumer {consumer} stopped heartbeating while holding the task "
                    "(worker lost): out of attempts"
                )
                res = self._requeue(consumer, "reap", owner, reason, [])
                if res[0] < 0:
                    break  # our lock expired: leave the rest to the next pass
                consumers += 1
                requeued += res[0]
                dead += res[1]
                log.warning("consumer.reaped", consumer=consumer, requeued=res[0], dead=res[1])
        finally:
            with self._errors():
                scripts.unlock((self._keys.reaper,), (owner,))
        return Reaped(consumers=consumers, requeued=requeued, dead_lettered=dead)

    # -- owners: fast recovery on one host -------------------------------------------------

    def record_owner(self, cluster_id: str, owner: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Record (again) which process runs ``cluster_id``; returns every cluster's record.

        Records not written again for an hour are forgotten (their clusters are gone, and the
        reaper has taken their tasks back long since).
        """
        _, scripts = self._ready()
        _, keys, args = self._owner_call(cluster_id, owner)
        with self._errors():
            return _owners(scripts.owner(keys, args))

    def _owner_call(
        self, cluster_id: str, owner: Mapping[str, Any]
    ) -> tuple[str, tuple[str, ...], tuple[Any, ...]]:
        """The script, KEYS and ARGV of :meth:`record_owner`, its reply read by :func:`_owners`."""
        record = json.dumps(dict(owner), sort_keys=True)
        keys = (self._keys.owners, self._keys.owners_seen)
        return "owner", keys, ("record", cluster_id, record, _OWNER_KEPT_MS)

    def remove_owner(self, cluster_id: str) -> None:
        """Forget ``cluster_id``'s owner record (its cluster stopped)."""
        _, scripts = self._ready()
        k = self._keys
        with self._errors():
            scripts.owner((k.owners, k.owners_seen), ("remove", cluster_id))

    def reclaim(self, cluster_id: str) -> Reaped:
        """Requeue now every in-flight task of ``cluster_id``'s consumers, whatever their
        heartbeats, and forget its owner record: for a cluster whose process is known to be
        gone. Tasks keep their attempt count, as when reaped. Under the reaper's lock; when
        another reaper holds it, nothing is done (the caller tries again later)."""
        client, scripts = self._ready()
        prefix = f"{cluster_id}."
        with self._errors():
            members = client.zrange(self._keys.consumers, 0, -1)
        consumers = [m.decode() for m in members if m.decode().startswith(prefix)]
        owner = uuid.uuid4().hex
        with self._errors():
            if not client.set(self._keys.reaper, owner, nx=True, px=30_000):
                return Reaped()
        done = requeued = dead = 0
        try:
            for consumer in consumers:
                reason = (
                    f"consumer {consumer} stopped heartbeating while holding the task (worker "
                    f"lost with its cluster {cluster_id}, whose process is gone): out of attempts"
                )
                res = self._requeue(consumer, "reclaim", owner, reason, [])
                if res[0] < 0:
                    break  # our lock expired: the next pass does the rest
                done += 1
                requeued += res[0]
                dead += res[1]
        finally:
            with self._errors():
                scripts.unlock((self._keys.reaper,), (owner,))
        if done == len(consumers):
            self.remove_owner(cluster_id)
        return Reaped(consumers=done, requeued=requeued, dead_lettered=dead)

    def _scan(self, consumers: int) -> tuple[int, float | None, list[str]]:
        _, scripts = self._ready()
        with self._errors():
            res = scripts.scan(self._scan_keys, (_PROMOTE_BATCH, consumers))
        return _scanned(res)

    def _reap_call(self) -> tuple[str, tuple[str, ...], tuple[Any, ...]]:
        """The script, KEYS and ARGV of :meth:`reap`'s scan (for a pipeline over several
        queues: :func:`~qredis.fanout.reap_alike`), its reply read by :func:`_scanned`."""
        return "scan", self._scan_keys, (_PROMOTE_BATCH, _REAP_BATCH)

    def _beat_call(
        self, consumers: list[str], lasting: int | str
    ) -> tuple[str, tuple[str, ...], tuple[Any, ...]]:
        """The script, KEYS and ARGV of :meth:`heartbeat` (``lasting``: ms, or ``@<deadline>``)."""
        return "heartbeat", (self._keys.consumers,), (lasting, *consumers)

    def promote_due(self) -> int:
        """Move delayed tasks whose time has come onto their levels' due lists (served before
        the tasks waiting in the ready lists); returns how many moved."""
        total = 0
        while True:
            moved = self._scan(0)[0]
            total += moved
            if moved < _PROMOTE_BATCH:
                return total

    def next_due(self) -> float | None:
        """Seconds until the next delayed task is due (0 if one is due now), or None."""
        return self._scan(0)[1]

    def unrecorded(self, limit: int = 100) -> list[DeadLetter]:
        """Dead letters a worker loss made (release or reap, out of attempts) whose Failure
        record is not saved yet, oldest first, with their payloads. One taken out of the
        dead-letter set meanwhile (requeued, purged) is no longer owed a record: dropped."""
        client, _ = self._ready()
        k = self._keys
        with self._errors():
            ids = client.zrange(k.unrecorded, 0, limit - 1) if limit > 0 else []
            if not ids:
                return []
            pipe = client.pipeline(transaction=False)
            for task_id in ids:
                pipe.zscore(k.dead, task_id)
            pipe.hmget(k.deadinfo, ids)
            pipe.hmget(k.msg, ids)
            *scores, infos, payloads = pipe.execute()
            gone = [i for i, score in zip(ids, scores) if score is None]
            if gone:
                client.zrem(k.unrecorded, *gone)
        out = []
        for raw, score, info, payload in zip(ids, scores, infos, payloads):
            if score is None:
                continue
            reason, attempts = _reason(info)
            out.append(DeadLetter(raw.decode(), reason, score / 1000, attempts, payload))
        return out

    def recorded(self, task_ids: Iterable[str]) -> None:
        """The Failure records of these dead letters are saved: no longer owed."""
        ids = list(task_ids)
        if not ids:
            return
        client, _ = self._ready()
        with self._errors():
            client.zrem(self._keys.unrecorded, *ids)


def _owners(res: list[Any]) -> dict[str, dict[str, Any]]:
    """``owner.lua``'s reply: every cluster's owner record, by cluster id."""
    owners: dict[str, dict[str, Any]] = {}
    for name, text in zip(res[::2], res[1::2]):
        try:
            value = json.loads(text)
        except ValueError:
            continue  # not ours to read: never a reason to reclaim anything
        if isinstance(value, dict):
            owners[name.decode()] = value
    return owners


def _scanned(res: list[Any]) -> tuple[int, float | None, list[str]]:
    """``scan.lua``'s reply: tasks moved, seconds until the next delayed one, expired consumers."""
    due = None if res[1] < 0 else res[1] / 1000
    return int(res[0]), due, [c.decode() for c in res[2:]]


def _reason(info: bytes | None) -> tuple[str, int]:
    try:
        data = json.loads(info or b"")
        return str(data["reason"]), int(data["attempts"])
    except (ValueError, TypeError, KeyError):
        return "worker lost: out of attempts", 0
