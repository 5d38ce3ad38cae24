"""Fast recovery on the same host: a cluster killed with SIGKILL has its in-flight tasks taken
back at once by a cluster that starts on its host, which can prove its sentinel gone; a cluster
that cannot (another host, a process that is alive) waits for the heartbeat TTL (``retry``).

Clusters of several queues (sharded or not) too, and for them also the other two ways back:
a worker SIGKILLed mid-task (its sentinel's release) and a cluster of another host (the
reaper, after the heartbeat TTL).

Each cluster is ``qcluster run`` in a subprocess, ``retry`` 120 s unless a test says
otherwise: the TTL rule alone would leave the tasks untouched for two minutes; the bound of
30 s leaves room for a loaded machine to start a Python process.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qredis import Producer
from tests.cluster.support import Bench
from tests.faults import tasks
from tests.faults.support import ClusterProcess, Effects, enqueue_counted


def _cluster(bench: Bench, log: Path, *serving: str, retry: int = 120) -> ClusterProcess:
    """``qcluster run`` on the bench's queue, or on the queues and shards of ``serving``."""
    return ClusterProcess(
        [
            "--redis-url",
            bench.url,
            *(serving or ("--queue", bench.queue)),
            "--result-namespace",
            bench.queue,
            "--status-namespace",
            bench.queue,
            "--workers",
            "2",
            "--retry",
            str(retry),
            "--timeout",
            str(retry - 1),
            "--import",
            "tests.faults.tasks",
            "--json-logs",
        ],
        log,
        {"Q_HEARTBEAT": "1"},
    )


@pytest.fixture
def clusters() -> Iterator[list[ClusterProcess]]:
    started: list[ClusterProcess] = []
    yield started
    for cluster in started:
        if cluster.process.poll() is None:
            cluster.process.send_signal(signal.SIGCONT)
        cluster.stop()


def _kill_holding_two(
    bench: Bench, fx: Effects, clusters: list[ClusterProcess], tmp: Path
) -> dict[str, str]:
    """A cluster running two tasks (each hangs on its first run) is SIGKILLed."""
    first = _cluster(bench, tmp / "first.log")
    clusters.append(first)
    first.wait_for('"cluster.started"')
    ids = enqueue_counted(bench, fx, tasks.hang_first_time, ["a", "b"])
    fx.wait_started()
    fx.wait_started()
    first.process.kill()  # not waited for yet: a zombie, which is as gone as a process can be
    return ids


def _owners(bench: Bench) -> dict[str, dict[str, object]]:
    raw = bench.client.hgetall(f"{{q:{bench.queue}}}:owners")
    return {k.decode(): json.loads(v) for k, v in raw.items()}


def test_a_cluster_on_the_same_host_takes_a_killed_clusters_tasks_back_at_once(
    bench: Bench, fx: Effects, clusters: list[ClusterProcess], tmp_path: Path
) -> None:
    ids = _kill_holding_two(bench, fx, clusters, tmp_path)
    [(dead_id, dead)] = _owners(bench).items()
    assert dead["pid"] == clusters[0].process.pid and dead["host"] and dead["start"] > 0
    started = time.monotonic()
    second = _cluster(bench, tmp_path / "second.log")
    clusters.append(second)
    records = bench.wait_all(list(ids.values()), timeout=30)
    took = time.monotonic() - started
    assert took < 30, f"the tasks ran {took:.1f} s after the second cluster started"
    assert all(r.success and r.result == 2 for r in records.values())
    assert fx.counts() == {"a": 2, "b": 2}
    second.wait_for('"cluster.reclaimed"')
    assert f'"dead_cluster": "{dead_id}"' in second.text()
    assert dead_id not in _owners(bench)  # its record is gone with its tasks
    code, _ = second.stop()
    assert code == 0
    assert _owners(bench) == {}  # a cluster that stopped cleanly leaves no record


def test_a_cluster_of_another_host_waits_for_the_heartbeat_ttl(
    bench: Bench, fx: Effects, clusters: list[ClusterProcess], tmp_path: Path
) -> None:
    ids = _kill_holding_two(bench, fx, clusters, tmp_path)
    [(dead_id, dead)] = _owners(bench).items()
    # The same record, as a cluster on another host (another boot id) would have written it.
    elsewhere = {**dead, "host": "another-boot/pid:[4026531836]"}
    bench.client.hset(f"{{q:{bench.queue}}}:owners", dead_id, json.dumps(elsewhere))
    second = _cluster(bench, tmp_path / "second.log")
    clusters.append(second)
    second.wait_for('"cluster.started"')
    time.sleep(4)  # four reclaimer passes (heartbeat 1 s)
    assert bench.transport.inflight_size() == 2
    assert all(bench.store.get(i) is None for i in ids.values())
    assert '"cluster.reclaimed"' not in second.text()


def test_a_stopped_but_living_cluster_keeps_its_tasks(
    bench: Bench, fx: Effects, clusters: list[ClusterProcess], tmp_path: Path
) -> None:
    first = _cluster(bench, tmp_path / "first.log")
    clusters.append(first)
    first.wait_for('"cluster.started"')
    ids = enqueue_counted(bench, fx, tasks.hang_first_time, ["a", "b"])
    fx.wait_started()
    fx.wait_started()
    os.kill(first.process.pid, signal.SIGSTOP)  # alive, same pid, same start time
    second = _cluster(bench, tmp_path / "second.log")
    clusters.append(second)
    second.wait_for('"cluster.started"')
    time.sleep(4)
    assert bench.transport.inflight_size() == 2
    assert all(bench.store.get(i) is None for i in ids.values())
    assert fx.counts() == {"a": 1, "b": 1}
    assert '"cluster.reclaimed"' not in second.text()


@pytest.mark.parametrize("shards", [1, 2])
def test_a_cluster_of_several_queues_takes_a_killed_ones_tasks_back_at_once(
    bench: Bench, fx: Effects, clusters: list[ClusterProcess], tmp_path: Path, shards: int
) -> None:
    """As the first test, for clusters serving two queues (sharded or not), the tasks on the
    second: the same-host proof covers every queue a cluster serves."""
    other = f"{bench.queue}-b"
    serving = ("--queue", bench.queue, "--queue", other, "--shards", str(shards))
    first = _cluster(bench, tmp_path / "first.log", *serving)
    clusters.append(first)
    first.wait_for('"cluster.started"')
    tags = ["a", "b"]  # one per worker
    with Producer(bench.url, other, namespace=bench.queue, shards=shards) as producer:
        ids = dict(
            zip(tags, producer.enqueue_many(tasks.hang_first_time, [fx.args(t) for t in tags]))
        )
    for _ in tags:
        fx.wait_started()
    first.process.kill()
    started = time.monotonic()
    second = _cluster(bench, tmp_path / "second.log", *serving)
    clusters.append(second)
    records = bench.wait_all(list(ids.values()), timeout=30)
    took = time.monotonic() - started
    assert took < 30, f"the tasks ran {took:.1f} s after the second cluster started"
    assert all(r.success and r.result == 2 for r in records.values())
    assert fx.counts() == dict.fromkeys(tags, 2)  # each run again once: killed, then saved
    second.wait_for('"cluster.reclaimed"')
    code, _ = second.stop()
    assert code == 0
    for queue in (bench.queue, other):  # no record left on any queue
        assert not bench.client.hgetall(f"{{q:{queue}}}:owners")


def test_a_cluster_of_several_queues_of_another_host_is_reaped_after_the_ttl(
    bench: Bench, fx: Effects, clusters: list[ClusterProcess], tmp_path: Path
) -> None:
    """The heartbeat rule for a cluster of two queues (one pipelined heartbeat and one
    pipelined reaper scan over both): a cluster of another host SIGKILLed holding tasks of
    the second queue has them taken back by the reaper once its heartbeat deadline passed."""
    other = f"{bench.queue}-b"
    serving = ("--queue", bench.queue, "--queue", other)
    first = _cluster(bench, tmp_path / "first.log", *serving, retry=4)
    clusters.append(first)
    first.wait_for('"cluster.started"')
    with Producer(bench.url, other, namespace=bench.queue) as producer:
        ids = producer.enqueue_many(tasks.hang_first_time, [fx.args(t) for t in ("a", "b")])
    fx.wait_started()
    fx.wait_started()
    first.process.kill()
    for queue in (bench.queue, other):  # as a cluster of another host would have written it
        key = f"{{q:{queue}}}:owners"
        for cluster_id, raw in bench.client.hgetall(key).items():
            record = {**json.loads(raw), "host": "another-boot/pid:[4026531836]"}
            bench.client.hset(key, cluster_id, json.dumps(record))
    second = _cluster(bench, tmp_path / "second.log", *serving, retry=4)
    clusters.append(second)
    records = bench.wait_all(ids, timeout=60)
    assert all(r.success and r.result == 2 for r in records.values())
    assert fx.counts() == {"a": 2, "b": 2}
    text = second.text()
    assert '"consumer.reaped"' in text and '"cluster.reclaimed"' not in text
    code, _ = second.stop()
    assert code == 0


@pytest.mark.parametrize("shards", [1, 2])
def test_a_worker_sigkilled_mid_task_on_the_second_queue_is_run_again_at_once(
    bench: Bench, fx: Effects, clusters: list[ClusterProcess], tmp_path: Path, shards: int
) -> None:
    """A worker of a cluster of two queues SIGKILLed mid-task on the second: its sentinel
    puts the task back on that queue at once (retry is 120 s: no reaper does it)."""
    other = f"{bench.queue}-b"
    serving = ("--queue", bench.queue, "--queue", other, "--shards", str(shards))
    cluster = _cluster(bench, tmp_path / "cluster.log", *serving)
    clusters.append(cluster)
    cluster.wait_for('"cluster.started"')
    with Producer(bench.url, other, namespace=bench.queue, shards=shards) as producer:
        [task_id] = producer.enqueue_many(tasks.hang_first_time, [fx.args("a")])
    os.kill(fx.wait_started(), signal.SIGKILL)
    [record] = bench.wait_all([task_id], timeout=30).values()
    assert record.success and record.result == 2
    assert fx.counts() == {"a": 2}
    code, _ = cluster.stop()
    assert code == 0
