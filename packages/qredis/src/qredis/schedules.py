"""Schedules kept in Redis beside the queue their firings go to (keys: :class:`ScheduleKeys`).

A schedule is a hash (its signed definition and state) and one entry in a due-time index (a
sorted set by due time), so a cluster finds what is due, and when the next one is, without
scanning. Firing is one script (``fire.lua``): it checks that the schedule is still due at the
time the caller read and unchanged since, queues the firing under the id derived from (schedule,
due time) unless that due time already fired, and advances the due time and the repeats. Any
number of clusters may race for the same firing; one queues it, the rest change nothing.

Definitions are signed with the codec's keys like any payload: whoever can write to Redis but
does not hold the secret cannot make a cluster run something of their choosing.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from qcore import (
    Codec,
    ConfigError,
    DueBatch,
    PayloadError,
    ScheduleSpec,
    ScheduleState,
    ScheduleType,
    TaskMessage,
    firing_message,
    get_logger,
)
from qredis.base import positive_int
from qredis.fanout import pipelined
from qredis.keys import ScheduleKeys
from qredis.transport import RedisTransport

__all__ = ["Firing", "RedisSchedules", "Stored", "initial_due"]

log = get_logger("qredis.schedules")

FIRED_KEPT = 32
"""Due times remembered per schedule as already fired (a stale copy written back can set one of
these again; it is then skipped, not fired twice)."""


@dataclass(frozen=True, slots=True)
class Stored:
    """A definition as read for firing: the spec and the revision it was read at."""

    spec: ScheduleSpec
    rev: bytes
    repeats: int


@dataclass(frozen=True, slots=True)
class Firing:
    """One firing the caller wants: schedule ``stored`` at ``due_ms``, then ``next_ms``."""

    stored: Stored
    due_ms: int
    next_ms: int | None
    repeats: int
    task_id: str
    payload: bytes
    max_attempts: int | None
    message: TaskMessage


class RedisSchedules:
    """Add, list, remove and fire the schedules of one transport's queue.

    ``codec`` signs definitions (use the cluster's: same secret). A firing goes to the
    transport's queue.
    """

    def __init__(self, transport: RedisTransport, codec: Codec) -> None:
        if not isinstance(transport, RedisTransport):
            raise TypeError(f"transport must be a RedisTransport, not {type(transport).__name__}")
        self.transport = transport
        self.codec = codec
        self.keys = ScheduleKeys.for_queue(transport.queue)

    @property
    def queue(self) -> str:
        """The queue the schedules live beside and their firings go to."""
        return self.transport.queue

    def __getstate__(self) -> dict[str, Any]:
        return {"transport": self.transport, "codec": self.codec}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["transport"], state["codec"])  # type: ignore[misc]

    # -- definitions ------------------------------------------------------------------------

    def add(
        self,
        spec: ScheduleSpec,
        *,
        due_ms: int | None = None,
        repeats: int | None = None,
        keep: bool = False,
        now_ms: int | None = None,
    ) -> bool:
        """Store ``spec``; returns False when nothing changed.

        The due time is ``due_ms`` if given (a Django row's ``next_run``, even a past one: it
        is caught up), else the spec's first due time, or for a recurring schedule whose first
        one has passed, its next occurrence from now. ``repeats`` defaults to the spec's.
        ``keep``: a schedule already stored with the same definition keeps its due time and
        repeats (a cluster declaring its schedules at each start).
        """
        if not isinstance(spec, ScheduleSpec):
            raise TypeError(f"spec must be a ScheduleSpec, not {type(spec).__name__}")
        repeats = spec.repeats if repeats is None else repeats
        if due_ms is None:
            due_ms = initial_due(spec, now_ms if now_ms is not None else _now_ms())
        signed = self.codec.encode(spec.to_wire())
        due = "" if due_ms is None else str(int(due_ms))
        index = self.keys.index(spec.cluster)
        hash_key = self.keys.schedule(spec.id)
        client, scripts = self.transport._ready()
        with self.transport._errors():
            for _ in range(10):
                previous = client.hget(hash_key, "index")
                previous = index if previous is None else previous.decode()
                keys = (self.keys.all, hash_key, index, previous)
                args = (spec.id, signed, due, repeats, "keep" if keep else "replace")
                written = int(scripts.schedule_put(keys, args))
                if written >= 0:
                    return written == 1
        raise RuntimeError(f"schedule {spec.id!r} kept moving between indexes; try again")

    def remove(self, schedule_id: str) -> bool:
        """Forget a schedule; returns False when there was none."""
        hash_key = self.keys.schedule(schedule_id)
        client, scripts = self.transport._ready()
        with self.transport._errors():
            for _ in range(10):
                index = client.hget(hash_key, "index")
                index = self.keys.due if index is None else index.decode()
                keys = (self.keys.all, hash_key, self.keys.fired(schedule_id), index)
                removed = int(scripts.schedule_remove(keys, (schedule_id,)))
                if removed >= 0:
                    return removed == 1
        raise RuntimeError(f"schedule {schedule_id!r} kept moving between indexes; try again")

    def ids(self) -> builtins.list[str]:
        """Every stored schedule id, sorted."""
        client, _ = self.transport._ready()
        with self.transport._errors():
            return sorted(m.decode() for m in client.smembers(self.keys.all))

    def get(self, schedule_id: str) -> ScheduleState | None:
        """A stored schedule and where it stands, or None."""
        found = self.list([schedule_id])
        return found[0] if found else None

    def list(self, ids: Iterable[str] | None = None) -> list[ScheduleState]:
        """The stored schedules (all of them, or those of ``ids``), by id; a definition that
        fails verification (signed with another secret) is logged and left out."""
        wanted = self.ids() if ids is None else list(ids)
        client, _ = self.transport._ready()
        with self.transport._errors(), client.pipeline(transaction=False) as pipe:
            for sid in wanted:
                pipe.hmget(self.keys.schedule(sid), "spec", "repeats", "index", "last_task")
                pipe.hget(self.keys.schedule(sid), "last_due")
            replies = pipe.execute()
            pipe.reset()
            for (_, _, index, _), sid in zip(replies[::2], wanted, strict=True):
                pipe.zscore(index or self.keys.due, sid)
            scores = pipe.execute()
        out = []
        for sid, fields, last_due, score in zip(
            wanted, replies[::2], replies[1::2], scores, strict=True
        ):
            signed, repeats, _, last_task = fields
            if signed is None:
                continue
            spec = self._verify(sid, signed)
            if spec is None:
                continue
            out.append(
                ScheduleState(
                    spec=spec,
                    due_ms=None if score is None else int(score),
                    repeats=int(repeats),
                    last_task=None if last_task is None else last_task.decode(),
                    last_due_ms=None if last_due is None else int(last_due),
                )
            )
        return out

    def upcoming(
        self, limit: int = 10, clusters: Iterable[str] = ()
    ) -> builtins.list[ScheduleState]:
        """The next ``limit`` schedules to fire (any cluster's, and those pinned to ``clusters``),
        earliest first: read from the indexes' heads, never a scan."""
        positive_int("limit", limit)
        client, _ = self.transport._ready()
        indexes = [self.keys.due, *(self.keys.index(c) for c in dict.fromkeys(clusters))]
        with self.transport._errors(), client.pipeline(transaction=False) as pipe:
            for index in indexes:
                pipe.zrange(index, 0, limit - 1, withscores=True)
            heads = pipe.execute()
        ranked = sorted((score, m.decode()) for head in heads for m, score in head)[:limit]
        states = {s.spec.id: s for s in self.list([sid for _, sid in ranked])}
        return [states[sid] for _, sid in ranked if sid in states]

    # -- firing -----------------------------------------------------------------------------

    def due(self, cluster: str | None, *, now_ms: int | None = None, limit: int = 1000) -> DueBatch:
        """The schedules due now for a cluster named ``cluster`` (those pinned to that name and
        those any cluster fires), at most ``limit`` per index, and the next due time after now.
        ``now_ms`` defaults to Redis's clock, which every cluster shares."""
        positive_int("limit", limit)
        indexes = [self.keys.due] if cluster is None else [self.keys.due, self.keys.index(cluster)]
        _, scripts = self.transport._ready()
        with self.transport._errors():
            reply = scripts.schedule_due(indexes, ("" if now_ms is None else now_ms, limit))
        now, nxt = int(reply[0]), int(reply[1])
        entries = [(reply[i].decode(), int(reply[i + 1])) for i in range(2, len(reply), 2)]
        entries.sort(key=lambda entry: entry[1])
        return DueBatch(now_ms=now, entries=entries, next_ms=None if nxt < 0 else nxt)

    def load(self, ids: Sequence[str]) -> dict[str, Stored]:
        """The definitions of ``ids`` with their revisions (one round trip); ids that are gone,
        or whose definition fails verification, are left out."""
        client, _ = self.transport._ready()
        with self.transport._errors(), client.pipeline(transaction=False) as pipe:
            for sid in ids:
                pipe.hmget(self.keys.schedule(sid), "spec", "rev", "repeats")
            replies = pipe.execute()
        out: dict[str, Stored] = {}
        for sid, (signed, rev, repeats) in zip(ids, replies, strict=True):
            if signed is None or rev is None:
                continue
            spec = self._verify(sid, signed)
            if spec is not None:
                out[sid] = Stored(spec=spec, rev=rev, repeats=int(repeats))
        return out

    def plan(self, stored: Stored, due_ms: int, now_ms: int, *, catch_up: bool) -> Firing:
        """The firing of ``stored`` at ``due_ms``: its message, signed, and what follows it."""
        spec = stored.spec
        repeats = stored.repeats
        after = repeats - 1 if repeats > 0 else repeats
        nxt = spec.advance(due_ms, now_ms, catch_up=catch_up)
        if nxt is None and spec.schedule_type is ScheduleType.ONCE:
            after = 0
        message = firing_message(spec, due_ms)
        try:
            payload = self.codec.encode_message(message)
        except ConfigError:
            # A codec pinned to wire version 1 (a rolling upgrade) cannot carry the firing's
            # schedule and due options; the task id still names the firing.
            options = replace(message.options, schedule=None, due=None)
            message = replace(message, options=options)
            payload = self.codec.encode_message(message)
        return Firing(
            stored=stored,
            due_ms=due_ms,
            next_ms=nxt,
            repeats=after,
            task_id=message.id,
            payload=payload,
            max_attempts=message.options.max_attempts,
            message=message,
        )

    def fire(self, firings: Sequence[Firing]) -> builtins.list[int]:
        """Apply ``firings`` (one pipelined round trip), each atomically: 1 queued, 2 already
        fired (only advanced), 0 not due any more or changed since read (nothing done)."""
        if not firings:
            return []
        transport = self.transport
        keys = self.keys
        calls = []
        for f in firings:
            sid = f.stored.spec.id
            limit = "" if f.max_attempts is None else f.max_attempts
            level = f.message.options.priority or 0
            calls.append(
                (
                    transport,
                    "fire",
                    (
                        keys.index(f.stored.spec.cluster),
                        keys.schedule(sid),
                        keys.fired(sid),
                        *transport._enqueue_keys_at(level),
                    ),
                    (
                        sid,
                        f.due_ms,
                        f.stored.rev,
                        "" if f.next_ms is None else f.next_ms,
                        f.repeats,
                        FIRED_KEPT,
                        f.task_id,
                        *transport._enqueue_args(f.task_id, f.payload, 0, limit, level),
                    ),
                )
            )
        return [int(r) for r in pipelined(calls)]

    def _verify(self, sid: str, signed: bytes) -> ScheduleSpec | None:
        try:
            return ScheduleSpec.from_wire(self.codec.decode(signed))
        except PayloadError as exc:
            log.error(
                "schedule.unverifiable",
                schedule=sid,
                error=type(exc).__name__,
                detail="signed with another secret: it is not fired; add it again",
            )
        except Exception as exc:
            log.error("schedule.unreadable", schedule=sid, error=f"{type(exc).__name__}: {exc}")
        return None


class ShardedSchedules(RedisSchedules):
    """A sharded queue's schedules: kept on shard 0, their firings queued there; each firing's
    id is marked done on its own shard first (:func:`~qredis.placement.mark_away`), as a
    chain's link is when placed, so a copy sent through ``enqueue`` (which lands there) while
    the firing waits or runs is refused as on an unsharded queue. A firing that then does not
    happen (fired already, changed) leaves a mark where nothing is ever queued under its id."""

    def __init__(self, shards: Sequence[RedisTransport], codec: Codec) -> None:
        super().__init__(shards[0], codec)
        self.shards = tuple(shards)

    def __getstate__(self) -> dict[str, Any]:
        return {"shards": self.shards, "codec": self.codec}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["shards"], state["codec"])  # type: ignore[misc]

    def fire(self, firings: Sequence[Firing]) -> builtins.list[int]:
        from qredis.placement import mark_away

        mark_away(self.shards, [(f.task_id, self.transport) for f in firings])
        return super().fire(firings)


def initial_due(spec: ScheduleSpec, now_ms: int) -> int | None:
    """Where a newly added schedule starts: its first due time, or for a recurring schedule
    whose first due time has passed, its next occurrence from now (a Once schedule in the past
    fires at once). None when it is paused (``repeats`` 0)."""
    if spec.repeats == 0:
        return None
    anchor = spec.anchor_ms
    if anchor >= now_ms or spec.schedule_type is ScheduleType.ONCE:
        return anchor
    return spec.next_due(now_ms - 1)


def _now_ms() -> int:
    return int(time.time() * 1000)
