"""Redis misbehaving under a running cluster: restarted, stalled, its connections killed.

Each test runs on a server of its own (appendonly, ``appendfsync always``, DEBUG allowed).
A Redis fault may make redis-py re-send a command whose reply was lost, so a record may be
saved twice (an upsert: still one record) and a task may run twice: the promise here is at
least once, and nothing lost.
"""

from __future__ import annotations

import threading

import pytest

from tests.cluster.support import Bench
from tests.faults import tasks
from tests.faults.support import (
    Effects,
    assert_at_least_once,
    enqueue_counted,
    wait_drained,
    wait_for_count,
)
from tests.support.servers import RedisServer

N = 400


def _saved(bench: Bench) -> int:
    return int(bench.client.hlen(bench.store.count_key))


@pytest.mark.slow
def test_redis_killed_and_restarted_mid_run_loses_nothing(
    own_redis: RedisServer, own_bench: Bench, own_fx: Effects
) -> None:
    ids = enqueue_counted(own_bench, own_fx, tasks.counted_sleep, map(str, range(N)), 0.002)
    with own_bench.cluster(workers=2, start_method="fork", heartbeat=0.5, retry=5):
        wait_for_count(lambda: _saved(own_bench), N // 4)
        assert _saved(own_bench) < N, "the restart must come mid-run"
        own_redis.restart(kill=True, down_for=0.5)  # SIGKILL: only the AOF survives
        own_bench.client.close()  # its socket died with the server
        wait_drained(own_bench, N)
    assert_at_least_once(own_bench, own_fx, ids)


@pytest.mark.parametrize("stall", ["debug-sleep", "client-pause"])
def test_redis_stalled_longer_than_the_socket_timeout_loses_nothing(
    own_redis: RedisServer, queue_name: str, own_fx: Effects, stall: str
) -> None:
    # Clients whose socket timeout (0.5 s) is shorter than the stall (1.5 s): commands time
    # out, are retried on fresh connections, and some replies are lost after being applied.
    bench = Bench(own_redis.url + "?socket_timeout=0.5", queue_name)
    admin = own_redis.client()
    try:
        ids = enqueue_counted(bench, own_fx, tasks.counted_sleep, map(str, range(N)), 0.002)
        with bench.cluster(workers=2, start_method="fork", heartbeat=0.5, retry=5):
            wait_for_count(lambda: _saved(bench), N // 4)
            assert _saved(bench) < N, "the stall must come mid-run"
            if stall == "debug-sleep":
                admin.execute_command("DEBUG", "SLEEP", "1.5")  # the whole server freezes
            else:
                admin.execute_command("CLIENT", "PAUSE", "1500", "ALL")
                admin.ping()  # answered once the pause is over (our own client has no timeout)
            wait_drained(bench, N)
        assert_at_least_once(bench, own_fx, ids)
    finally:
        admin.close()
        bench.close()


def test_connections_killed_over_and_over_lose_nothing(
    own_redis: RedisServer, own_bench: Bench, own_fx: Effects
) -> None:
    admin = own_redis.client()
    kills = 0
    done = threading.Event()

    def killer() -> None:
        nonlocal kills
        while not done.wait(0.05):
            kills += int(admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))

    ids = enqueue_counted(own_bench, own_fx, tasks.counted_sleep, map(str, range(N)), 0.002)
    with own_bench.cluster(workers=2, start_method="fork", heartbeat=0.5, retry=5):
        wait_for_count(lambda: _saved(own_bench), N // 10)
        thread = threading.Thread(target=killer)
        thread.start()
        try:
            wait_for_count(lambda: kills, 20)  # a second of kills, tasks flowing meanwhile
            assert _saved(own_bench) < N, "the kills must come mid-run"
        finally:
            done.set()
            thread.join()
        wait_drained(own_bench, N)
    admin.close()
    assert kills >= 20
    assert_at_least_once(own_bench, own_fx, ids)
