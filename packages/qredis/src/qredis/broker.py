"""RedisBroker: Q's reliable queue on Redis (lists + Lua), implementing ``qcore.Transport``.

A task's life (keys in :mod:`qredis.keys`)::

    enqueue ─▶ queue ──fetch──▶ inflight:<consumer> ──ack──▶ (gone)
       │         ▲                   │    │
       └▶ delayed┘◀──retry_later─────┘    ├──dead_letter / out of attempts──▶ dead
                 ▲                        │
                 └──release / reap────────┘  (back to the head of the queue)

Every move is one Lua script, so a task is always in exactly one place.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import uuid
from collections.abc import Collection, Iterable, Iterator
from typing import Any

import redis
from redis.exceptions import NoScriptError

from qcore import ConfigError, DeadLetter, Delivery, InFlight, Reaped, get_logger
from qredis.connection import Connector, redis_errors
from qredis.keys import QueueKeys
from qredis.scripts import Scripts

__all__ = ["RedisBroker"]

log = get_logger("qredis.broker")

_REAP_BATCH = 100  # expired consumers handled per reaper pass
_PROMOTE_BATCH = 1000  # due delayed tasks moved per script call
_ADMIN_BATCH = 1000


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, not {value!r}")
    return value


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


class RedisBroker:
    """A reliable Redis queue: at-least-once delivery, fencing tokens, heartbeats, a reaper,
    delayed tasks and dead letters. See ``docs/architecture.md`` ("Transport (qredis)").

    Connection: pass one of ``url`` (``redis://``, ``rediss://``, ``unix://``; default
    ``$Q_REDIS_URL`` or ``redis://127.0.0.1:6379/0``), ``connection`` (a ``redis.Redis``),
    ``pool`` (a ``redis.ConnectionPool``) or redis-py keyword arguments. Unless a client or pool
    is passed, every broker, store and board of the process with the same parameters shares one
    pool. A pickled broker carries only parameters and opens its own pool where it lands.

    ``max_attempts``: deliveries allowed (unless the task sets its own) before a task whose
    consumer keeps dying is dead-lettered. ``chunk_size``: tasks per all-or-nothing chunk of
    :meth:`enqueue_many`. ``consumer_ttl``: the deadline, in seconds, of a consumer that fetches
    before its first :meth:`heartbeat` (so its work can never be orphaned). ``block_slice``:
    longest single blocking wait inside :meth:`fetch` (a blocked fetch also wakes for delayed
    tasks falling due, and stays under the socket timeout).
    """

    def __init__(
        self,
        queue: str = "default",
        *,
        url: str | None = None,
        connection: redis.Redis | None = None,
        pool: redis.ConnectionPool | None = None,
        max_attempts: int = 3,
        chunk_size: int = 1000,
        consumer_ttl: float = 60.0,
        block_slice: float = 1.0,
        **redis_kwargs: Any,
    ) -> None:
        self._keys = QueueKeys.for_queue(queue)
        self.max_attempts = _positive_int("max_attempts", max_attempts)
        self.chunk_size = _positive_int("chunk_size", chunk_size)
        if not consumer_ttl > 0 or not block_slice > 0:
            raise ConfigError("consumer_ttl and block_slice must be positive numbers of seconds")
        self.consumer_ttl = float(consumer_ttl)
        self.block_slice = float(block_slice)
        self._conn = Connector(url, connection=connection, pool=pool, redis_kwargs=redis_kwargs)
        self._setup()

    def _setup(self) -> None:
        k = self._keys
        self._enqueue_keys = (k.queue, k.msg, k.delayed, k.maxatt)
        self._ack_keys = (k.tokens, k.msg, k.attempts, k.maxatt)
        self._scan_keys = (k.delayed, k.queue, k.consumers)
        self._pid = -1
        self._client: redis.Redis | None = None
        self._scripts: Scripts | None = None

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def queue(self) -> str:
        """The queue's name."""
        return self._keys.name

    @property
    def keys(self) -> QueueKeys:
        """The Redis keys of this queue."""
        return self._keys

    @property
    def url(self) -> str:
        """Where the broker connects, password masked (for logs and errors)."""
        return self._conn.display

    @property
    def client(self) -> redis.Redis:
        """The redis-py client this broker uses in this process."""
        client: redis.Redis = self._ready()[0]
        return client

    def _ready(self) -> tuple[Any, Scripts]:
        # The client is typed Any here: redis-py's return types are unions of every
        # decoding mode, and this client never decodes.
        if self._pid == os.getpid():
            return self._client, self._scripts  # type: ignore[return-value]
        client = self._conn.client
        self._client, self._scripts, self._pid = client, Scripts(client), os.getpid()
        # Fetch request ids: unique per broker object and process, cheap to make.
        self._request_prefix = f"{uuid.uuid4().hex[:12]}-"
        self._requests = itertools.count()  # next() is atomic under the GIL
        self._enqueue_cmd = ("EVALSHA", self._scripts.enqueue.sha, 4, *self._enqueue_keys)
        return client, self._scripts

    def _errors(self) -> Any:
        return redis_errors(self._conn.display)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "queue": self._keys.name,
            "max_attempts": self.max_attempts,
            "chunk_size": self.chunk_size,
            "consumer_ttl": self.consumer_ttl,
            "block_slice": self.block_slice,
            "conn": self._conn,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._keys = QueueKeys.for_queue(state["queue"])
        self.max_attempts = state["max_attempts"]
        self.chunk_size = state["chunk_size"]
        self.consumer_ttl = state["consumer_ttl"]
        self.block_slice = state["block_slice"]
        self._conn = state["conn"]
        self._setup()

    def __repr__(self) -> str:
        return f"RedisBroker(queue={self.queue!r}, url={self.url!r})"

    # -- enqueue ----------------------------------------------------------------------------

    def enqueue(
        self,
        task_id: str,
        payload: bytes,
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
    ) -> None:
        """Store ``payload`` under ``task_id`` and queue it (or schedule it ``delay`` s ahead).

        Idempotent per id: an id whose payload is already stored is left alone. One round
        trip. Raises :class:`~qredis.errors.BrokerConnectionError` when Redis cannot be
        reached and :class:`~qredis.errors.BrokerOutOfMemory` when it is full.
        """
        if not isinstance(task_id, str) or not task_id or "\0" in task_id:
            raise TypeError(f"task_id must be a non-empty string without NUL, not {task_id!r}")
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
        limit = "" if max_attempts is None else _positive_int("max_attempts", max_attempts)
        client, scripts = self._ready()
        args = (task_id, payload, _ms(delay) if delay else 0, limit)
        try:
            # EVALSHA straight through execute_command: this is the per-call hot path, and
            # redis-py's Script wrapper costs more than the script itself.
            client.execute_command(*self._enqueue_cmd, *args)
        except NoScriptError:
            with self._errors():
                scripts.enqueue(self._enqueue_keys, args)  # loads the script, then runs it
        except redis.RedisError as exc:
            with self._errors():
                raise exc

    def enqueue_many(
        self,
        items: Iterable[tuple[str, bytes]],
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
    ) -> int:
        """Enqueue ``(task_id, payload)`` pairs, one Lua call per chunk of ``chunk_size``.

        Each chunk is all-or-nothing, and applied at most once even when redis-py re-sends it
        after a lost reply. Ids are expected to be fresh (``qcore.new_id``): an id that is
        already live is not delivered twice at once (the copy is dropped when claimed), but
        unlike :meth:`enqueue` it is not looked up here, which keeps bulk enqueue about as
        fast as a pipelined LPUSH. Returns how many tasks were queued. On an error, earlier
        chunks stay queued: the exception's note says how many.
        """
        limit = b"" if max_attempts is None else b"%d" % _positive_int("max_attempts", max_attempts)
        delay_ms = _ms(delay)
        _, scripts = self._ready()
        script = scripts.enqueue_many
        k = self._keys
        queued = 0
        for chunk in _chunks(items, self.chunk_size):
            try:
                args = _chunk_args(chunk, delay_ms, limit)
                keys = (k.queue, k.chunk(uuid.uuid4().hex), k.msg, k.delayed, k.maxatt)
                with self._errors():
                    queued += max(0, int(script(keys, args)))
            except Exception as exc:
                exc.add_note(f"{queued} task(s) of earlier chunks were queued before this error")
                raise
        return queued

    # -- fetch ------------------------------------------------------------------------------

    def fetch(self, consumer: str, count: int = 1, timeout: float = 0.0) -> list[Delivery]:
        """Move up to ``count`` ready tasks into ``consumer``'s in-flight list, atomically.

        Blocks up to ``timeout`` seconds for a first task (0: return at once). The wake-up
        path is two round trips: ``BLMOVE`` of one id, then one script that claims it and up
        to ``count - 1`` more.
        """
        if not isinstance(consumer, str) or not consumer:
            raise TypeError(f"consumer must be a non-empty string, not {consumer!r}")
        _positive_int("count", count)
        deliveries, next_due = self._grab(consumer, count, False)
        if deliveries or not timeout > 0:
            return deliveries
        client, _ = self._ready()
        inflight = self._keys.inflight(consumer)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            block = min(remaining, self.block_slice)
            if next_due is not None:
                block = min(block, next_due)
            # BLMOVE treats 0 as "forever": never ask for less than 10 ms.
            with self._errors():
                moved = client.blmove(self._keys.queue, inflight, max(block, 0.01), "RIGHT", "LEFT")
            deliveries, next_due = self._grab(consumer, count, moved is not None)
            if deliveries:
                return deliveries

    def _grab(self, consumer: str, count: int, woke: bool) -> tuple[list[Delivery], float | None]:
        _, scripts = self._ready()
        k = self._keys
        keys = (
            k.queue,
            k.inflight(consumer),
            k.msg,
            k.attempts,
            k.tokens,
            k.maxatt,
            k.seq,
            k.delayed,
            k.consumers,
            k.fetches,
        )
        args = (
            count,
            self.max_attempts,
            consumer,
            _ms(self.consumer_ttl),
            "1" if woke else "0",
            f"{self._request_prefix}{next(self._requests)}",
        )
        with self._errors():
            res = scripts.fetch(keys, args)
        dropped, dups = res[1], res[2]
        for raw in res[3 : 3 + dropped]:
            log.error(
                "task.payload_missing",
                task_id=raw.decode(),
                queue=self.queue,
                consumer=consumer,
                detail="the id was queued but its payload is gone; the id was dropped",
            )
        for raw in res[3 + dropped : 3 + dropped + dups]:
            log.warning(
                "task.duplicate_dropped",
                task_id=raw.decode(),
                queue=self.queue,
                detail="enqueued again while live; the copy was dropped",
            )
        body = res[3 + dropped + dups :]
        if not body:
            return [], (None if res[0] < 0 else res[0] / 1000)
        return [
            Delivery(
                body[i].decode(),
                body[i + 1],
                int(body[i + 2]),
                int(body[i + 3]),
                int(body[i + 4]),
                consumer,
            )
            for i in range(0, len(body), 5)
        ], None

    def payload(self, task_id: str) -> bytes | None:
        """The stored payload of a claimed (in-flight), delayed or dead task, or None."""
        client, _ = self._ready()
        with self._errors():
            found = client.hget(self._keys.msg, task_id)
        return None if found is None else bytes(found)

    # -- finishing --------------------------------------------------------------------------

    def ack(self, deliveries: Iterable[Delivery]) -> list[bool]:
        """Forget finished tasks, one script for the batch. False where a token is stale."""
        batch = list(deliveries)
        if not batch:
            return []
        _, scripts = self._ready()
        k = self._keys
        keys = [*self._ack_keys, *(k.inflight(d.consumer) for d in batch)]
        args: list[Any] = []
        for d in batch:
            args += (d.task_id, d.token)
        with self._errors():
            res = scripts.ack(keys, args)
        out = [bool(x) for x in res]
        for d, ok in zip(batch, out):
            if not ok:
                log.warning(
                    "task.ack_refused",
                    task_id=d.task_id,
                    consumer=d.consumer,
                    token=d.token,
                    detail="stale fencing token: the task was redelivered or released since",
                )
        return out

    def retry_later(self, delivery: Delivery, delay: float) -> bool:
        """Put an in-flight task back, to be delivered again after ``delay`` seconds.

        The attempt count is kept (the caller can compare ``delivery.attempt`` with
        ``delivery.max_attempts``). False, and nothing changes, when the token is stale.
        """
        _, scripts = self._ready()
        k = self._keys
        keys = (k.tokens, k.inflight(delivery.consumer), k.delayed, k.queue)
        with self._errors():
            res = scripts.retry_later(keys, (delivery.task_id, delivery.token, _ms(delay)))
        return bool(res)

    def dead_letter(self, delivery: Delivery, reason: str) -> bool:
        """Take an in-flight task out of circulation with ``reason``; False if the token is
        stale (nothing changes then)."""
        _, scripts = self._ready()
        k = self._keys
        keys = (k.tokens, k.inflight(delivery.consumer), k.dead, k.deadinfo, k.attempts)
        with self._errors():
            res = scripts.dead_letter(keys, (delivery.task_id, delivery.token, str(reason)))
        if res:
            log.warning("task.dead_lettered", task_id=delivery.task_id, reason=reason)
        return bool(res)

    # -- consumers and recovery ---------------------------------------------------------------

    def release(self, consumer: str, *, started: Collection[str] = ()) -> Reaped:
        """Return all of ``consumer``'s in-flight tasks to the head of the queue, now.

        Tasks in ``started`` keep their attempt count and are dead-lettered if it reached their
        limit; the others never ran and have this delivery uncounted.
        """
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
        )
        with self._errors():
            res = scripts.requeue(
                keys, (consumer, mode, owner, self.max_attempts, reason, *started)
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

    def heartbeat(self, consumers: Iterable[str], ttl: float) -> None:
        """Declare ``consumers`` alive for ``ttl`` more seconds (one ZADD, Redis clock)."""
        names = list(consumers)
        if not names:
            return
        if not ttl > 0:
            raise ValueError(f"ttl must be a positive number of seconds, not {ttl!r}")
        _, scripts = self._ready()
        with self._errors():
            scripts.heartbeat((self._keys.consumers,), (_ms(ttl), *names))

    def forget(self, consumers: Iterable[str]) -> None:
        """Deregister consumers that stopped. One still holding tasks is marked expired
        instead, so the next :meth:`reap` returns its work."""
        names = list(consumers)
        if not names:
            return
        _, scripts = self._ready()
        k = self._keys
        with self._errors():
            scripts.forget((k.consumers, k.fetches, *(k.inflight(c) for c in names)), names)

    def reap(self) -> Reaped:
        """Move due delayed tasks to the queue, then requeue the in-flight tasks of consumers
        whose heartbeat expired (one reaper at a time, under a ``SET NX PX`` lock).

        Tasks keep their attempt count; one at its limit is dead-lettered with a reason naming
        the lost consumer. One round trip and no writes when there is nothing to do.
        """
        expired = self._scan(_REAP_BATCH)[2]
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

    def _scan(self, consumers: int) -> tuple[int, float | None, list[str]]:
        _, scripts = self._ready()
        with self._errors():
            res = scripts.scan(self._scan_keys, (_PROMOTE_BATCH, consumers))
        due = None if res[1] < 0 else res[1] / 1000
        return int(res[0]), due, [c.decode() for c in res[2:]]

    def promote_due(self) -> int:
        """Move delayed tasks whose time has come to the queue; returns how many moved."""
        total = 0
        while True:
            moved = self._scan(0)[0]
            total += moved
            if moved < _PROMOTE_BATCH:
                return total

    def next_due(self) -> float | None:
        """Seconds until the next delayed task is due (0 if one is due now), or None."""
        return self._scan(0)[1]

    # -- sizes and inspection ---------------------------------------------------------------

    def queue_size(self) -> int:
        """Tasks ready to run."""
        client, _ = self._ready()
        with self._errors():
            return int(client.llen(self._keys.queue))

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
            data: dict[str, Any] = (
                json.loads(info) if info else {"reason": "<reason lost>", "attempts": 0}
            )
            out.append(
                DeadLetter(
                    raw.decode(), data["reason"], score / 1000, int(data["attempts"]), payload
                )
            )
        return out

    def requeue_dead(self, task_ids: Iterable[str] | None = None) -> int:
        """Queue dead letters again with a fresh attempt count (all of them when None)."""
        return self._dead_admin("requeue", task_ids)

    def purge_dead(self, task_ids: Iterable[str] | None = None) -> int:
        """Delete dead letters for good (all of them when None)."""
        return self._dead_admin("purge", task_ids)

    def _dead_admin(self, action: str, task_ids: Iterable[str] | None) -> int:
        _, scripts = self._ready()
        k = self._keys
        keys = (k.dead, k.deadinfo, k.msg, k.attempts, k.maxatt, k.queue)
        total = 0
        with self._errors():
            if task_ids is None:
                while True:
                    n = int(scripts.dead_admin(keys, (action, "all", _ADMIN_BATCH)))
                    total += n
                    if n < _ADMIN_BATCH:
                        return total
            for chunk in _chunks(((i, "") for i in task_ids), _ADMIN_BATCH):
                ids = [i for i, _ in chunk]
                total += int(scripts.dead_admin(keys, (action, "ids", *ids)))
        return total

    # -- server -----------------------------------------------------------------------------

    def ping(self) -> bool:
        """True when Redis answers."""
        try:
            client, _ = self._ready()
            return bool(client.ping())
        except redis.RedisError:
            return False

    def check_server(self) -> list[str]:
        """Warnings about server settings that put tasks at risk (empty when all is well)."""
        from qredis.server import check_server

        return check_server(self.client, self.url)

    def close(self) -> None:
        """Release the connections this broker opened (a caller's client is left open)."""
        self._conn.close()
        self._pid = -1
        self._client = None
        self._scripts = None


_NUL = "\0"


def _entry_id(entry: bytes) -> str:
    """The task id of a list entry: a bare id, or an inline entry (see enqueue_many.lua)."""
    if entry[:1] == b"\0":
        return entry[1 : entry.index(b"\0", 1)].decode()
    return entry.decode()


def _chunk_args(chunk: list[tuple[str, bytes]], delay_ms: int, limit: bytes) -> list[Any]:
    """The ARGV of enqueue_many.lua for one chunk (see its header)."""
    try:
        if delay_ms <= 0:
            args: list[Any] = [0]
            args += [b"\0%s\0%s\0%s" % (i.encode(), limit, p) for i, p in chunk]
        else:
            args = [delay_ms]
            for i, p in chunk:
                args += (i, bytes(p), limit)
        bad = [i for i, _ in chunk if not i or _NUL in i]
    except (TypeError, AttributeError, ValueError) as exc:
        raise TypeError(f"enqueue_many takes (task_id: str, payload: bytes) pairs: {exc}") from None
    if bad:
        raise TypeError(f"task ids must be non-empty strings without NUL, not {bad[0]!r}")
    return args


def _chunks(items: Iterable[tuple[str, Any]], size: int) -> Iterator[list[tuple[str, Any]]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk
