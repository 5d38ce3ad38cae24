"""The producing half of a Redis queue under asyncio (:class:`AsyncQueue`): enqueue.lua (and
enqueue_unique.lua), as :class:`~qredis.RedisTransport` runs it, batched per event-loop step
into one script call. :mod:`qredis.aio`'s ``Producer`` sends through it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from qcore import ConfigError, check_priority
from qredis.aio_bulk import AsyncBulk
from qredis.aio_cancel import AsyncCancelling
from qredis.aio_chains import AsyncChains
from qredis.base import _replicas, ms, positive_int
from qredis.connection import redis_errors
from qredis.keys import QueueKeys
from qredis.replication import MARK_TTL_MS, check_wait
from qredis.scripts import source
from qredis.wire import command

__all__ = ["BATCH_SCRIPT", "UNIQUE_BATCH_SCRIPT", "AsyncQueue"]

BATCH_SCRIPT = (
    "#!lua\n"
    "local function enqueue(KEYS, ARGV)\n" + source("enqueue").removeprefix("#!lua\n") + "\nend\n"
    "local out, keys = {}, {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]}\n"
    "for i = 1, #ARGV, 5 do\n"
    "  local level = ARGV[i + 4]\n"
    "  keys[1] = level == '0' and KEYS[1] or (KEYS[1] .. ':' .. level)\n"
    "  out[#out + 1] = enqueue(keys, {ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], level})\n"
    "end\n"
    "return out\n"
)
"""enqueue.lua's own body run for each call of a batch (5 ARGV each: enqueue.lua's, its
priority last), in one atomic step: past ``maxmemory`` Redis refuses the whole batch before it
writes anything. Level 0's ready list is KEYS[1]; another level's is its name with ``:<level>``
appended (as :meth:`qredis.QueueKeys.ready` names it), under the same hash tag."""

UNIQUE_BATCH_SCRIPT = (
    "#!lua\n"
    "local function enqueue_unique(KEYS, ARGV)\n"
    + source("enqueue_unique").removeprefix("#!lua\n")
    + "\nend\n"
    "local out, n = {}, 8\n"
    "local keys = {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], '', KEYS[8]}\n"
    "for i = 1, #ARGV, 6 do\n"
    "  local level = ARGV[i + 5]\n"
    "  keys[1] = level == '0' and KEYS[1] or (KEYS[1] .. ':' .. level)\n"
    "  n = n + 1\n"
    "  keys[8] = KEYS[n]\n"
    "  out[#out + 1] = enqueue_unique(keys,\n"
    "    {ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], level})\n"
    "end\n"
    "return out\n"
)
"""enqueue_unique.lua's own body run for each unique task of a batch, one after the other in one
atomic step (a second task of one lock finds the first holding it): KEYS are enqueue.lua's for
level 0, ``dead``, then one lock per call; 6 ARGV per call (enqueue_unique.lua's)."""

_ENQUEUE, _UNIQUE = 0, 1
"""The two kinds of batched calls (their scripts: :data:`BATCH_SCRIPT`,
:data:`UNIQUE_BATCH_SCRIPT`)."""

_Pending = list[tuple[list[Any], "asyncio.Future[Any]"]]


def _where(client: Any) -> str:
    """Where a client points, for errors (no password)."""
    if isinstance(client, aioredis.RedisCluster):
        nodes = ",".join(client.nodes_manager.startup_nodes) or "?"
        return f"redis+cluster://{nodes}"
    pool = client.connection_pool
    if isinstance(pool, AsyncSentinelPool):
        return f"redis+sentinel://.../{pool.service_name}"
    kwargs = pool.connection_kwargs
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


class AsyncQueue(AsyncBulk, AsyncChains, AsyncCancelling):
    """The producing half of a Redis queue, awaited (``qcore.AsyncTransport``): enqueue.lua, as
    :class:`~qredis.RedisTransport` runs it, batched per event-loop step into one script call;
    bulk enqueues (idempotent ones too) from :class:`~qredis.aio_bulk.AsyncBulk`, unique tasks
    and chains from :class:`~qredis.aio_chains.AsyncChains`, ``cancel`` from
    :class:`~qredis.aio_cancel.AsyncCancelling`."""

    def __init__(
        self,
        client: aioredis.Redis,
        queue: str = "default",
        *,
        wait_replicas: int = 0,
        wait_timeout: float = 2.0,
    ) -> None:
        self._client = client
        self._keys = QueueKeys.for_queue(queue)
        k = self._keys
        self._wait, self._wait_ms = _replicas(wait_replicas), ms(_wait_timeout(wait_timeout))
        if self._wait and isinstance(client, aioredis.RedisCluster):
            raise ConfigError(
                "wait_replicas is not taken by the asyncio producer on a Redis Cluster yet "
                "(redis.asyncio routes each command itself): use qredis.Producer there"
            )
        # wait_replicas: the mark's SET and WAIT, sent after each write on its connection (see
        # qredis.replication: the mark comes after the writes in the replication stream).
        self._wait_tail = b""
        if self._wait:
            set_mark = command("SET", k.replicated, "1", "PX", MARK_TTL_MS)
            self._wait_tail = set_mark + command("WAIT", self._wait, self._wait_ms)
        self._enqueue_keys = [k.queue, k.msg, k.delayed, k.maxatt, k.levels, k.prio, k.marker]
        self._script = client.register_script(BATCH_SCRIPT)
        self._unique_script = client.register_script(UNIQUE_BATCH_SCRIPT)
        self._pending: tuple[_Pending, _Pending] = ([], [])
        self._where = _where(client)

    @property
    def queue(self) -> str:
        return self._keys.name

    async def enqueue(
        self,
        task_id: str,
        payload: bytes,
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> None:
        """Store ``payload`` under ``task_id`` and queue it (``delay`` s ahead, if given) at
        ``priority``; idempotent per id, as the sync transport's."""
        if not isinstance(task_id, str) or not task_id or "\0" in task_id:
            raise TypeError(f"task_id must be a non-empty string without NUL, not {task_id!r}")
        limit = "" if max_attempts is None else positive_int("max_attempts", max_attempts)
        if priority or type(priority) is not int:
            check_priority(priority)
        args = [task_id, payload, ms(delay) if delay else 0, limit, priority]
        await self._batched(_ENQUEUE, args)

    async def enqueue_unique(
        self,
        task_id: str,
        payload: bytes,
        *,
        lock: str,
        ttl: float,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> str:
        """As :meth:`qredis.RedisTransport.enqueue_unique`: queue the task under ``lock``
        unless a live task holds it; the id of the task holding it (``task_id`` when queued
        now). The unique tasks of one loop step are one script call, as plain enqueues are
        (:data:`UNIQUE_BATCH_SCRIPT`); sent again after a dropped connection, the script finds
        the task's own id holding the lock and queues nothing twice."""
        if not isinstance(task_id, str) or not task_id or "\0" in task_id:
            raise TypeError(f"task_id must be a non-empty string without NUL, not {task_id!r}")
        level = check_priority(priority)
        limit = "" if max_attempts is None else positive_int("max_attempts", max_attempts)
        due = ms(delay) if delay else 0
        args = [self._keys.unique(lock), task_id, payload, due, limit, max(1, ms(ttl)), level]
        return _bytes(await self._batched(_UNIQUE, args)).decode()

    async def _batched(self, kind: int, args: list[Any]) -> Any:
        """Join this loop step's batch of ``kind``; its reply for ``args``."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        pending = self._pending[kind]
        pending.append((args, future))
        if len(pending) == 1:
            # The first call of this loop step sends the batch once the others have joined it.
            asyncio.get_running_loop().call_soon(self._flush_soon, kind)
        return await future

    def _flush_soon(self, kind: int) -> None:
        batch = self._pending[kind][:]
        self._pending[kind].clear()
        task = asyncio.ensure_future(self._flush(batch, kind))
        task.add_done_callback(_quiet)

    async def _send(self, calls: list[list[Any]], kind: int = _ENQUEUE) -> list[Any]:
        """:meth:`_evalsha`, the script loaded first where Redis lost it; a reply per call."""
        script = self._unique_script if kind == _UNIQUE else self._script
        with redis_errors(self._where):
            replies = await self._evalsha(calls, kind)
            if any(isinstance(reply, NoScriptError) for reply in replies):
                # A Redis restarted without its scripts: load it, then send it all again
                # (enqueue.lua changes nothing for an id already stored, nor
                # enqueue_unique.lua for a task whose own id holds its lock).
                script.sha = await self._client.script_load(script.script)
                replies = await self._evalsha(calls, kind)
        return replies

    async def _flush(self, batch: _Pending, kind: int) -> None:
        try:
            replies = await self._send([args for args, _ in batch], kind)
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), reply in zip(batch, replies):
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(_translated(self._where, reply))
            else:
                future.set_result(reply)

    async def _evalsha(self, calls: list[list[Any]], kind: int = _ENQUEUE) -> list[Any]:
        """One ``EVALSHA`` of :data:`BATCH_SCRIPT` (or :data:`UNIQUE_BATCH_SCRIPT`, each
        call's lock among its KEYS) for the calls: one round trip, one reply.

        Framed with :mod:`qredis.wire` and written on a connection of the pool, rather than
        through redis.asyncio's pipeline, whose per-command packing and per-reply parsing cost
        more than the enqueue itself (tools/bench/README.md, 'asyncio producer'). Sent again
        once on a dropped connection: enqueue.lua changes nothing for an id already stored.
        """
        sha = self._script.sha
        keys = self._enqueue_keys
        argv = [part for args in calls for part in args]
        if kind == _UNIQUE:
            sha = self._unique_script.sha
            keys = [*keys, self._keys.dead, *(args[0] for args in calls)]
            argv = [part for args in calls for part in args[1:]]
        if isinstance(self._client, aioredis.RedisCluster):
            # redis-py routes it to the node of the queue's slot, following MOVED and a
            # promoted replica (no raw connection of ours there).
            try:
                reply = await self._client.evalsha(sha, len(keys), *keys, *argv)
            except NoScriptError as exc:
                return [exc] * len(calls)
            except ResponseError as exc:
                return [exc] * len(calls)
            return list(reply)
        first = await self._exchange(("EVALSHA", sha, len(keys), *keys, *argv))
        if isinstance(first, ResponseError):
            return [first] * len(calls)  # the batch was refused as a whole
        return list(first)

    async def _exchange(self, sent: tuple[Any, ...]) -> Any:
        """``sent`` on a connection of the pool (and with ``wait_replicas``, the mark's
        ``SET`` and ``WAIT`` after it, in the same write: one round trip); its reply, or the
        error reply in its place. Sent again once on a dropped connection (the scripts sent
        this way change nothing when run again). Fewer replicas than asked for:
        :class:`~qredis.ReplicationTimeout`."""
        packed = command(*sent) + self._wait_tail
        replies: list[Any] = []
        pool = self._client.connection_pool
        for attempt in (1, 2):
            conn = await pool.get_connection()  # type: ignore[no-untyped-call]
            try:
                await conn.send_packed_command(packed, check_health=False)
                replies = [await _read(conn) for _ in range(3 if self._wait else 1)]
                break
            except (ConnectionError, TimeoutError, RedisConnectionError, RedisTimeoutError):
                await conn.disconnect()
                if attempt == 2:
                    raise
            except BaseException:
                await conn.disconnect()  # the reply may still be on its way: out of step
                raise
            finally:
                await pool.release(conn)
        if self._wait and not isinstance(replies[0], Exception):
            check_wait(replies[2], self._wait, self._wait_ms, "the tasks are", self._where)
        return replies[0]

    async def _waited(self, script: Any, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """``script(keys, args)`` through :meth:`_exchange` (``wait_replicas``), loaded first
        where Redis lost it; an error reply raised."""
        found = await self._exchange(("EVALSHA", script.sha, len(keys), *keys, *args))
        if isinstance(found, NoScriptError):
            script.sha = await self._client.script_load(script.script)
            found = await self._exchange(("EVALSHA", script.sha, len(keys), *keys, *args))
        if isinstance(found, Exception):
            raise found
        return found

    async def queue_size(self) -> int:
        """Tasks ready to run, on every priority level."""
        k = self._keys
        with redis_errors(self._where):
            found: Any = await self._client.zrange(k.levels, 0, -1)
            levels = [0, *(int(level) for level in found)]
            pipe = self._client.pipeline(transaction=False)
            for level in levels:
                pipe.llen(k.due_list(level))
                pipe.llen(k.ready(level))
            return sum(int(n) for n in await pipe.execute())

    async def payload(self, task_id: str) -> bytes | None:
        """The signed payload stored under ``task_id`` (queued, delayed or in flight)."""
        with redis_errors(self._where):
            found = await self._client.hget(self._keys.msg, task_id)
        return None if found is None else _bytes(found)


async def _read(conn: Any) -> Any:
    """A reply, or the error reply in its place (the connection stays in step)."""
    try:
        return await conn.read_response()
    except ResponseError as exc:
        return exc


def _wait_timeout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"wait_timeout must be a positive number of seconds, not {value!r}")
    return float(value)


def _translated(where: str, error: Exception) -> Exception:
    """A Redis error reply as the error Q raises for it (OOM: ``TransportOutOfMemory``)."""
    try:
        with redis_errors(where):
            raise error
    except Exception as exc:
        return exc
    return error  # pragma: no cover - redis_errors always re-raises


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _opt_bytes(value: bytes | str | None) -> bytes | None:
    return None if value is None else _bytes(value)


def _quiet(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: the waiters got it
