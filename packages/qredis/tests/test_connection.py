"""Connection economy: shared pools, callers' clients, pickling into child processes, TLS, ACL."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from tests.support.servers import RedisServer, free_port

from qcore import Codec, Signer
from qredis import RedisResultStore, RedisStatusBoard, RedisTransport, TransportError
from qredis.connection import shared_pool_count

CODEC = Codec(Signer("connection-tests-key-0123456789-abcdefgh"))


def test_objects_with_the_same_parameters_share_one_pool(redis_url: str) -> None:
    # Parameters no other object of this test process uses, so the pool is a fresh one.
    only_here = {"client_name": f"pool-test-{uuid.uuid4().hex}"}
    before = shared_pool_count()
    a = RedisTransport("a", url=redis_url, **only_here)
    b = RedisTransport("b", url=redis_url, **only_here)
    store = RedisResultStore(redis_url, codec=CODEC, **only_here)
    board = RedisStatusBoard(redis_url, **only_here)
    a.ping(), b.ping(), store.get("x"), board.clusters()
    assert a.client.connection_pool is b.client.connection_pool
    assert shared_pool_count() == before + 1
    pool = a.client.connection_pool
    for obj in (a, b, store):
        obj.close()
    assert shared_pool_count() == before + 1  # the board still uses it
    board.close()
    assert shared_pool_count() == before
    # disconnected when its last user closed
    assert all(c._sock is None for c in pool._available_connections)


def test_a_callers_client_is_used_as_it_is(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    transport = RedisTransport("q", connection=client)
    transport.enqueue("a", b"x")
    assert transport.client is client
    transport.close()
    assert client.ping()  # closing the transport leaves the caller's client open
    client.close()


def test_a_callers_pool_is_used_as_it_is(redis_url: str) -> None:
    pool = redis.ConnectionPool.from_url(redis_url)
    transport = RedisTransport("q", pool=pool)
    transport.enqueue("a", b"x")
    assert transport.client.connection_pool is pool
    transport.close()
    pool.disconnect()


def test_redis_keyword_arguments(redis_server: RedisServer, redis_url: str) -> None:
    transport = RedisTransport("q", host="127.0.0.1", port=redis_server.port, db=0)
    transport.enqueue("a", b"x")
    assert transport.queue_size() == 1
    assert transport.url == f"redis://127.0.0.1:{redis_server.port}/0"
    transport.close()


def test_a_decoding_client_is_not_used_for_payloads(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    transport = RedisTransport("q", connection=client)
    transport.enqueue("a", b"\xff\xfe binary")
    [d] = transport.fetch("c")
    assert d.payload == b"\xff\xfe binary"
    assert transport.client is not client
    transport.close()
    client.close()


def test_pickling_carries_parameters_only(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    transport = RedisTransport("q", connection=client, max_attempts=5)
    data = pickle.dumps(transport)
    assert len(data) < 4000
    clone = pickle.loads(data)
    assert clone.client is not client
    assert clone.max_attempts == 5
    clone.enqueue("a", b"x")
    assert transport.queue_size() == 1
    clone.close()
    client.close()


def _consume(transport: RedisTransport, count: int) -> list[str]:
    got = transport.fetch(f"child-{os.getpid()}", count=count)
    transport.ack(got)
    return [d.task_id for d in got]


@pytest.mark.parametrize("method", ["spawn", "fork", "forkserver"])
def test_a_transport_works_in_a_child_process(redis_url: str, method: str) -> None:
    client = redis.Redis.from_url(redis_url)
    transport = RedisTransport("q", connection=client)
    transport.enqueue_many([(f"t{i}", b"x") for i in range(5)])
    transport.ping()  # the parent has live connections the child must not reuse
    ctx = multiprocessing.get_context(method)
    with ctx.Pool(1) as pool:
        got = pool.apply(_consume, (transport, 10))
    assert sorted(got) == [f"t{i}" for i in range(5)]
    assert transport.inflight_size() == 0
    client.close()


def test_a_forked_child_opens_its_own_pool(redis_url: str) -> None:
    transport = RedisTransport("q", url=redis_url)
    parent_pool = transport.client.connection_pool
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        ok = transport.client.connection_pool is not parent_pool and transport.ping()
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    os.close(read), os.close(write)
    assert transport.ping()
    transport.close()


def test_acl_user_and_password_in_the_url(redis_client: redis.Redis, redis_url: str) -> None:
    redis_client.execute_command(
        "ACL", "SETUSER", "qworker", "on", ">s3cret-pw", "~*", "&*", "+@all"
    )
    try:
        port = redis_url.rsplit(":", 1)[1].split("/")[0]
        transport = RedisTransport("q", url=f"redis://qworker:s3cret-pw@127.0.0.1:{port}/0")
        transport.enqueue("a", b"x")
        assert [d.task_id for d in transport.fetch("c")] == ["a"]
        assert transport.url == f"redis://qworker:***@127.0.0.1:{port}/0"
        transport.close()
        wrong = RedisTransport("q", url=f"redis://qworker:nope@127.0.0.1:{port}/0")
        with pytest.raises(TransportError) as caught:
            wrong.enqueue("b", b"y")
        assert "nope" not in str(caught.value) and "***" in str(caught.value)
        wrong.close()
    finally:
        redis_client.execute_command("ACL", "DELUSER", "qworker")


def _make_certs(directory: Path) -> dict[str, Path]:
    paths = {n: directory / f"{n}.pem" for n in ("ca", "ca-key", "cert", "key")}
    run = lambda *args: subprocess.run(args, check=True, capture_output=True)
    run(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=q-test-ca",
        # Python 3.13 verifies strictly (VERIFY_X509_STRICT): a CA must say it is one.
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-addext",
        "subjectKeyIdentifier=hash",
        "-keyout",
        str(paths["ca-key"]),
        "-out",
        str(paths["ca"]),
    )
    csr = directory / "server.csr"
    run(
        "openssl",
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        str(paths["key"]),
        "-out",
        str(csr),
    )
    ext = directory / "ext.cnf"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1\n"
        "authorityKeyIdentifier=keyid,issuer\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
    )
    run(
        "openssl",
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(paths["ca"]),
        "-CAkey",
        str(paths["ca-key"]),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        str(ext),
        "-out",
        str(paths["cert"]),
    )
    return paths


def test_rediss_url(redis_factory: Callable[..., RedisServer], tmp_path: Path) -> None:
    certs = _make_certs(tmp_path)
    tls_port = free_port()
    redis_factory(
        extra=[
            "--tls-port", str(tls_port),
            "--tls-cert-file", str(certs["cert"]),
            "--tls-key-file", str(certs["key"]),
            "--tls-ca-cert-file", str(certs["ca"]),
            "--tls-auth-clients", "no",
        ]
    )  # fmt: skip
    url = f"rediss://127.0.0.1:{tls_port}/0"
    transport = RedisTransport("q", url=url, ssl_ca_certs=str(certs["ca"]))
    transport.enqueue("a", b"over tls")
    [d] = transport.fetch("c")
    assert d.payload == b"over tls"
    clone = pickle.loads(pickle.dumps(transport))
    assert clone.queue_size() == 0
    clone.close()
    transport.close()
    untrusted = RedisTransport("q", url=url, retry=None)
    with pytest.raises(TransportError):
        untrusted.enqueue("b", b"x")
    untrusted.close()


def test_threads_opening_at_once_take_the_pool_once(redis_url: str) -> None:
    import threading

    before = shared_pool_count()
    transport = RedisTransport("q", url=redis_url, client_name=f"pool-test-{uuid.uuid4().hex}")
    barrier = threading.Barrier(8)

    def use() -> None:
        barrier.wait()
        transport.queue_size()

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert shared_pool_count() == before + 1
    transport.close()
    assert shared_pool_count() == before


def test_a_blocking_fetch_stays_under_the_socket_timeout(redis_url: str) -> None:
    import time

    transport = RedisTransport("q", url=redis_url, socket_timeout=0.3, block_slice=5)
    start = time.monotonic()
    assert transport.fetch("c", timeout=1.0) == []  # several BZPOPMINs of 0.15 s, no timeout error
    assert 0.9 < time.monotonic() - start < 3
    transport.close()
