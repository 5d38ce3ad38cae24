"""Fault tests on real Redis: every enqueued task is acked exactly once or still recoverable.

Consumers that die are real processes killed with SIGKILL; dropped connections are real
``CLIENT KILL``s; a restart is a real redis-server killed and started again on its AOF.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection

import pytest
from tests.support.servers import RedisServer

from qcore import Delivery, Reaped
from qcore.testing.contract import wait_until
from qredis import RedisTransport

TTL = 0.3
DOOMED_TTL = 2.0
"""A killed consumer's heartbeat TTL: its kill comes well before its last heartbeat expires
even on a loaded machine (TTL's 0.3 s went by between a heartbeat and the first reap)."""
CTX = multiprocessing.get_context("fork")


def _heartbeating_consumer(
    transport: RedisTransport, name: str, count: int, ttl: float, conn: Connection
) -> None:
    """Fetch ``count`` tasks, report them, then sit on them heartbeating until killed."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            transport.heartbeat([name], ttl)
            stop.wait(ttl / 3)

    # The first heartbeat precedes the first fetch, as in the cluster (a consumer that
    # fetches unannounced gets the transport's long ``consumer_ttl``).
    transport.heartbeat([name], ttl)
    threading.Thread(target=beat, daemon=True).start()
    got = transport.fetch(name, count=count, timeout=5)
    conn.send([d.task_id for d in got])
    time.sleep(60)  # "running" the tasks until the parent kills us


def start_consumer(
    transport: RedisTransport, name: str, count: int, ttl: float = TTL
) -> tuple[object, list[str]]:
    parent, child = CTX.Pipe()
    proc = CTX.Process(target=_heartbeating_consumer, args=(transport, name, count, ttl, child))
    proc.start()
    assert parent.poll(10), "the consumer process did not fetch"
    return proc, parent.recv()


def kill(proc: object) -> None:
    os.kill(proc.pid, signal.SIGKILL)  # type: ignore[attr-defined]
    proc.join(5)  # type: ignore[attr-defined]


def drain(transport: RedisTransport, consumer: str = "drain") -> list[Delivery]:
    out: list[Delivery] = []
    while batch := transport.fetch(consumer, count=500):
        out += batch
        assert all(transport.ack(batch))
    return out


def assert_empty(transport: RedisTransport) -> None:
    client = transport.client
    k = transport.keys
    assert transport.queue_size() == transport.inflight_size() == transport.delayed_size() == 0
    assert client.hlen(k.msg) == client.hlen(k.tokens) == client.hlen(k.attempts) == 0


def redis_ms(transport: RedisTransport) -> int:
    """Redis's clock in ms, as the scripts read it (``now_ms`` in lib/levels.lua)."""
    seconds, micros = transport.client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def test_a_killed_consumers_tasks_return_after_the_ttl(transport: RedisTransport) -> None:
    transport.enqueue_many([(f"t{i}", b"x") for i in range(5)])
    proc, held = start_consumer(transport, "doomed", 3, DOOMED_TTL)
    assert len(held) == 3
    kill(proc)
    # Its last heartbeat's deadline (Redis clock, ms): nobody moves it any more. A reap whose
    # Redis time is before it leaves the tasks held; the first one at or past it requeues them.
    expires = transport.client.zscore(transport.keys.consumers, "doomed")
    assert expires is not None
    early = 0
    give_up = time.monotonic() + DOOMED_TTL + 30
    while True:
        reaped = transport.reap()
        if redis_ms(transport) < expires:  # the whole reap ran before the deadline
            assert reaped == Reaped(), "requeued before its last heartbeat expired"
            early += 1
        elif reaped != Reaped():
            break
        assert time.monotonic() < give_up, "the expired consumer was never reaped"
        time.sleep(0.02)
    assert early > 0, "no reap ran before the deadline"  # the test saw the wait
    assert reaped == Reaped(consumers=1, requeued=3)
    got = drain(transport)
    assert sorted(d.task_id for d in got) == [f"t{i}" for i in range(5)]
    assert sorted(d.attempt for d in got) == [1, 1, 2, 2, 2]
    assert_empty(transport)


def test_a_live_consumer_running_for_three_ttls_is_not_reaped(
    transport: RedisTransport, make_transport: Callable[..., RedisTransport]
) -> None:
    ttl = 1.0  # a beat may come late on a loaded machine: it has 0.67 s, not TTL's 0.2 s
    reaper = make_transport()
    transport.enqueue("long", b"cpu bound")
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            transport.heartbeat(["busy"], ttl)
            stop.wait(ttl / 3)

    beater = threading.Thread(target=beat)
    beater.start()
    try:
        wait_until(lambda: "busy" in transport.consumers())
        [d] = transport.fetch("busy")
        end = time.monotonic() + 3 * ttl + 0.1
        passes = 0
        while time.monotonic() < end:
            assert reaper.reap() == Reaped()
            passes += 1
            stop.wait(0.02)
        assert passes > 10
        assert transport.ack([d]) == [True]
    finally:
        stop.set()
        beater.join()
    assert_empty(transport)


def test_client_kill_while_fetching_and_acking_loses_nothing(
    redis_factory: Callable[..., RedisServer],
) -> None:
    server = redis_factory()
    transport = RedisTransport("kills", url=server.url)
    ids: list[str] = []
    acked: Counter[str] = Counter()
    processed: set[str] = set()
    done = threading.Event()
    gate = threading.Lock()  # held while the queue is refilled: only fetches and acks are hit
    kills = 0
    answered = 0  # fetch and ack calls that returned

    def refill(n: int = 500) -> None:
        with gate:
            chunk = [f"k{len(ids) + i:06d}" for i in range(n)]
            transport.enqueue_many((i, b"x") for i in chunk)
            ids.extend(chunk)

    def killer() -> None:
        nonlocal kills
        admin = server.client()
        last = -1
        while not done.is_set():
            # Not again before a call returned since the last kill: on a loaded machine a
            # connect and a round trip can take longer than any fixed interval, and a kill on
            # each of redis-py's retries would starve the consumer (a Redis no client could
            # reach). Every kill still lands wherever the consumer is, mid-call or between two.
            if answered != last:
                with gate:
                    hit = admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
                kills += int(hit)
                if hit:
                    last = answered
            done.wait(0.02)
        admin.close()

    refill()
    thread = threading.Thread(target=killer)
    thread.start()
    try:
        # Not blocking: Redis 7.0 times blocked clients out on its 100 ms cron, so a blocked
        # connection would be killed on every one of redis-py's retries (the kill of a
        # blocked fetch has its own test below). The queue is refilled until the killer has
        # hit enough connections, however fast this machine drains it.
        for _ in range(40):
            while batch := transport.fetch("victim", count=7):
                answered += 1
                processed.update(d.task_id for d in batch)
                for d, ok in zip(batch, transport.ack(batch)):
                    acked[d.task_id] += ok
                answered += 1
            if kills > 20:
                break
            refill()
    finally:
        done.set()
        thread.join()
    assert kills > 20, "the killer hit too few connections"
    # A fetch whose reply was lost is re-sent by redis-py and answers the same tasks, so
    # nothing is left claimed behind the consumer's back.
    assert transport.inflight_size() == 0
    assert processed == set(ids)
    # Every task acked once, and every ack answered True, even one whose reply was lost and
    # that redis-py re-sent (it answers as the first call did).
    assert acked == Counter(ids)
    assert_empty(transport)
    transport.close()


def test_a_redis_restart_loses_nothing(redis_factory: Callable[..., RedisServer]) -> None:
    server = redis_factory()  # appendonly yes, appendfsync always
    transport = RedisTransport("restart", url=server.url)
    transport.enqueue_many((f"r{i}", b"x") for i in range(500))
    transport.enqueue("later", b"x", delay=0.5)
    held = transport.fetch("c1", count=100)
    assert all(transport.ack(held[:50]))
    server.restart(kill=True)
    assert transport.ack(held[50:]) == [True] * 50  # tokens survived: the same fetch is acked
    rest = drain(transport)
    # A loaded machine may take longer than the delay to drain: the delayed task is then due
    # and handed out with the rest. Either way it comes once, and nothing else is lost.
    late = [d for d in rest if d.task_id == "later"]
    assert len(rest) - len(late) == 400
    if not late:
        late = transport.fetch("c1", timeout=3)
        assert all(transport.ack(late))
    assert [d.task_id for d in late] == ["later"]
    assert_empty(transport)
    transport.close()


def test_a_blocked_fetch_rides_out_a_restart(redis_factory: Callable[..., RedisServer]) -> None:
    server = redis_factory()
    transport = RedisTransport("restart", url=server.url)
    got: list[Delivery] = []
    fetcher = threading.Thread(target=lambda: got.extend(transport.fetch("c1", 1, 15.0)))
    fetcher.start()
    wait_until(lambda: server.client().info("clients")["blocked_clients"] == 1)
    server.restart(kill=True, down_for=0.5)
    producer = RedisTransport("restart", url=server.url)
    producer.enqueue("after", b"x")
    fetcher.join(15)
    assert [d.task_id for d in got] == ["after"]
    transport.close()
    producer.close()


def test_enqueue_rides_out_a_short_outage(redis_factory: Callable[..., RedisServer]) -> None:
    server = redis_factory()
    transport = RedisTransport("outage", url=server.url)
    transport.ping()
    server.stop(kill=True)
    restarter = threading.Timer(0.7, server.start)
    restarter.start()
    start = time.monotonic()
    transport.enqueue("during", b"x")  # retried with backoff until Redis is back
    restarter.join()
    assert time.monotonic() - start >= 0.6
    assert [d.task_id for d in transport.fetch("c1")] == ["during"]
    transport.close()


def test_a_task_that_keeps_killing_its_consumer_is_dead_lettered(
    make_transport: Callable[..., RedisTransport],
) -> None:
    transport = make_transport(max_attempts=2)
    transport.enqueue("poison", b"segfaults")
    for attempt in (1, 2):
        proc, held = start_consumer(transport, f"victim{attempt}", 1)
        assert held == ["poison"]
        kill(proc)
        wait_until(lambda: transport.reap().consumers == 1 or None)
    assert transport.queue_size() == 0 and transport.dead_size() == 1
    [letter] = transport.dead_letters()
    assert letter.task_id == "poison" and letter.attempts == 2
    assert letter.payload == b"segfaults"
    assert "victim2" in letter.reason and "out of attempts" in letter.reason
    assert "(attempt 2 of 2)" in letter.reason


def test_a_delayed_task_is_delivered_once_and_not_early(
    make_transport: Callable[..., RedisTransport],
) -> None:
    transports = [make_transport() for _ in range(4)]
    results: list[tuple[str, list[Delivery], float]] = []
    lock = threading.Lock()
    start = time.monotonic()
    transports[0].enqueue("eta", b"x", delay=0.6)

    def consume(i: int) -> None:
        got = transports[i].fetch(f"c{i}", count=1, timeout=2.0)
        with lock:
            results.append((f"c{i}", got, time.monotonic() - start))

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [(name, at) for name, got, at in results if got]
    assert len(winners) == 1
    assert winners[0][1] >= 0.6
    assert sum(len(got) for _, got, _ in results) == 1


def test_a_late_ack_with_a_stale_token_is_refused(
    transport: RedisTransport, make_transport: Callable[..., RedisTransport]
) -> None:
    other = make_transport()
    transport.enqueue("slow", b"x")
    transport.heartbeat(["zombie"], TTL)
    [stale] = transport.fetch("zombie")
    wait_until(lambda: transport.reap().requeued == 1 or None)
    [fresh] = other.fetch("healthy")
    assert fresh.token > stale.token
    assert transport.ack([stale]) == [False]
    assert transport.dead_letter(stale, "zombie says so") is False
    assert transport.retry_later(stale, 0) is False
    assert other.inflight_size() == 1
    assert other.ack([fresh]) == [True]
    assert_empty(transport)


@pytest.mark.slow
def test_bulk_enqueued_tasks_are_each_fetched_exactly_once(
    transport: RedisTransport, redis_url: str
) -> None:
    n = 100_000
    payload = b"p" * 64
    assert transport.enqueue_many((f"b{i:06d}", payload) for i in range(n)) == n
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def consume(i: int) -> None:
        mine = RedisTransport(transport.queue, url=redis_url)
        while batch := mine.fetch(f"bulk{i}", count=1000):
            assert all(mine.ack(batch))
            with lock:
                counts.update(d.task_id for d in batch)
        mine.close()

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(counts) == n and set(counts.values()) == {1}
    assert_empty(transport)


def test_redis_kill_of_a_consumer_connection_mid_blocking_wait(
    redis_factory: Callable[..., RedisServer],
) -> None:
    server = redis_factory()
    transport = RedisTransport("blk", url=server.url)
    got: list[Delivery] = []
    fetcher = threading.Thread(target=lambda: got.extend(transport.fetch("c1", 1, 10.0)))
    fetcher.start()
    admin = server.client()
    wait_until(lambda: admin.info("clients")["blocked_clients"] == 1)
    admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    transport2 = RedisTransport("blk", url=server.url)
    transport2.enqueue("x", b"y")
    fetcher.join(10)
    assert [d.task_id for d in got] == ["x"]
    admin.close()
    transport.close()
    transport2.close()


def test_client_kill_during_bulk_enqueue_queues_each_task_once(
    redis_factory: Callable[..., RedisServer],
) -> None:
    server = redis_factory()
    transport = RedisTransport("bulk-kill", url=server.url, chunk_size=500)
    admin = server.client()
    n = 30_000
    done = threading.Event()
    kills = 0

    def killer() -> None:
        # A burst of drops in the middle of the enqueue (a storm that never ends would
        # rightly end in an error once the retries are spent).
        nonlocal kills
        for _ in range(20):
            if done.wait(0.03):
                return
            kills += int(admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        queued = transport.enqueue_many((f"b{i:06d}", b"p" * 100) for i in range(n))
    finally:
        done.set()
        thread.join()
    assert kills > 0, "the killer never hit a connection"
    assert queued == n
    entries = admin.lrange(transport.keys.queue, 0, -1)
    ids = [e[1 : e.index(b"\0", 1)] for e in entries]
    assert len(ids) == len(set(ids)) == n  # none lost, none twice
    admin.close()
    transport.close()
