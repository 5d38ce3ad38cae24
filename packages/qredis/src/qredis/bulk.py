"""Bulk enqueue at the speed of a pipelined LPUSH, each chunk all-or-nothing and applied once.

A chunk is one transaction, ``MULTI; SET <marker> PX 1h; LPUSH <queue> <entries...>; EXEC``:
one LPUSH per chunk (no Lua: turning a thousand payloads into Lua strings and back costs the
server about three times the LPUSH itself); all or nothing (past ``maxmemory`` both commands
are refused as they are queued and EXEC aborts); and the marker written with it tells, after a
lost reply, whether the chunk was applied. So a lost reply is answered by reading the markers
and re-sending only the chunks that are missing, never by re-sending blindly (which redis-py's
retry of a pipeline would do). Two windows of chunks are in flight at once, so the client packs
the next window while Redis applies the previous one.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import redis

__all__ = ["send_chunks"]

MARKER_TTL_MS = 3_600_000
_WINDOW = 8  # chunks per write
_ATTEMPTS = 12  # consecutive connection failures before giving up (as the pools' retry)


class _Chunk:
    __slots__ = ("entries", "marker")

    def __init__(self, marker: str, entries: list[bytes]) -> None:
        self.marker = marker
        self.entries = entries


def send_chunks(
    client: Any,
    queue: str,
    marker_key: Callable[[str], str],
    entry_chunks: Iterable[list[bytes]],
) -> int:
    """LPUSH each list of entries in its own marked transaction; returns how many were pushed.

    ``marker_key(uuid)`` names a chunk's marker (same hash tag as ``queue``). When Redis
    refuses a chunk (out of memory) or ``entry_chunks`` raises, the replies of the chunks
    already sent are read first, then the error is raised with a note saying how many entries
    were queued; so it is when the connection is lost for good. Chunks confirmed stay queued.
    """
    pool = client.connection_pool
    windows = _windows(entry_chunks, marker_key)
    in_flight: deque[list[_Chunk]] = deque()
    resend: list[_Chunk] = []
    pushed = failures = 0
    stop: BaseException | None = None
    conn = pool.get_connection()
    try:
        while True:
            # After a lost connection, chunks go again one at a time: smaller writes get
            # through a flaky link, and a window is never larger than what failed.
            window, resend = resend[:1], resend[1:]
            if not window and stop is None:
                try:
                    window = next(windows, [])
                except Exception as exc:  # bad input: stop sending, account for what was sent
                    stop, window = exc, []
            try:
                if window:
                    in_flight.append(window)  # first: a failed send is checked like the rest
                    conn.send_packed_command(conn.pack_commands(_commands(queue, window)))
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
                time.sleep(min(1.0, 0.05 * 2**failures))
                unconfirmed = [chunk for w in in_flight for chunk in w]
                in_flight.clear()
                applied, missing = _check_markers(client, unconfirmed)
                resend = missing + resend
                pushed += applied
            if not window and not in_flight and not resend:
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


def _windows(
    entry_chunks: Iterable[list[bytes]], marker_key: Callable[[str], str]
) -> Iterator[list[_Chunk]]:
    window: list[_Chunk] = []
    try:
        for entries in entry_chunks:
            window.append(_Chunk(marker_key(uuid.uuid4().hex), entries))
            if len(window) == _WINDOW:
                yield window
                window = []
    except Exception:
        if window:
            yield window  # the good chunks before the bad one still go
        raise
    if window:
        yield window


def _commands(queue: str, window: list[_Chunk]) -> list[tuple[Any, ...]]:
    commands: list[tuple[Any, ...]] = []
    for chunk in window:
        commands += (
            ("MULTI",),
            ("SET", chunk.marker, "1", "PX", MARKER_TTL_MS),
            ("LPUSH", queue, *chunk.entries),
            ("EXEC",),
        )
    return commands


def _read(conn: Any, window: list[_Chunk]) -> tuple[int, Exception | None]:
    """Read all of a window's replies (the connection stays in step): entries pushed and the
    first refusal."""
    pushed = 0
    first: Exception | None = None
    for chunk in window:
        ok = True
        for _ in range(4):  # MULTI +OK, SET +QUEUED, LPUSH +QUEUED, EXEC [OK, n]
            try:
                conn.read_response()
            except redis.ResponseError as exc:  # refused when queued; EXEC then aborts
                ok = False
                first = first or exc
        pushed += len(chunk.entries) if ok else 0
    return pushed, first


def _check_markers(client: Any, chunks: list[_Chunk]) -> tuple[int, list[_Chunk]]:
    """Entries of the chunks that were applied, and the chunks to send again."""
    if not chunks:
        return 0, []
    pipe = client.pipeline(transaction=False)
    for chunk in chunks:
        pipe.exists(chunk.marker)
    present = pipe.execute()  # reads only: redis-py may retry them safely
    applied = sum(len(c.entries) for c, p in zip(chunks, present) if p)
    return applied, [c for c, p in zip(chunks, present) if not p]
