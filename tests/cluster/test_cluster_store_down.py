"""A result store that goes down: results are kept and retried, nothing unsaved is acked."""

from __future__ import annotations

from collections.abc import Callable

from qcluster import Cluster, ClusterConfig
from qredis import RedisStatusBoard, RedisTransport
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
        transport=RedisTransport(bench.queue, url=bench.url),
        store=store,
        status_board=RedisStatusBoard(bench.url, namespace=bench.queue),
    )
    bench.clusters.append(cluster)
    with cluster:
        first = bench.producer.enqueue(tasks.add, 1, 1)
        assert store.wait(first, 30) is not None
        # The record is readable a moment before the save's reply reaches the worker; the ack
        # follows the reply, so once nothing is in flight the first save is over.
        eventually(lambda: bench.transport.inflight_size() == 0, what="the first task's ack")
        store_server.stop(kill=True)
        ids = bench.producer.enqueue_many(tasks.add, [(i, 1) for i in range(5)])

        # The worker fetches a batch, runs it, and cannot save it: so it does not ack
        # it, and it fetches nothing more while it holds an unsaved result.
        # The status is a snapshot every few seconds: one taken while the first task was
        # being saved also says "saving", so wait for one that counts the new batch.
        def stuck() -> int | None:
            s = bench.status()
            if not s or s["workers"][0]["state"] != "saving" or s["processed"] < 2:
                return None
            held = bench.transport.inflight_size()
            return held if held == s["processed"] - 1 else None

        held = eventually(stuck, what="the worker to be stuck saving what it ran, unacked")
        assert bench.transport.queue_size() == 5 - held
        store_server.restart()
        for i, task_id in enumerate(ids):
            record = store.wait(task_id, 30)
            assert record is not None and record.result == i + 1
        eventually(lambda: bench.transport.inflight_size() == 0, what="the acks")
    assert set(store.counts().values()) == {1}
