"""The transport's held connection (qredis.wire): its replies stay in step with its commands."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

import pytest
import redis
from tests.support.servers import RedisServer

from qredis import RedisTransport


class _Interrupt(BaseException):
    pass


def _raise(signum: int, frame: FrameType | None) -> None:
    raise _Interrupt


def test_a_fetch_interrupted_while_blocked_leaves_no_reply_behind(
    transport: RedisTransport,
) -> None:
    """A worker's SIGTERM handler raises into a blocked fetch; the BZPOPMIN and claim replies
    that were still due must never be read as the answer to a later command."""
    transport.enqueue("warm", b"w")
    transport.ack(transport.fetch("c1"))
    previous = signal.signal(signal.SIGUSR1, _raise)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR1))
    try:
        timer.start()
        with pytest.raises(_Interrupt):
            transport.fetch("c1", 1, 5.0)
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)
    transport.enqueue("a", b"pa")
    [got] = transport.fetch("c1", 1, 1.0)
    assert (got.task_id, got.payload) == ("a", b"pa")
    assert transport.ack([got]) == [True]


def test_the_held_connection_reconnects_after_a_client_kill(
    redis_factory: Callable[..., RedisServer],
) -> None:
    server = redis_factory()
    transport = RedisTransport("held", url=server.url)
    admin = server.client()
    try:
        transport.enqueue("a", b"pa")
        killed = admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        assert killed >= 1
        transport.enqueue("b", b"pb")  # re-sent on a new connection
        got = transport.fetch("c1", 10, 1.0)
        assert sorted(d.task_id for d in got) == ["a", "b"]
        assert transport.queue_size() == 0
    finally:
        admin.close()
        transport.close()


def test_threads_sharing_a_transport_each_get_their_replies(
    transport: RedisTransport, redis_client: redis.Redis
) -> None:
    """One thread at a time uses the held connection; the others go through the pool."""
    errors: list[BaseException] = []

    def enqueue(n: int) -> None:
        try:
            for i in range(200):
                transport.enqueue(f"t{n}-{i}", f"p{n}-{i}".encode())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=enqueue, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert transport.queue_size() == 800
    seen = transport.fetch("c1", 1000)
    assert len(seen) == 800 and all(d.payload == b"p" + d.task_id[1:].encode() for d in seen)


def test_commands_are_framed_as_redis_py_frames_them() -> None:
    from redis.connection import Connection

    from qredis.wire import command

    args = ("EVALSHA", "ab12", 4, "{q:x}:queue", b"\0\xffpayload", 0, "", 0.25, "ünï")
    assert command(*args) == b"".join(Connection().pack_command(*args))
    assert command(bytearray(b"a"), memoryview(b"bc")) == b"*2\r\n$1\r\na\r\n$2\r\nbc\r\n"
    with pytest.raises(TypeError, match="cannot send NoneType"):
        command("GET", None)  # type: ignore[arg-type]


def test_no_connection_is_taken_for_good_from_a_callers_client(redis_url: str) -> None:
    """A caller's pool may have a single connection: Q's hot paths borrow it per call."""
    pool = redis.BlockingConnectionPool.from_url(redis_url, max_connections=1, timeout=2)
    client = redis.Redis(connection_pool=pool)
    transport = RedisTransport("callers", connection=client)
    try:
        transport.enqueue("a", b"pa")
        assert [d.task_id for d in transport.fetch("c1", 1, 1.0)] == ["a"]
        assert client.ping()  # the pool's one connection is free again
    finally:
        transport.release("c1")
        pool.disconnect()


def test_a_transport_dropped_without_close_gives_its_connection_back(redis_url: str) -> None:
    import gc
    import uuid

    transport = RedisTransport("dropped", url=redis_url, client_name=f"drop-{uuid.uuid4().hex}")
    transport.enqueue("a", b"pa")
    pool = transport.client.connection_pool
    assert len(pool._in_use_connections) == 1  # type: ignore[attr-defined]  # held
    del transport
    gc.collect()
    assert len(pool._in_use_connections) == 0  # type: ignore[attr-defined]
    pool.disconnect()
