"""A connection held by one transport in one process, for its hot paths.

redis-py 8 wraps every command in its pool round trip, retry wrapper and observability hooks,
which cost several times the CPU of writing the packed command and reading the reply on a
connection already in hand (see tools/bench/README.md, 'held connection'). Enqueueing one task
and waking up with one are a single command (or pipeline) each, so that overhead is most of
their client-side cost. :class:`HeldConnection` keeps one connection of the pool and sends
commands on it directly, with redis-py's own retry policy (the pool's ``Retry``: back off,
reconnect, send again) and its own error replies.

Only commands that are safe to send again after a lost reply go through here (``enqueue.lua``
is idempotent per id; ``fetch.lua`` answers a re-sent request id with the same tasks).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import redis
from redis.exceptions import ResponseError

__all__ = ["HeldConnection", "bulk", "command"]


class HeldConnection:
    """One pool connection, used by one thread at a time (others fall back to the client)."""

    __slots__ = ("__weakref__", "_conn", "_finalizer", "_lock", "_pool")

    def __init__(self, client: redis.Redis) -> None:
        self._pool = client.connection_pool
        self._conn: Any = None
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize[..., Any] | None = None

    def call(self, packed: bytes, replies: int) -> list[Any] | None:
        """Send ``packed`` (commands in RESP, see :func:`command`) in one write and read
        ``replies`` replies, in order.

        An error reply is returned in its place as the ``ResponseError`` (every reply is read,
        so the connection stays in step). Connection errors and timeouts are retried as the
        pool's ``Retry`` says, then raised. None when another thread is using the connection:
        the caller then goes through the client, which takes a connection of its own.
        """
        if not self._lock.acquire(blocking=False):
            return None
        try:
            conn = self._conn
            if conn is None:
                conn = self._conn = self._pool.get_connection()
                # A transport dropped without close() must not keep a pool connection forever.
                self._finalizer = weakref.finalize(self, self._pool.release, conn)
                self._finalizer.atexit = False
            result: list[Any] = conn.retry.call_with_retry(
                lambda: _exchange(conn, packed, replies),
                lambda _error: conn.disconnect(),
            )
            return result
        finally:
            self._lock.release()

    def release(self) -> None:
        """Give the connection back to its pool."""
        with self._lock:
            self._conn = None
            if self._finalizer is not None:
                self._finalizer()  # releases the connection, once


def _exchange(conn: Any, packed: Any, replies: int) -> list[Any]:
    try:
        conn.send_packed_command((packed,))
        out: list[Any] = []
        for _ in range(replies):
            try:
                out.append(conn.read_response())
            except ResponseError as exc:
                out.append(exc)
        return out
    except BaseException:
        # Interrupted anywhere between the write and the last reply (a signal handler's
        # exception, say): replies may still be on their way, so the connection is closed
        # rather than left out of step with its commands.
        conn.disconnect()
        raise


def bulk(*args: bytes | bytearray | memoryview | str | int | float) -> bytes:
    """Arguments as RESP bulk strings: bytes as they are, text as UTF-8, numbers as text.

    Framed here rather than by redis-py's packer, whose per-argument checks cost more than the
    framing; a hot path frames its fixed arguments once and only the variable ones per call.
    """
    return b"".join(b"$%d\r\n%b\r\n" % (len(b), b) for b in map(_encode, args))


def command(*args: bytes | bytearray | memoryview | str | int | float) -> bytes:
    """One command in RESP."""
    return b"*%d\r\n%b" % (len(args), bulk(*args))


def _encode(value: bytes | bytearray | memoryview | str | int | float) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value).encode()
    raise TypeError(f"cannot send {type(value).__name__} to Redis: {value!r}")
