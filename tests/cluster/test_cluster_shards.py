"""A sharded queue end to end: ``qcluster run --shards 3`` on the local Redis Cluster serves the
tasks of every shard, of one queue or of several; a cluster or producer configured with another
count is refused, naming both counts (each queue's, for a cluster of several)."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from collections.abc import Iterator

import pytest

from qcluster import Cluster, ClusterConfig, ClusterError
from qcore import ConfigError
from qredis import Producer, RedisTransport, ShardedQueue
from tests.cluster.support import Bench, CountingStore
from tests.cluster.test_cluster_cli import ROOT, _qcluster, _start, _stop


@pytest.fixture
def cluster_bench(redis_cluster_url: str, queue_name: str) -> Iterator[Bench]:
    b = Bench(redis_cluster_url, queue_name)
    yield b
    b.close()


def _run(bench: Bench, *extra: str) -> list[str]:
    return _qcluster(
        "run", "--redis-url", bench.url, "--queue", bench.queue,
        "--result-namespace", bench.queue, "--status-namespace", bench.queue,
        "--workers", "2", "--import", "tests.cluster.tasks", "--json-logs", *extra,
    )  # fmt: skip


def test_qcluster_run_with_shards_serves_every_shard_of_the_queue(cluster_bench: Bench) -> None:
    bench = cluster_bench
    with Producer(bench.url, bench.queue, namespace=bench.queue, shards=3) as producer:
        ids = producer.enqueue_many("tests.cluster.tasks.square", range(300))
        ids += [producer.enqueue("tests.cluster.tasks.square", i) for i in range(30)]
        sharded = producer.transport
        assert isinstance(sharded, ShardedQueue)
        per_shard = Counter(sharded.shard(i).queue for i in ids)
        assert len(per_shard) == 3 and min(per_shard.values()) > 60, per_shard
        info = subprocess.run(
            _qcluster("info", "--redis-url", bench.url, "--queue", bench.queue),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            cwd=ROOT,
        )  # it reads the shard count from Redis: every shard's tasks are counted
        assert "330" in info.stdout, info.stdout
        process = _start(_run(bench, "--shards", "3"))
        try:
            records = bench.wait_all(ids, timeout=90)
        finally:
            code, out = _stop(process)
        assert code == 0, out
        assert all(r.success for r in records.values())
        assert sharded.queue_size() == sharded.inflight_size() == 0


def test_a_cluster_with_another_shard_count_is_refused_naming_both(cluster_bench: Bench) -> None:
    bench = cluster_bench
    with Producer(bench.url, bench.queue, namespace=bench.queue, shards=3) as producer:
        producer.enqueue("tests.cluster.tasks.square", 2)
    done = subprocess.run(
        _run(bench, "--shards", "2"), capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode != 0
    assert "has 3 shard(s) in Redis" in done.stdout + done.stderr
    assert "shards=2" in done.stdout + done.stderr
    # Unsharded, it would serve shard 0 only and starve the others: refused too.
    cluster = Cluster(
        ClusterConfig(name="s", queue=bench.queue, workers=1),
        transport=RedisTransport(bench.queue, url=bench.url),
        store=CountingStore(bench.url, namespace=bench.queue),
    )
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)}
    with pytest.raises(ClusterError, match=r"has 3 shard\(s\) in Redis .* shards=1"):
        cluster.run()
    # The refused run gave this process its signal handlers back (they were the sentinel's,
    # and a child forked later, a multiprocessing pool's worker, ignored its SIGTERM).
    assert {s: signal.getsignal(s) for s in handlers} == handlers
    with (
        Producer(bench.url, bench.queue, namespace=bench.queue, shards=4) as other,
        pytest.raises(ConfigError, match=r"has 3 shard\(s\) in Redis .* shards=4"),
    ):
        other.enqueue("tests.cluster.tasks.square", 2)


def test_qcluster_run_shards_every_one_of_its_queues(cluster_bench: Bench) -> None:
    bench = cluster_bench
    first, second = bench.queue, f"{bench.queue}-b"
    ids: dict[str, list[str]] = {}
    for name in (first, second):
        with Producer(bench.url, name, namespace=bench.queue, shards=3) as producer:
            ids[name] = producer.enqueue_many("tests.cluster.tasks.square", range(150))
            per_shard = Counter(producer.transport.shard(i).queue for i in ids[name])
            assert len(per_shard) == 3, per_shard
    both = ["--queue", second, "--shards", "3", "--prefetch", "1"]
    process = _start(_run(bench, *both))  # --queue first, then these: strict order
    try:
        records = bench.wait_all([*ids[first], *ids[second]], timeout=120)
    finally:
        code, out = _stop(process)
    assert code == 0, out
    assert all(r.success for r in records.values())
    # Strict order: the second queue's tasks waited for the first's (but what the two workers
    # had fetched when the first ran dry).
    last_first = max(records[i].stopped for i in ids[first])
    early = [i for i in ids[second] if records[i].stopped < last_first]
    assert len(early) <= 4, len(early)
    for name in (first, second):
        sharded = RedisTransport(name, url=bench.url).sharded(3)
        assert sharded.queue_size() == sharded.inflight_size() == 0


def test_a_cluster_of_several_queues_checks_each_ones_shard_count(cluster_bench: Bench) -> None:
    bench = cluster_bench
    first, second = bench.queue, f"{bench.queue}-b"
    with Producer(bench.url, second, namespace=bench.queue, shards=2) as producer:
        producer.enqueue("tests.cluster.tasks.square", 2)
    cluster = Cluster(
        ClusterConfig(name="s", queue=first, queues=(first, second), workers=1, shards=3),
        transport=RedisTransport(first, url=bench.url),
        store=CountingStore(bench.url, namespace=bench.queue),
    )
    with pytest.raises(ClusterError, match=rf"queue '{second}' has 2 shard\(s\) .* shards=3"):
        cluster.run()


def test_shards_and_several_queues_mix() -> None:
    assert ClusterConfig(queues=("a", "b"), shards=3).shards == 3
    with pytest.raises(ConfigError, match="shards must be an integer"):
        ClusterConfig(shards=0)
    assert ClusterConfig.from_env({"Q_SHARDS": "4"}).shards == 4
