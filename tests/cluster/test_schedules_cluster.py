"""Schedules on real clusters: each due time fires once, whatever the number of clusters, kills
and restarts; on time; caught up after downtime. Redis-only (qredis schedules, ``qcluster run
--schedule``); the Django side is in packages/qdjango/tests."""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from qcluster import Cluster, ClusterConfig
from qcore import ScheduleSpec, codec_for, firing_id
from qredis import RedisSchedules, RedisTransport
from tests.cluster.support import Bench, CountingStore, RedisClock, eventually

ROOT = Path(__file__).resolve().parents[2]


def scheduling_cluster(
    bench: Bench, name: str, settings: dict[str, object] | None = None, **kw: object
) -> Cluster:
    """A cluster that fires the bench queue's schedules but runs no task of that queue (its
    workers consume an idle queue): killing it can never cut a running task short, so a task
    run twice could only mean a firing queued twice."""
    store = RedisSchedules(RedisTransport(bench.queue, url=bench.url), codec_for())
    cluster = Cluster(
        ClusterConfig(
            name=name, queue=f"{bench.queue}-idle", workers=1, heartbeat=1.0, retry=10.0,
            status_interval=0.5, **(settings or {}),  # type: ignore[arg-type]
        ),
        transport=RedisTransport(f"{bench.queue}-idle", url=bench.url),
        store=CountingStore(bench.url, namespace=bench.queue),
        schedule_store=store,
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    bench.clusters.append(cluster)
    return cluster


def running_cluster(bench: Bench) -> Cluster:
    """A cluster that runs the bench queue's tasks and fires nothing."""
    return bench.cluster(scheduler=False, workers=2)


@pytest.mark.slow
def test_three_clusters_fire_200_once_schedules_each_exactly_once_and_on_time(
    bench: Bench,
) -> None:
    schedules = bench.transport.schedules(codec_for())
    clusters = [bench.cluster(name=f"c{i}", workers=2) for i in range(3)]
    for cluster in clusters:
        cluster.start()
    start = time.time() + 2.0
    dues = {}
    for i in range(200):
        spec = ScheduleSpec(id=f"once-{i}", func="tests.cluster.tasks.add", args=(i, 1),
                            next_run=start + (i % 40) * 0.05)  # fmt: skip
        schedules.add(spec)
        dues[firing_id(spec.id, round(spec.next_run * 1000))] = spec.next_run
    records = bench.wait_all(list(dues), timeout=60)
    time.sleep(1.5)  # room for a second firing, were there one
    counts = bench.store.counts()
    assert set(counts) == set(dues)
    assert set(counts.values()) == {1}
    assert sorted(r.result for r in records.values()) == list(range(1, 201))
    # Never early, and queued on the first passes after the due time (`started` is when the
    # firing was built). The bound leaves room for a loaded test machine; the lateness itself
    # (p99 <= 1 s) is measured by tools/bench/schedules.py.
    lateness = sorted(records[i].started - dues[i] for i in dues)
    assert lateness[0] >= -0.01 and lateness[-1] < 10, lateness[-5:]
    assert all(s.due_ms is None and s.repeats == 0 for s in schedules.list())


@pytest.mark.slow
def test_a_minutes_schedule_fires_once_per_due_time_across_kills_and_restarts(
    bench: Bench,
) -> None:
    # A clock the test moves: ten minutes of due times in seconds of test time.
    clock = RedisClock(bench.url, f"{bench.queue}:clock")
    t0 = (int(time.time()) // 60 + 60) * 60.0
    clock.set(t0 - 5)
    spec = ScheduleSpec(id="minutely", func="tests.cluster.tasks.add", args=(1, 2),
                        schedule_type="I", minutes=1, next_run=t0)  # fmt: skip
    bench.transport.schedules(codec_for()).add(spec)
    rng = random.Random(12)
    worker = running_cluster(bench)
    worker.start()
    alive = [scheduling_cluster(bench, f"s{i}", clock=clock) for i in range(3)]
    for cluster in alive:
        cluster.start()

    def kill(cluster: Cluster) -> None:
        assert cluster.pid is not None
        os.kill(cluster.pid, signal.SIGKILL)
        cluster.stop(timeout=10)

    expected = []
    for minute in range(10):
        due = t0 + 60 * minute
        expected.append(firing_id("minutely", round(due * 1000)))
        if minute == 4:
            # Every cluster down across two due times: both fire once each on restart.
            for cluster in alive:
                kill(cluster)
            alive = []
        if minute == 5:
            continue
        clock.set(due + rng.choice([-0.05, 0.0, 0.05, 0.5]))  # around the due time
        for cluster in rng.sample(alive, k=rng.randint(0, len(alive))):
            kill(cluster)  # maybe in the middle of firing it
            alive.remove(cluster)
        clock.set(due + 1)
        while len(alive) < 3:
            fresh = scheduling_cluster(bench, f"r{minute}{len(alive)}", clock=clock)
            fresh.start()
            alive.append(fresh)
        bench.wait_all(expected, timeout=60)
    time.sleep(2)  # room for a second firing, were there one
    counts = bench.store.counts()
    assert set(counts) == set(expected)
    assert set(counts.values()) == {1}
    state = bench.transport.schedules(codec_for()).get("minutely")
    assert state is not None and state.due_ms == round((t0 + 600) * 1000)


@pytest.mark.slow
def test_catch_up_off_fires_a_missed_schedule_once_in_all(bench: Bench) -> None:
    clock = RedisClock(bench.url, f"{bench.queue}:clock")
    t0 = (int(time.time()) // 60 + 60) * 60.0
    clock.set(t0 + 5 * 60 + 30)  # five and a half minutes missed
    spec = ScheduleSpec(id="m", func="tests.cluster.tasks.add", args=(1, 1),
                        schedule_type="I", minutes=1, next_run=t0)  # fmt: skip
    bench.transport.schedules(codec_for()).add(spec)
    running_cluster(bench).start()
    scheduling_cluster(bench, "s", {"catch_up": False}, clock=clock).start()
    store = bench.transport.schedules(codec_for())
    first = firing_id("m", round(t0 * 1000))
    bench.wait_all([first], timeout=30)
    eventually(lambda: (s := store.get("m")) and s.due_ms == round((t0 + 360) * 1000),
               what="the schedule to move past now")  # fmt: skip
    time.sleep(1.5)
    assert set(bench.store.counts()) == {first}


def test_declared_schedules_keep_their_state_across_restarts(bench: Bench) -> None:
    clock = RedisClock(bench.url, f"{bench.queue}:clock")
    t0 = (int(time.time()) // 60 + 60) * 60.0
    clock.set(t0 - 1)
    spec = ScheduleSpec(id="declared", func="tests.cluster.tasks.add", args=(2, 2),
                        schedule_type="I", minutes=1, next_run=t0)  # fmt: skip
    running_cluster(bench).start()
    first = scheduling_cluster(bench, "a", clock=clock, schedules=[spec])
    first.start()
    store = bench.transport.schedules(codec_for())
    eventually(lambda: store.get("declared"), what="the declared schedule")
    clock.set(t0 + 0.5)
    bench.wait_all([firing_id("declared", round(t0 * 1000))], timeout=30)
    first.stop()
    clock.set(t0 + 200)  # down across three due times; declared again at restart
    again = scheduling_cluster(bench, "b", clock=clock, schedules=[spec])
    again.start()
    missed = [firing_id("declared", round((t0 + 60 * k) * 1000)) for k in (1, 2, 3)]
    bench.wait_all(missed, timeout=30)
    time.sleep(1)
    assert set(bench.store.counts().values()) == {1} and len(bench.store.counts()) == 4


@pytest.mark.slow
def test_qcluster_run_schedule_fires_each_due_time_once_across_three_processes(
    bench: Bench,
) -> None:
    # Every two seconds (croniter's sixth field is seconds), declared by three `qcluster run`.
    key = f"{bench.queue}:runs"
    cmd = [
        sys.executable, "-m", "qcluster.cli", "run", "--redis-url", bench.url,
        "--queue", bench.queue, "--result-namespace", bench.queue,
        "--status-namespace", bench.queue, "--workers", "1", "--import", "tests.cluster.tasks",
        "--schedule", "* * * * * */2=tests.cluster.tasks.log_run",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "Q_REDIS_URL": bench.url, "Q_TEST_RUNS": key}
    processes = []
    try:
        for i in range(3):
            processes.append(
                subprocess.Popen(
                    [*cmd, "--name", f"cli{i}"],
                    cwd=ROOT,
                    env=env,
                    text=True,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                )
            )
        client = redis.Redis.from_url(bench.url)
        eventually(lambda: client.llen(key) >= 6, timeout=40, what="six firings")
    finally:
        for p in processes:
            p.send_signal(signal.SIGINT)
        outputs = [p.communicate(timeout=30)[0] for p in processes]
    runs = sorted(float(v) for v in client.lrange(key, 0, -1))
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert all(g > 1.0 for g in gaps), (gaps, outputs[0][-2000:])
    client.close()


@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("99 * * * *=tests.cluster.tasks.add", "not a valid cron expression"),
        ("* * * * *=tests.cluster.tasks.no_such_task", "no_such_task"),
        ("tests.cluster.tasks.add", "CRON=FUNC"),
    ],
)
def test_qcluster_run_refuses_a_bad_schedule(bench: Bench, option: str, says: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "qcluster.cli", "run", "--redis-url", bench.url,
         "--queue", bench.queue, "--workers", "1", "--schedule", option],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stderr
    assert bench.transport.schedules(codec_for()).ids() == []  # nothing half-declared


@pytest.mark.slow
def test_a_minutes_schedule_in_real_time_across_kills_fires_once_per_due_time(
    bench: Bench,
) -> None:
    # Real clocks, real minutes: three due times over two minutes. A cluster is SIGKILLed just
    # before each due time and another started just after; across the second, all are down.
    t0 = time.time() + 8.0
    spec = ScheduleSpec(id="realtime", func="tests.cluster.tasks.add", args=(1, 1),
                        schedule_type="I", minutes=1, next_run=t0)  # fmt: skip
    bench.transport.schedules(codec_for()).add(spec)
    running_cluster(bench).start()
    alive = [scheduling_cluster(bench, f"rt{i}") for i in range(3)]
    for cluster in alive:
        cluster.start()

    def kill(cluster: Cluster) -> None:
        assert cluster.pid is not None
        os.kill(cluster.pid, signal.SIGKILL)
        cluster.stop(timeout=10)

    def sleep_until(moment: float) -> None:
        time.sleep(max(0.0, moment - time.time()))

    dues = [round((t0 + 60 * k) * 1000) for k in range(3)]
    for k, due in enumerate(dues):
        sleep_until(due / 1000 - 0.05)
        if k == 1:
            for cluster in alive:
                kill(cluster)
            alive = []
            sleep_until(due / 1000 + 3)  # nobody up at the due time
        else:
            kill(alive.pop(0))
        while len(alive) < 3:
            fresh = scheduling_cluster(bench, f"rt{k}{len(alive)}")
            fresh.start()
            alive.append(fresh)
        bench.wait_all([firing_id("realtime", d) for d in dues[: k + 1]], timeout=30)
    time.sleep(2)
    counts = bench.store.counts()
    assert set(counts) == {firing_id("realtime", d) for d in dues}
    assert set(counts.values()) == {1}
