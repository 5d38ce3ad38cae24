"""RedisTransport: Q's reliable queue on Redis (lists + Lua), implementing ``qcore.Transport``.

A task's life (keys in :mod:`qredis.keys`)::

    enqueue ─▶ queue ──fetch──▶ inflight:<consumer> ──ack──▶ (gone)
       │         ▲                   │    │
       └▶ delayed┘◀──retry_later─────┘    ├──dead_letter / out of attempts──▶ dead
                 ▲                        │
                 └──release / reap────────┘  (back to the head of the queue)

Every move between states is one Lua script (bulk enqueue: one MULTI/EXEC per chunk), so a
task is always in exactly one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

from qcore import Codec, Delivery, check_priority, get_logger
from qredis.base import chunks, ms, positive_int
from qredis.bulk import Chunk, resend_chunks, send_chunks, send_chunks_cluster
from qredis.cancel import Cancelling
from qredis.chains import Chains
from qredis.fetching import Fetching
from qredis.idempotent import IdempotentEnqueue
from qredis.inspection import Inspection
from qredis.recovery import Recovery
from qredis.replication import confirm_chunks, write_waited
from qredis.wire import bulk, command

if TYPE_CHECKING:
    from qredis.queues import RedisQueues
    from qredis.schedules import RedisSchedules
    from qredis.shards import ShardedQueue

__all__ = ["RedisTransport"]

log = get_logger("qredis.transport")


class RedisTransport(Recovery, Inspection, Cancelling, Chains, IdempotentEnqueue, Fetching):
    """A reliable Redis queue: at-least-once delivery, fencing tokens, heartbeats, a reaper,
    delayed tasks and dead letters. See ``docs/architecture.md`` ("Transport (qredis)").

    Connection: pass one of ``url`` (``redis://``, ``rediss://``, ``unix://``; default
    ``$Q_REDIS_URL`` or ``redis://127.0.0.1:6379/0``), ``connection`` (a ``redis.Redis``),
    ``pool`` (a ``redis.ConnectionPool``) or redis-py keyword arguments. Unless a client or pool
    is passed, every transport, store and board of the process with the same parameters shares one
    pool. A pickled transport carries only parameters and opens its own pool where it lands.

    ``max_attempts``: deliveries allowed (unless the task sets its own) before a task whose
    consumer keeps dying is dead-lettered. ``chunk_size``: tasks per all-or-nothing chunk of
    :meth:`enqueue_many`. ``consumer_ttl``: the deadline, in seconds, of a consumer that fetches
    before its first :meth:`heartbeat` (so its work can never be orphaned). ``block_slice``:
    longest single blocking wait inside :meth:`fetch` (a blocked fetch also wakes for delayed
    tasks falling due, and stays under the socket timeout). ``wait_replicas``: :meth:`enqueue`
    and :meth:`enqueue_many` return only once that many replicas acknowledged the tasks
    (Redis ``WAIT``, at most ``wait_timeout`` seconds, else
    :class:`~qredis.ReplicationTimeout`): a failover cannot lose them then (see
    :mod:`qredis.replication`). ``replay_window``: seconds an acked task's id is remembered
    (default 7 days, the result TTL's default; 0: not at all), during which a copy of its
    payload pushed back is dead-lettered as ``replayed`` instead of run (about 100 bytes of
    Redis per task acked in the window, see ``docs/operations/sizing.md``).

    A ``redis+cluster://`` URL or a ``redis.cluster.RedisCluster`` client reaches a Redis
    Cluster, a ``redis+sentinel://host:port[,host:port]/service[/db]`` URL or a client from
    ``Sentinel.master_for`` a Sentinel group's master (see :mod:`qredis.topology`).
    """

    # Parameters and plumbing: qredis.base; fetch: qredis.fetching; heartbeats, release, reap
    # and the delayed set: qredis.recovery; sizes, listings and dead letters: qredis.inspection.

    # -- enqueue ----------------------------------------------------------------------------

    def enqueue(
        self,
        task_id: str,
        payload: bytes,
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> None:
        """Store ``payload`` under ``task_id`` and queue it (or schedule it ``delay`` s ahead)
        at ``priority`` (-100 to 100, higher first; a delayed task keeps it).

        Idempotent per id: an id whose payload is already stored is left alone. One round
        trip. Raises :class:`~qredis.errors.TransportConnectionError` when Redis cannot be
        reached and :class:`~qredis.errors.TransportOutOfMemory` when it is full.
        """
        if not isinstance(task_id, str) or not task_id or "\0" in task_id:
            raise TypeError(f"task_id must be a non-empty string without NUL, not {task_id!r}")
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
        limit = "" if max_attempts is None else positive_int("max_attempts", max_attempts)
        if priority or type(priority) is not int:
            priority = check_priority(priority)
        client, scripts = self._ready()
        args = self._enqueue_args(task_id, payload, ms(delay) if delay else 0, limit, priority)
        if self.wait_replicas:
            with self._errors():
                keys = self._enqueue_keys_at(priority)
                self._write_waited(client, scripts.enqueue, keys, args)
            return
        with self._errors():
            # EVALSHA by hand on the held connection: this is the per-call hot path, and
            # redis-py's Script wrapper and per-command machinery cost more than the script.
            held = self._held
            if priority:
                keys = self._enqueue_keys_at(priority)
                cmd: tuple[Any, ...] = ("EVALSHA", scripts.enqueue.sha, len(keys), *keys)
                packed = command(*cmd, *args)
            else:
                keys, cmd = self._enqueue_keys0, self._enqueue_cmd
                packed = self._enqueue_head + bulk(*args)
            replies = None if held is None else held.call(packed, 1)
            if replies is None:  # a caller's client, or another thread holds the connection
                try:
                    replies = [client.execute_command(*cmd, *args)]
                except NoScriptError as exc:
                    replies = [exc]
            if isinstance(replies[0], NoScriptError):
                scripts.enqueue(keys, args)  # loads the script, then runs it
            elif isinstance(replies[0], Exception):
                raise replies[0]

    def _write_waited(
        self, client: Any, script: Any, keys: tuple[str, ...], args: tuple[Any, ...] | list[Any]
    ) -> Any:
        """``script`` then ``WAIT`` for ``wait_replicas`` (see :mod:`qredis.replication`)."""
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        return write_waited(
            client,
            self._keys.queue,
            self._keys.replicated,
            command,
            lambda master: master.script_load(script.script),
            self.wait_replicas,
            ms(self.wait_timeout),
            self.url,
        )

    @staticmethod
    def _enqueue_args(
        task_id: str, payload: bytes, delay_ms: int, limit: int | str, priority: int = 0
    ) -> tuple[Any, ...]:
        """enqueue.lua's ARGV (KEYS: ``_enqueue_keys_at(priority)``); a schedule's firing
        (fire.lua) passes the same, so change both here. Level 0 sends no fifth argument."""
        if priority:
            return (task_id, payload, delay_ms, limit, priority)
        return (task_id, payload, delay_ms, limit)

    def serving(self, queues: Sequence[str], weights: Sequence[int] | None = None) -> RedisQueues:
        """Several queues of this Redis as one transport (:class:`~qredis.RedisQueues`): in
        strict order, or in proportion to ``weights``."""
        from qredis.queues import RedisQueues

        return RedisQueues.serving(self, queues, weights)

    def sharded(self, shards: int, poll: float = 0.25) -> RedisTransport | ShardedQueue:
        """This queue spread over ``shards`` hash tags (:class:`~qredis.ShardedQueue`), or this
        transport itself for 1. ``poll``: on a Redis Cluster, how long an idle consumer waits
        on its home shard before it looks at the others."""
        from qredis.placement import check_count
        from qredis.shards import ShardedQueue

        if check_count(shards) == 1:
            return self
        return ShardedQueue.of(self, shards, poll)

    def schedules(self, codec: Codec) -> RedisSchedules:
        """The schedules of this queue (:class:`~qredis.RedisSchedules`), signed with ``codec``."""
        from qredis.schedules import RedisSchedules

        return RedisSchedules(self, codec)

    def enqueue_many(
        self,
        items: Iterable[tuple[str, bytes]],
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> int:
        """Enqueue ``(task_id, payload)`` pairs in chunks of ``chunk_size``, at ``priority``.

        Each chunk is all-or-nothing and applied once, even when its reply is lost and it has
        to be sent again (see :mod:`qredis.bulk`): one ``LPUSH`` per chunk, the payloads inside
        the queue entries, two windows of chunks on the wire at once. Ids are expected to be
        fresh (``qcore.new_id``): unlike :meth:`enqueue`, an id already stored is not looked up
        here; a copy of a live task is dropped when claimed, so it never runs twice at once.
        Returns how many tasks were queued. On an error, the chunks confirmed stay queued and
        the exception's note says how many tasks that is.
        """
        limit = b"" if max_attempts is None else b"%d" % positive_int("max_attempts", max_attempts)
        level = check_priority(priority) if priority or type(priority) is not int else 0
        client, scripts = self._ready()
        k = self._keys
        size = self.chunk_size
        with self._errors():
            if delay > 0:
                queued = 0
                keys = (k.msg, k.delayed, k.maxatt, k.prio)
                for chunk in chunks(items, size):
                    args = _schedule_args(chunk, ms(delay), limit, level)
                    if self.wait_replicas:
                        queued += int(self._write_waited(client, scripts.schedule_many, keys, args))
                    else:
                        queued += int(scripts.schedule_many(keys, args))
                return queued
            send = send_chunks_cluster if self._cluster else send_chunks
            if not self.wait_replicas:
                return send(client, k, level, chunks(items, size), limit)
            sent: list[Chunk] = []
            queued = send(client, k, level, chunks(items, size), limit, sent)
            confirm_chunks(
                client,
                k.queue,
                k.replicated,
                sent,
                resend_chunks,
                self.wait_replicas,
                ms(self.wait_timeout),
                self.url,
            )
            return queued

    # -- finishing --------------------------------------------------------------------------

    def ack(self, deliveries: Iterable[Delivery], *, request: str | None = None) -> list[bool]:
        """Forget finished tasks, one script for the batch. False where a token is stale.
        ``request``: the request id, when the batch is part of a larger one (see
        :meth:`_ack_call`)."""
        batch = list(deliveries)
        if not batch:
            return []
        _, scripts = self._ready()
        keys, args = self._ack_call(batch, request)
        keys.append(self._keys.prio)  # ack.lua's optional last key (see there)
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

    def _ack_call(
        self, batch: list[Delivery], request: str | None = None
    ) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of ``ack.lua``, with a request id made of the batch itself (its first
        fencing token, unique to one delivery, and its size): a call re-sent after a lost
        reply, by redis-py or by the worker once redis-py gave up, gets the first call's
        answer, not a refusal of its own acks. A transport over several queues acks each
        queue's part of a batch with the whole batch's id (``request``), so that a part of
        one batch never passes for the whole of another."""
        k = self._keys
        keys = [*self._ack_keys, *(k.inflight(d.consumer) for d in batch)]
        request = request or f"ack:{batch[0].token}:{len(batch)}"
        args: list[Any] = [batch[0].consumer, request, ms(self.replay_window)]
        for d in batch:
            args += (d.task_id, d.token)
        return keys, args

    def retry_later(self, delivery: Delivery, delay: float, payload: bytes | None = None) -> bool:
        """Put an in-flight task back, to be delivered again after ``delay`` seconds.

        Without ``payload`` the attempt count is kept (the caller can compare
        ``delivery.attempt`` with ``delivery.max_attempts``). With one (a retry after an
        exception: the next attempt's message) the stored payload is replaced and the
        delivery count starts again, in the same script. False, and nothing changes, when the
        token is stale.
        """
        _, scripts = self._ready()
        k = self._keys
        keys = (
            k.tokens,
            k.inflight(delivery.consumer),
            k.delayed,
            k.queue,
            k.msg,
            k.attempts,
            k.prio,
            k.levels,
            k.marker,
        )
        args: tuple[Any, ...] = (delivery.task_id, delivery.token, ms(delay))
        if payload is not None:
            args += (payload,)
        with self._errors():
            res = scripts.retry_later(keys, args)
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


_NUL = "\0"


def _schedule_args(
    chunk: list[tuple[str, bytes]], delay_ms: int, limit: bytes, priority: int
) -> list[Any]:
    """The ARGV of schedule_many.lua for one chunk."""
    args: list[Any] = [delay_ms, priority]
    try:
        for i, p in chunk:
            if not isinstance(i, str) or not i or _NUL in i:
                raise TypeError(f"task ids must be non-empty strings without NUL, not {i!r}")
            if not isinstance(p, bytes | bytearray | memoryview):
                raise TypeError(
                    f"enqueue_many takes (task_id: str, payload: bytes) pairs, not {p!r}"
                )
            args += (i, p, limit)
    except ValueError as exc:
        raise TypeError(f"enqueue_many takes (task_id: str, payload: bytes) pairs: {exc}") from None
    return args
