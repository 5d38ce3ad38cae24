"""``wait_replicas``: an enqueue returns only once replicas hold the task (Redis ``WAIT``).

Redis replicates asynchronously: a master acknowledges a write before any replica has it, and a
failover (Sentinel, or Redis Cluster promoting a replica) loses what the promoted replica had
not received yet. ``WAIT n timeout`` blocks until ``n`` replicas acknowledged every write made
so far *on the same connection*, so each check here runs on one connection of the master that
serves the queue's slot: the writes to confirm (or, for a bulk enqueue, ``EXISTS`` of the
chunks' markers, which proves they are on this master), then ``SET`` of a mark (a write of this
connection that comes after them in the replication stream, even when the task was already
stored and the enqueue wrote nothing), then ``WAIT``. A connection lost on the way, or a
failover, makes the check run again on the master found then; a chunk whose marker is gone
there (lost with the old master) is sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.exceptions import ClusterDownError, MovedError, NoScriptError, TryAgainError

from qcore import Backoff
from qredis.errors import ReplicationTimeout

__all__ = ["MARK_TTL_MS", "confirm_chunks", "master_client", "on_master", "write_waited"]

MARK_TTL_MS = 60_000
_ATTEMPTS = 12
_BACKOFF = Backoff(cap=1.0)
_RETRYABLE = (
    redis.ConnectionError,
    redis.TimeoutError,
    ClusterDownError,
    MovedError,
    TryAgainError,
)


def master_client(client: Any, key: str) -> redis.Redis:
    """A plain client of the master serving ``key``: ``client`` itself, or on a Redis Cluster
    the node client redis-py keeps for that slot's master."""
    if isinstance(client, redis.RedisCluster):
        node = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
        return client.get_redis_connection(node)
    return client  # type: ignore[no-any-return]


def on_master(client: Any, key: str, exchange: Callable[[Any], Any]) -> Any:
    """``exchange(connection)`` on one connection of the master serving ``key``; after a lost
    connection or a failover, again on the master found then (with backoff, about 9 s)."""
    failures = 0
    while True:
        node = master_client(client, key)
        pool = node.connection_pool
        conn: Any = pool.get_connection()
        try:
            return exchange(conn)
        except _RETRYABLE:
            conn.disconnect()
            failures += 1
            if failures > _ATTEMPTS:
                raise
            _BACKOFF.sleep(failures)
            if isinstance(client, redis.RedisCluster):
                _refresh(client)
        except BaseException:
            conn.disconnect()  # replies may be left unread
            raise
        finally:
            pool.release(conn)


def _refresh(client: redis.RedisCluster) -> None:
    try:
        client.nodes_manager.initialize()
    except (redis.RedisError, redis.exceptions.RedisClusterException):
        pass  # the next attempt finds the cluster unreachable and backs off again


def wait_commands(mark: str, replicas: int, timeout_ms: int) -> list[tuple[Any, ...]]:
    """The mark's ``SET`` and the ``WAIT`` that follow the writes to confirm."""
    return [("SET", mark, "1", "PX", MARK_TTL_MS), ("WAIT", replicas, timeout_ms)]


def read(conn: Any, count: int) -> list[Any]:
    """``count`` replies; an error reply in its place (the connection stays in step), except
    the ones that mean "ask another node" or "not loaded", raised after all are read."""
    out: list[Any] = []
    for _ in range(count):
        try:
            out.append(conn.read_response())
        except redis.ResponseError as exc:
            out.append(exc)
    for reply in out:
        if isinstance(reply, MovedError | TryAgainError | ClusterDownError):
            raise reply
    return out


def check_wait(acked: Any, replicas: int, timeout_ms: int, what: str, where: str) -> None:
    if isinstance(acked, Exception):
        raise acked
    if int(acked) < replicas:
        raise ReplicationTimeout(
            f"{what} queued on the master of Redis at {where}, but only {int(acked)} of "
            f"wait_replicas={replicas} replica(s) acknowledged it within {timeout_ms} ms: a "
            "failover now could lose it. Send the same task id again: it is not queued twice "
            "(though a task that already ran and was acked is queued, and runs, again)"
        )


def write_waited(
    client: Any,
    key: str,
    mark: str,
    script: tuple[Any, ...],
    load: Callable[[redis.Redis], object],
    replicas: int,
    timeout_ms: int,
    where: str,
) -> Any:
    """An idempotent script call (``EVALSHA``: enqueue.lua, schedule_many.lua), the mark and
    ``WAIT``, pipelined on one connection of the master (one round trip; all sent again after
    a lost connection). ``load(master)`` loads the script after ``NOSCRIPT``. Returns the
    script's reply."""
    commands = [script, *wait_commands(mark, replicas, timeout_ms)]

    def exchange(conn: Any) -> list[Any]:
        conn.send_packed_command(conn.pack_commands(commands))
        return read(conn, len(commands))

    replies = on_master(client, key, exchange)
    if isinstance(replies[0], NoScriptError):
        load(master_client(client, key))
        replies = on_master(client, key, exchange)
    if isinstance(replies[0], Exception):
        raise replies[0]
    check_wait(replies[2], replicas, timeout_ms, "the task is", where)
    return replies[0]


def confirm_chunks(
    client: Any,
    key: str,
    mark: str,
    chunks: Sequence[Any],
    resend: Callable[[Any, list[Any]], None],
    replicas: int,
    timeout_ms: int,
    where: str,
) -> None:
    """Each bulk chunk (``.marker``) is on the master serving ``key`` and on ``replicas`` of its
    replicas. A chunk whose marker is missing there (lost in a failover) is sent again with
    ``resend(connection, chunks)``, and the check repeated."""
    if not chunks:
        return
    pending = list(chunks)
    for _ in range(_ATTEMPTS):
        commands = [("EXISTS", c.marker) for c in pending]
        commands += wait_commands(mark, replicas, timeout_ms)

        def exchange(conn: Any, commands: list[tuple[Any, ...]] = commands) -> list[Any]:
            conn.send_packed_command(conn.pack_commands(commands))
            return read(conn, len(commands))

        replies = on_master(client, key, exchange)
        missing = [c for c, present in zip(pending, replies) if not present]
        if not missing:
            check_wait(replies[-1], replicas, timeout_ms, f"{len(chunks)} chunk(s) are", where)
            return
        on_master(client, key, lambda conn, m=missing: resend(conn, m))  # type: ignore[misc]
        pending = missing
    raise ReplicationTimeout(
        f"chunks kept going missing on the master of Redis at {where} (failovers in a row?): "
        "some tasks may not be queued; enqueue them again"
    )
