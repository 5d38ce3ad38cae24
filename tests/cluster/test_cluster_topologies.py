"""The same clusters run unchanged against a single Redis, a Redis Cluster and a Sentinel group:
only the URL differs (``redis://``, ``redis+cluster://``, ``redis+sentinel://``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cluster.support import Bench, eventually
from tests.cluster.test_cluster_cli import _qcluster, _start, _stop

TOPOLOGIES = ["redis", "cluster", "sentinel"]


@pytest.fixture(params=TOPOLOGIES)
def topology_bench(request: pytest.FixtureRequest, queue_name: str) -> Bench:
    fixture = {"redis": "redis_url", "cluster": "redis_cluster_url"}.get(
        request.param, "redis_sentinel_url"
    )
    bench = Bench(request.getfixturevalue(fixture), queue_name)
    request.addfinalizer(bench.close)
    return bench


@pytest.mark.slow
def test_an_embedded_cluster_saves_each_task_once(topology_bench: Bench) -> None:
    bench = topology_bench
    ids = bench.producer.enqueue_many("tests.cluster.tasks.square", list(range(300)))
    ids += [bench.producer.enqueue("tests.cluster.tasks.square", 7, countdown=0.5)]
    bench.cluster(workers=2).start()
    records = bench.wait_all(ids, timeout=90)
    assert [records[i].result for i in ids] == [i * i for i in range(300)] + [49]
    assert set(bench.store.counts().values()) == {1}
    eventually(bench.status, what="the cluster's status")


@pytest.mark.slow
def test_qcluster_run_and_info_on_each_kind_of_redis(topology_bench: Bench) -> None:
    bench = topology_bench
    ids = bench.producer.enqueue_many("tests.cluster.tasks.square", list(range(40)))
    process = _start(
        _qcluster(
            "run",
            "--redis-url",
            bench.url,
            "--queue",
            bench.queue,
            "--result-namespace",
            bench.queue,
            "--status-namespace",
            bench.queue,
            "--workers",
            "2",
            "--import",
            "tests.cluster.tasks",
        )
    )
    try:
        records = bench.wait_all(ids, timeout=90)
        assert [records[i].result for i in ids] == [i * i for i in range(40)]
        eventually(bench.board.clusters, what="the cluster's status")
        info = subprocess.run(
            _qcluster("info", "--redis-url", bench.url, "--status-namespace", bench.queue),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            executable=sys.executable,
        )
        assert bench.queue in info.stdout and "running" in info.stdout
    finally:
        code, out = _stop(process)
    assert code == 0, out
