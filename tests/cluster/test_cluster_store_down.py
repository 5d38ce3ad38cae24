"""A result store that goes down: results are kept and retried, nothing unsaved is acked."""

from __future__ import annotations

from collections.abc import Callable

from qcluster import Cluster, ClusterConfig
from qredis import RedisBroker, RedisStatusBoard
from tests.cluster import tasks
from tests.cluster.support import Bench, CountingStore, eventually
from tests.support.servers import RedisServer


def test_results_wait_for_the_store_and_are_acked_only_once_saved(
    bench: Bench, redis_factory: Callable[..., RedisServer]
) -> None:
    store_server = redis_factory()
    store = CountingStore(store_server.url, namespace=bench.queue)
    cluster = Cluster(
        ClusterConfig(name="t", workers=1, start_method="fork", heartbeat=1.0, retry=10.0),
        transport=RedisBroker(bench.queue, url=bench.url),
        store=store,
        status_board=RedisStatusBoard(bench.url, namespace=bench.queue),
    )
    bench.clusters.append(cluster)
    with cluster:
        first = bench.producer.enqueue(tasks.add, 1, 1)
        assert store.wait(first, 30) is not None
        store_server.stop(kill=True)
        ids = bench.producer.enqueue_many(tasks.add, [(i, 1) for i in range(5)])
        # The worker fetches a batch, runs it, and cannot save it: so it does not ack
        # it, and it fetches nothing more while it holds an unsaved result.
        status = eventually(
            lambda: (s := bench.status()) and s["workers"][0]["state"] == "saving" and s,
            what="the worker to be stuck saving",
        )
        held = bench.broker.inflight_size()
        assert held >= 1 and held == status["processed"] - 1
        assert bench.broker.queue_size() == 5 - held
        store_server.restart()
        for i, task_id in enumerate(ids):
            record = store.wait(task_id, 30)
            assert record is not None and record.result == i + 1
        eventually(lambda: bench.broker.inflight_size() == 0, what="the acks")
    assert set(store.counts().values()) == {1}
