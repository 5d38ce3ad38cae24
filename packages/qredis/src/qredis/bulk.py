"""Bulk enqueue at the speed of a pipelined LPUSH, each chunk all-or-nothing and applied once.

A chunk is one transaction, ``MULTI; SET <marker> PX 1h; LPUSH <queue> <entries...>; ZADD
<wake-up marker>; EXEC`` (and a ``ZADD`` of the level for a priority other than 0):
one LPUSH per chunk (no Lua: turning a thousand payloads into Lua strings and back costs the
server several times the LPUSH itself; see tools/bench/README.md, 'bulk enqueue without Lua');
all or nothing (past ``maxmemory`` both commands
are refused as they are queued and EXEC aborts); and the marker written with it tells, after a
lost reply, whether the chunk was applied. So a lost reply is answered by reading the markers
and re-sending only the chunks that are missing, never by re-sending blindly (which redis-py's
retry of a pipeline would do). Two windows of chunks are in flight at once, so the client packs
the next window while Redis applies the previous one.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import hiredis
import redis
from redis.exceptions import ClusterDownError

from qcore import Backoff
from qredis.keys import QueueKeys

__all__ = ["Chunk", "resend_chunks", "send_chunks", "send_chunks_cluster"]

MARKER_TTL_MS = 3_600_000
_WINDOW = 8  # chunks per write
# Consecutive connection failures before giving up, and the waits between them: as the pools'
# own retry policy (qredis.client_options), which this loop replaces for bulk sends.
_ATTEMPTS = 12
_BACKOFF = Backoff(cap=1.0)
_MULTI = b"*1\r\n$5\r\nMULTI\r\n"
_EXEC = b"*1\r\n$4\r\nEXEC\r\n"


class Chunk:
    __slots__ = ("frame", "marker", "size", "tail")

    def __init__(self, marker: str, frame: bytes, size: int, tail: list[bytes]) -> None:
        self.marker = marker
        self.frame = frame  # the LPUSH command, already in the wire format
        self.size = size
        self.tail = tail  # the ZADDs after it (the level, the wake-up marker)


def send_chunks(
    client: Any,
    keys: QueueKeys,
    level: int,
    item_chunks: Iterable[list[tuple[str, bytes]]],
    limit: bytes = b"",
    keep: list[Chunk] | None = None,
) -> int:
    """Queue each list of ``(task_id, payload)`` as inline entries (see fetch.lua) on the
    ready list of priority ``level`` of the queue of ``keys``, each chunk in its own marked
    transaction (which also notes the level and sets the wake-up marker); returns how many
    tasks were queued. ``keep``: a list each chunk sent is appended to (for
    ``wait_replicas``: see qredis.replication).

    ``limit`` is the tasks' attempt limit (empty: the queue's default). When Redis refuses a
    chunk (out of memory) or an item is bad, the replies of the chunks already sent are read
    first, then the error is raised with a note saying how many tasks were queued; so it is
    when the connection is lost for good. Chunks confirmed stay queued.
    """
    pool = client.connection_pool
    zadds: list[tuple[str | int, ...]] = [("ZADD", keys.levels, level, level)] if level else []
    zadds.append(("ZADD", keys.marker, 0, "0"))
    tail = [hiredis.pack_command(z) for z in zadds]  # type: ignore[arg-type]
    windows = _windows(item_chunks, keys.ready(level).encode(), limit, keys.chunk, tail, keep)
    in_flight: deque[list[Chunk]] = deque()
    resend: list[Chunk] = []
    pushed = failures = 0
    stop: BaseException | None = None
    conn = pool.get_connection()
    unchecked: list[Chunk] = []  # sent on a connection that was lost: applied or not?
    try:
        while True:
            window: list[Chunk] = []
            try:
                if unchecked:
                    # Asked on this loop's connection (reconnected here), so a drop, even one
                    # while it connects (which redis-py does not retry), is one more failure
                    # of this loop, not the caller's error.
                    applied, missing = _markers(conn, unchecked)
                    unchecked = []
                    resend = missing + resend
                    pushed += applied
                # After a lost connection, chunks go again one at a time: smaller writes get
                # through a flaky link, and a window is never larger than what failed.
                window, resend = resend[:1], resend[1:]
                if not window and stop is None:
                    try:
                        window = next(windows, [])
                    except Exception as exc:  # bad input: stop sending, account for the rest
                        stop, window = exc, []
                if window:
                    in_flight.append(window)  # first: a failed send is checked like the rest
                    conn.send_packed_command(_commands(window))
                # Keep one window on the wire while the next one is packed.
                while in_flight and (not window or len(in_flight) > 1):
                    done, refused = _read(conn, in_flight[0])
                    in_flight.popleft()
                    pushed += done
                    stop = stop or refused
                failures = 0
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                conn.disconnect()
                failures += 1
                if failures > _ATTEMPTS:
                    exc.add_note(f"{pushed} task(s) were queued before Redis was lost")
                    raise
                _BACKOFF.sleep(failures)
                unchecked += [chunk for w in in_flight for chunk in w]
                in_flight.clear()
            if not window and not in_flight and not resend and not unchecked:
                if stop is not None:
                    stop.add_note(f"{pushed} task(s) of other chunks were queued")
                    raise stop
                return pushed
    except BaseException:
        if in_flight:
            conn.disconnect()  # replies left unread: never hand this connection on
        raise
    finally:
        pool.release(conn)


def send_chunks_cluster(
    client: Any,
    keys: QueueKeys,
    level: int,
    item_chunks: Iterable[list[tuple[str, bytes]]],
    limit: bytes = b"",
    keep: list[Chunk] | None = None,
) -> int:
    """:func:`send_chunks` on a Redis Cluster: each chunk a transaction of redis-py's cluster
    pipeline (it goes to the node of the queue's slot and follows a failover), one at a time.

    The same promise: a chunk is all-or-nothing, and after a lost connection its marker says
    whether it was applied before it is sent again.
    """
    pushed = 0
    try:
        for items in item_chunks:
            entries = _entries(items, limit)
            marker = keys.chunk(uuid.uuid4().hex)
            if keep is not None:  # as send_chunks frames it, for a resend (wait_replicas)
                zadds: list[tuple[str | int, ...]] = [("ZADD", keys.levels, level, level)]
                zadds = (zadds if level else []) + [("ZADD", keys.marker, 0, "0")]
                tail = [hiredis.pack_command(z) for z in zadds]  # type: ignore[arg-type]
                frame = _lpush(keys.ready(level).encode(), items, limit)
                keep.append(Chunk(marker, frame, len(items), tail))
            failures = 0
            while True:
                try:
                    pipe = client.pipeline(transaction=True)
                    pipe.set(marker, "1", px=MARKER_TTL_MS)
                    pipe.lpush(keys.ready(level), *entries)
                    if level:
                        pipe.zadd(keys.levels, {str(level): level})
                    pipe.zadd(keys.marker, {"0": 0})
                    pipe.execute()
                    break
                except (redis.ConnectionError, redis.TimeoutError, ClusterDownError) as exc:
                    failures += 1
                    if failures > _ATTEMPTS:
                        raise exc
                    _BACKOFF.sleep(failures)
                    if _marker_present(client, marker):
                        break
            pushed += len(entries)
    except BaseException as exc:
        exc.add_note(f"{pushed} task(s) of other chunks were queued")
        raise
    return pushed


def _marker_present(client: Any, marker: str) -> bool:
    """Whether a chunk's marker is there; False while the cluster cannot say (sent again
    then: the marker is read again after the next failure)."""
    try:
        return bool(client.exists(marker))
    except (redis.ConnectionError, redis.TimeoutError, ClusterDownError):
        return False


_PAIRS = "enqueue_many takes (task_id: str, payload: bytes) pairs"


def _entries(items: list[tuple[str, bytes]], limit: bytes) -> list[bytes]:
    """Inline queue entries ``\0<id>\0<limit>\0<payload>`` (see fetch.lua)."""
    out: list[bytes] = []
    for item in items:
        try:
            task_id, payload = item
        except (TypeError, ValueError) as exc:
            raise TypeError(_PAIRS + f": {exc}") from None
        if not isinstance(task_id, str) or not task_id or "\0" in task_id:
            raise TypeError(f"task ids must be non-empty strings without NUL, not {task_id!r}")
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise TypeError(_PAIRS + f", not {payload!r}")
        out.append(b"\0%b\0%b\0%b" % (task_id.encode(), limit, bytes(payload)))
    return out


def _windows(
    item_chunks: Iterable[list[tuple[str, bytes]]],
    queue: bytes,
    limit: bytes,
    marker_key: Callable[[str], str],
    tail: list[bytes],
    keep: list[Chunk] | None,
) -> Iterator[list[Chunk]]:
    window: list[Chunk] = []
    try:
        for items in item_chunks:
            window.append(
                Chunk(marker_key(uuid.uuid4().hex), _lpush(queue, items, limit), len(items), tail)
            )
            if keep is not None:
                keep.append(window[-1])
            if len(window) == _WINDOW:
                yield window
                window = []
    except Exception:
        if window:
            yield window  # the good chunks before the bad one still go
        raise
    if window:
        yield window


def _lpush(queue: bytes, items: list[tuple[str, bytes]], limit: bytes) -> bytes:
    """``LPUSH queue entry...`` in RESP, each entry ``\0<id>\0<limit>\0<payload>``.

    Framed by hand, once: building the entries and then having redis-py pack them costs the
    client about twice the CPU, and the client's CPU is what limits bulk enqueue.
    """
    try:
        ids, payloads = zip(*items)
        joined = "\n".join(ids)
        head = b"*%d\r\n$5\r\nLPUSH\r\n$%d\r\n%b\r\n" % (len(ids) + 2, len(queue), queue)
        fixed = 3 + len(limit)
        body = [
            b"$%d\r\n\0%b\0%b\0%b\r\n" % (fixed + len(i) + len(p), i, limit, p)
            for i, p in zip(map(str.encode, ids), payloads)
        ]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"enqueue_many takes (task_id: str, payload: bytes) pairs: {exc}") from None
    if "\0" in joined or "" in ids:
        bad = next(i for i in ids if not i or "\0" in i)
        raise TypeError(f"task ids must be non-empty strings without NUL, not {bad!r}")
    return head + b"".join(body)


def _commands(window: list[Chunk]) -> list[bytes]:
    out: list[bytes] = []
    for chunk in window:
        out += (
            _MULTI,
            hiredis.pack_command(("SET", chunk.marker, "1", "PX", MARKER_TTL_MS)),  # type: ignore[arg-type]
            chunk.frame,
            *chunk.tail,
            _EXEC,
        )
    return out


def _read(conn: Any, window: list[Chunk]) -> tuple[int, Exception | None]:
    """Read all of a window's replies (the connection stays in step): entries pushed and the
    first refusal."""
    pushed = 0
    first: Exception | None = None
    for chunk in window:
        ok = True
        # MULTI +OK, SET +QUEUED, LPUSH +QUEUED, each ZADD +QUEUED, EXEC [OK, n, ...]
        for _ in range(4 + len(chunk.tail)):
            try:
                conn.read_response()
            except redis.ResponseError as exc:  # refused when queued; EXEC then aborts
                ok = False
                first = first or exc
        pushed += chunk.size if ok else 0
    return pushed, first


def resend_chunks(conn: Any, chunks: list[Chunk]) -> None:
    """Send ``chunks`` again on ``conn`` (each its own marked transaction, as before) and read
    their replies; the first refusal is raised."""
    conn.send_packed_command(_commands(chunks))
    _, refused = _read(conn, chunks)
    if refused is not None:
        raise refused


def _markers(conn: Any, chunks: list[Chunk]) -> tuple[int, list[Chunk]]:
    """Entries of the chunks that were applied, and the chunks to send again, asked on
    ``conn`` (connected again if it was dropped; reads only, safe to ask again)."""
    conn.send_packed_command(conn.pack_commands([("EXISTS", c.marker) for c in chunks]))
    present = [conn.read_response() for _ in chunks]
    applied = sum(c.size for c, p in zip(chunks, present) if p)
    return applied, [c for c, p in zip(chunks, present) if not p]
