"""Sizes and listings of a queue, and dead-letter administration."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from qcore import DEAD_REASONS_LIMIT, DeadLetter, InFlight, count_reasons
from qredis.base import TransportBase, chunks, ms

__all__ = ["Inspection", "Waiting"]

_ADMIN_BATCH = 1000
SEARCH_WINDOW = 1000
"""Entries at the head of the queue :meth:`Inspection.remove_waiting` searches for inline ones."""


@dataclass(frozen=True, slots=True)
class Waiting:
    """A task that waits for a worker: queued (``due`` None) or delayed until ``due``."""

    task_id: str
    payload: bytes | None
    attempts: int
    due: float | None = None
    """Epoch seconds when a delayed task becomes ready."""


class Inspection(TransportBase):
    """Sizes, listings and dead-letter administration (part of :class:`~qredis.RedisTransport`)."""

    def payload(self, task_id: str) -> bytes | None:
        """The stored payload of a claimed (in-flight), delayed or dead task, or None."""
        client, _ = self._ready()
        with self._errors():
            found = client.hget(self._keys.msg, task_id)
        return None if found is None else bytes(found)

    def queue_size(self) -> int:
        """Tasks ready to run, on every priority level."""
        return sum(self.level_sizes().values())

    def level_sizes(self) -> dict[int, int]:
        """Tasks ready to run per priority level (level 0 always present), highest first."""
        client, _ = self._ready()
        k = self._keys
        with self._errors():
            levels = [0, *(int(level) for level in client.zrange(k.levels, 0, -1))]
            pipe = client.pipeline(transaction=False)
            for level in levels:
                pipe.llen(k.due_list(level))
                pipe.llen(k.ready(level))
            sizes = pipe.execute()
        out: dict[int, int] = {}
        for i, level in enumerate(levels):
            out[level] = out.get(level, 0) + int(sizes[2 * i]) + int(sizes[2 * i + 1])
        return dict(sorted(out.items(), reverse=True))

    def delayed_size(self) -> int:
        """Tasks waiting for their time (eta or retry delay)."""
        client, _ = self._ready()
        with self._errors():
            return int(client.zcard(self._keys.delayed))

    def dead_size(self) -> int:
        """How many tasks are dead-lettered."""
        client, _ = self._ready()
        with self._errors():
            return int(client.zcard(self._keys.dead))

    def consumers(self) -> dict[str, float]:
        """Registered consumers and their heartbeat deadlines (epoch seconds)."""
        client, _ = self._ready()
        with self._errors():
            pairs = client.zrange(self._keys.consumers, 0, -1, withscores=True)
        return {name.decode(): score / 1000 for name, score in pairs}

    def inflight_size(self) -> int:
        """Tasks handed to consumers and not acked."""
        client, _ = self._ready()
        names = list(self.consumers())
        if not names:
            return 0
        with self._errors():
            pipe = client.pipeline(transaction=False)
            for name in names:
                pipe.llen(self._keys.inflight(name))
            return sum(int(n) for n in pipe.execute())

    def inflight(self, limit: int = 100) -> list[InFlight]:
        """Some in-flight tasks (up to ``limit``), for status pages."""
        client, _ = self._ready()
        names = list(self.consumers())
        if not names or limit <= 0:
            return []
        with self._errors():
            pipe = client.pipeline(transaction=False)
            for name in names:
                pipe.lrange(self._keys.inflight(name), 0, limit - 1)
            held = [(n, _entry_id(i)) for n, ids in zip(names, pipe.execute()) for i in ids]
            held = held[:limit]
            if not held:
                return []
            attempts = client.hmget(self._keys.attempts, [i for _, i in held])
        return [InFlight(i, n, int(a or 0)) for (n, i), a in zip(held, attempts)]

    def waiting(self, limit: int = 100) -> list[Waiting]:
        """The next ``limit`` tasks a worker will take, head first, with their payloads."""
        client, _ = self._ready()
        if limit <= 0:
            return []
        k = self._keys
        with self._errors():
            entries = list(reversed(client.lrange(k.queue, -limit, -1)))
            if not entries:
                return []
            ids = [_entry_id(e) for e in entries]
            pipe = client.pipeline(transaction=False)
            pipe.hmget(k.msg, ids)
            pipe.hmget(k.attempts, ids)
            payloads, attempts = pipe.execute()
        return [
            Waiting(i, _inline_payload(e) or p, int(a or 0))
            for i, e, p, a in zip(ids, entries, payloads, attempts)
        ]

    def delayed(self, limit: int = 100) -> list[Waiting]:
        """The ``limit`` delayed tasks due first, with their due times and payloads."""
        client, _ = self._ready()
        if limit <= 0:
            return []
        k = self._keys
        with self._errors():
            pairs = client.zrange(k.delayed, 0, limit - 1, withscores=True)
            if not pairs:
                return []
            ids = [i for i, _ in pairs]
            pipe = client.pipeline(transaction=False)
            pipe.hmget(k.msg, ids)
            pipe.hmget(k.attempts, ids)
            payloads, attempts = pipe.execute()
        return [
            Waiting(raw.decode(errors="replace"), p, int(a or 0), score / 1000)
            for (raw, score), p, a in zip(pairs, payloads, attempts)
        ]

    def remove_waiting(self, task_ids: Iterable[str]) -> list[str]:
        """Delete tasks that wait (queued, or delayed) before a worker takes them; returns
        the ids removed (one a worker took meanwhile is not). Queued tasks enqueued in bulk are
        found among the first :data:`SEARCH_WINDOW` at the head of the queue."""
        _, scripts = self._ready()
        k = self._keys
        keys = (k.queue, k.delayed, k.msg, k.attempts, k.maxatt)
        removed: list[str] = []
        with self._errors():
            for chunk in chunks(((i, "") for i in task_ids), _ADMIN_BATCH):
                ids = [i for i, _ in chunk]
                found = scripts.remove_waiting(keys, (SEARCH_WINDOW, *ids))
                removed.extend(r.decode() if isinstance(r, bytes) else str(r) for r in found)
        return removed

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The most recent dead letters first, with their payloads."""
        client, _ = self._ready()
        if limit <= 0:
            return []
        k = self._keys
        with self._errors():
            pairs = client.zrevrange(k.dead, 0, limit - 1, withscores=True)
            if not pairs:
                return []
            ids = [i for i, _ in pairs]
            pipe = client.pipeline(transaction=False)
            pipe.hmget(k.deadinfo, ids)
            pipe.hmget(k.msg, ids)
            infos, payloads = pipe.execute()
        out = []
        for (raw, score), info, payload in zip(pairs, infos, payloads):
            reason, attempts = _dead_info(info)
            out.append(
                DeadLetter(raw.decode(errors="replace"), reason, score / 1000, attempts, payload)
            )
        return out

    def dead_reasons(self, limit: int = DEAD_REASONS_LIMIT) -> dict[str, int]:
        """The newest ``limit`` dead letters counted by the kind of their reason
        (:func:`qcore.reason_kind`), the most frequent first; reads the reasons, not the
        payloads (two round trips)."""
        client, _ = self._ready()
        if limit <= 0:
            return {}
        k = self._keys
        with self._errors():
            ids = client.zrevrange(k.dead, 0, limit - 1)
            infos = client.hmget(k.deadinfo, ids) if ids else []
        return count_reasons(_dead_info(info)[0] for info in infos)

    def trim_dead(self, max_age: float, keep: int) -> int:
        """Drop dead letters older than ``max_age`` seconds, then the oldest beyond ``keep``
        (their payloads too); returns how many went."""
        _, scripts = self._ready()
        k = self._keys
        keys = (k.dead, k.deadinfo, k.msg, k.attempts, k.maxatt, k.unrecorded)
        total = 0
        with self._errors():
            while True:
                n = int(scripts.dead_trim(keys, (ms(max_age), int(keep), _ADMIN_BATCH)))
                total += n
                if n < _ADMIN_BATCH:
                    return total

    def requeue_dead(self, task_ids: Iterable[str] | None = None) -> int:
        """Queue dead letters again with a fresh attempt count (all of them when None)."""
        return self._dead_admin("requeue", task_ids)

    def purge_dead(self, task_ids: Iterable[str] | None = None) -> int:
        """Delete dead letters for good (all of them when None)."""
        return self._dead_admin("purge", task_ids)

    def _dead_admin(self, action: str, task_ids: Iterable[str] | None) -> int:
        _, scripts = self._ready()
        k = self._keys
        keys = (
            k.dead,
            k.deadinfo,
            k.msg,
            k.attempts,
            k.maxatt,
            k.queue,
            k.prio,
            k.levels,
            k.marker,
            k.done,
        )
        total = 0
        with self._errors():
            if task_ids is None:
                while True:
                    n = int(scripts.dead_admin(keys, (action, "all", _ADMIN_BATCH)))
                    total += n
                    if n < _ADMIN_BATCH:
                        return total
            for chunk in chunks(((i, "") for i in task_ids), _ADMIN_BATCH):
                ids = [i for i, _ in chunk]
                total += int(scripts.dead_admin(keys, (action, "ids", *ids)))
        return total


def _entry_id(entry: bytes) -> str:
    """The task id of a list entry: a bare id, or an inline entry (see enqueue_many.lua)."""
    if entry[:1] == b"\0":
        return entry[1 : entry.index(b"\0", 1)].decode()
    return entry.decode()


def _inline_payload(entry: bytes) -> bytes | None:
    """The payload carried inside an inline entry, None for a bare id."""
    if entry[:1] != b"\0":
        return None
    second = entry.index(b"\0", 1)
    third = entry.index(b"\0", second + 1)
    return bytes(entry[third + 1 :])


def _dead_info(info: bytes | None) -> tuple[str, int]:
    """The reason and attempt count kept for a dead letter; an entry Q did not write (or that
    was changed in Redis) is shown as unreadable rather than breaking every listing."""
    if not info:
        return "<reason lost>", 0
    try:
        data: Any = json.loads(info)
        return str(data["reason"]), int(data["attempts"])
    except (ValueError, TypeError, KeyError):
        return f"<unreadable dead-letter entry: {bytes(info)[:100]!r}>", 0
