"""One cluster, several queues: strict order (``qcluster run --queue hi --queue lo``) and
weights (``Cluster(queues={"a": 3, "b": 1})``), on real worker processes."""

from __future__ import annotations

import subprocess
from collections import Counter

from qcluster import Cluster, ClusterConfig
from qredis import Producer, RedisQueues, RedisStatusBoard, RedisTransport
from tests.cluster.support import Bench, CountingStore, eventually
from tests.cluster.test_cluster_cli import ROOT, _qcluster, _start, _stop


def _producer(bench: Bench, queue: str) -> Producer:
    return Producer(bench.url, queue, namespace=bench.queue)


def test_qcluster_run_serves_its_queues_in_strict_order(bench: Bench) -> None:
    hi, lo = f"{bench.queue}-hi", f"{bench.queue}-lo"
    with _producer(bench, hi) as high, _producer(bench, lo) as low:
        low_ids = low.enqueue_many("tests.cluster.tasks.square", range(200))
        high_ids = high.enqueue_many("tests.cluster.tasks.square", range(20))
    process = _start(
        _qcluster(
            "run", "--redis-url", bench.url, "--queue", hi, "--queue", lo,
            "--result-namespace", bench.queue, "--status-namespace", bench.queue,
            "--workers", "1", "--import", "tests.cluster.tasks", "--json-logs",
        )
    )  # fmt: skip
    try:
        records = bench.wait_all([*high_ids, *low_ids], timeout=60)
        eventually(bench.board.clusters, what="the cluster's status")
        info = subprocess.run(
            _qcluster("info", "--redis-url", bench.url, "--status-namespace", bench.queue),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            cwd=ROOT,
        )
        assert hi in info.stdout and lo in info.stdout, info.stdout
    finally:
        code, out = _stop(process)
    assert code == 0, out
    # One worker, strict order: every task of the first queue ran before any of the second.
    assert max(records[i].stopped for i in high_ids) <= min(records[i].stopped for i in low_ids)


def test_weighted_queues_are_served_in_proportion(bench: Bench) -> None:
    a, b = f"{bench.queue}-a", f"{bench.queue}-b"
    with _producer(bench, a) as pa, _producer(bench, b) as pb:
        ids = {a: pa.enqueue_many("tests.cluster.tasks.square", range(400), group=a)}
        ids[b] = pb.enqueue_many("tests.cluster.tasks.square", range(400), group=b)
    transport = RedisTransport(a, url=bench.url)
    cluster = Cluster(
        ClusterConfig(name="w", workers=1, prefetch=1, status_interval=0.2),
        transport=transport,
        store=CountingStore(bench.url, namespace=bench.queue),
        status_board=RedisStatusBoard(bench.url, namespace=bench.queue),
        queues={a: 3, b: 1},
    )
    bench.clusters.append(cluster)
    assert isinstance(cluster.transport, RedisQueues)
    with cluster:
        eventually(lambda: len(bench.store.counts()) >= 200, timeout=60, what="200 tasks done")
        done = set(bench.store.counts())
    served = Counter(q for q, q_ids in ids.items() for i in q_ids if i in done)
    # 3:1, give or take the batch in flight when counted; the lighter queue is not starved
    assert 2.2 <= served[a] / served[b] <= 4.0, served
    assert served[b] >= 40, served


def test_a_transport_that_cannot_serve_several_queues_is_refused(bench: Bench) -> None:
    from qcore import ConfigError
    from qcore.testing import MemoryResultStore, MemoryTransport

    try:
        Cluster(
            ClusterConfig(queues=("a", "b")),
            transport=MemoryTransport(),
            store=MemoryResultStore(),
        )
    except ConfigError as exc:
        assert "cannot serve several queues (a, b)" in str(exc)
    else:
        raise AssertionError("a MemoryTransport cannot serve several queues")


def test_bad_queue_settings_are_refused_naming_them() -> None:
    from qcore import ConfigError

    for bad, match in [
        (("a", "a"), "more than once: a"),
        (("a=3", "b"), "not a mix"),
        (("a=0",), "integer >= 1"),
        (("a b",), "whitespace"),
        ({"a": "x"}, "integer >= 1"),
    ]:
        try:
            ClusterConfig(queues=bad)  # type: ignore[arg-type]
        except ConfigError as exc:
            assert match in str(exc), (bad, str(exc))
        else:
            raise AssertionError(f"{bad!r} was accepted")
    config = ClusterConfig.from_env({"Q_QUEUES": "a=3, b=1"})
    assert config.queues == ("a=3", "b=1")
    assert config.queue_plan() == (("a", "b"), (3, 1))
    assert ClusterConfig(queues=["x", "y"]).queue_plan() == (("x", "y"), None)
    assert ClusterConfig(queue="z").queue_plan() == (("z",), None)
