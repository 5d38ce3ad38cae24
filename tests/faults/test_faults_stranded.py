"""No stranded tasks (issue 11, item 5): a fetch whose reply was lost and never re-sent (the
client gave up), and an ack the client gave up on, leave nothing held by a live worker."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from qcluster import Cluster, ClusterConfig
from qredis import RedisStatusBoard, RedisTransport
from tests.cluster.support import Bench, CountingStore
from tests.faults import tasks
from tests.faults.support import Effects, assert_exactly_once, enqueue_counted
from tests.support.servers import RedisServer, stall

# A client that gives up fast: one socket timeout and a short retry budget.
_IMPATIENT = {"socket_timeout": 0.3, "retry_for": 0.4}


class LossyLink:
    """A TCP proxy to a Redis server that, while armed, drops the reply to any call of one
    script (it closes the connection instead of passing the answer on): the call ran, its
    caller never learns what it did, and re-sends fare no better, so the client gives up."""

    def __init__(self, port: int, sha: str) -> None:
        self.target = port
        self.sha = sha.encode()
        self.armed = threading.Event()
        self.dropped = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                continue
            server = socket.create_connection(("127.0.0.1", self.target))
            doomed = threading.Event()
            threading.Thread(target=self._up, args=(client, server, doomed), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, doomed), daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket, doomed: threading.Event) -> None:
        try:
            while data := client.recv(65536):
                if self.armed.is_set() and self.sha in data:
                    doomed.set()
                server.sendall(data)
        except OSError:
            pass
        _close(client, server)

    def _down(self, server: socket.socket, client: socket.socket, doomed: threading.Event) -> None:
        try:
            while data := server.recv(65536):
                if doomed.is_set():
                    self.dropped += 1
                    break
                client.sendall(data)
        except OSError:
            pass
        _close(client, server)

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


# Guarantee (issue 11, item 5): a fetch whose reply is lost for good (the network dropped every
# answer until the worker's client gave up) claims tasks into the live worker's in-flight
# list, where nobody else would look while it heartbeats; the worker reconciles its own list
# after any fetch error, so they run while the cluster runs, not when it stops.
@pytest.mark.slow
def test_tasks_claimed_by_a_fetch_whose_reply_was_lost_still_run(
    bench: Bench, fx: Effects, redis_url: str
) -> None:
    queue = bench.queue
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    link = LossyLink(port, _fetch_sha(bench))
    cluster = Cluster(
        ClusterConfig(
            name="t",
            queue=queue,
            workers=1,
            start_method="fork",
            status_interval=0.5,
            heartbeat=1.0,
            retry=60.0,
            prefetch=8,
        ),
        transport=RedisTransport(queue, url=f"redis://127.0.0.1:{link.port}/0", **_IMPATIENT),
        store=CountingStore(redis_url, namespace=queue),
        status_board=RedisStatusBoard(redis_url, namespace=queue),
    )
    bench.clusters.append(cluster)
    try:
        with cluster:
            warm = enqueue_counted(bench, fx, tasks.counted, ["warm"])
            bench.wait_all(list(warm.values()))
            link.armed.set()
            ids = enqueue_counted(bench, fx, tasks.counted, [f"t{i}" for i in range(6)])
            deadline = time.monotonic() + 20
            while not link.dropped or bench.transport.inflight_size() == 0:
                assert time.monotonic() < deadline, "no fetch reply was dropped"
                time.sleep(0.01)
            time.sleep(1.5)  # every re-send dropped too: the client gave up
            link.armed.clear()
            bench.wait_all(list(ids.values()), timeout=15)  # while the cluster runs
    finally:
        link.close()
    assert_exactly_once(bench, fx, {**warm, **ids})


def _fetch_sha(bench: Bench) -> str:
    bench.transport.queue_size()  # scripts registered
    return str(bench.transport._ready()[1].fetch.sha)


# Guarantee (issue 11, item 5): an ack the worker's client gave up on (its reply lost), sent
# again by the worker itself, answers as the first call did: the tasks count as acked and
# their hooks are called.
def test_an_ack_the_client_gave_up_on_answers_as_the_first_did_when_sent_again(
    own_redis: RedisServer, own_bench: Bench
) -> None:
    transport = RedisTransport(own_bench.queue, url=own_redis.url, **_IMPATIENT)
    for i in range(3):
        transport.enqueue(f"t{i}", b"payload")
    transport.enqueue("warm", b"payload")
    transport.ack(transport.fetch("c0"))  # the scripts are loaded (a stall must not hide them)
    batch = transport.fetch("c1", count=3)
    sleeper = stall(own_redis, 1.5)
    with pytest.raises(Exception, match=r"did not answer|timed out|Timeout"):
        transport.ack(batch)  # runs once Redis wakes; its reply goes nowhere
    sleeper.join()
    assert transport.inflight_size() == 0  # the first call did ack them
    assert transport.ack(batch) == [True, True, True]  # the worker's own re-send
    transport.close()
