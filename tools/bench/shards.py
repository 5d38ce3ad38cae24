"""The sharded-queue workload (issue 15): one queue on the local Redis Cluster (3 masters, 3
replicas) in 1 and in 3 shards, interleaved in one run.

    uv run python -m tools.bench.shards                     # 3 rounds of each, 5,000 tasks
    uv run python -m tools.bench.shards --tasks 10000 --rounds 5 --json out.json

Per round and shard count, on a warm cluster (2 workers, prefetch 32, started for the round):

- enqueue: ``--tasks`` no-op tasks in bulk (``enqueue_many``), tasks/s; and 500 single
  ``enqueue`` calls, µs per call;
- drain: from the first bulk enqueue until the queue is empty and nothing is in flight,
  tasks/s end to end;
- Redis's side: CPU seconds (user + sys) and commands the masters spent per task over the
  drain (``INFO cpu``, ``INFO stats`` summed over the masters), and the masters' commands per
  second while the cluster idles for 3 s (the cost of polling the other shards).

The medians and the 3-shard / 1-shard ratios are printed with the load average. On a 2-core
machine the cluster's six redis-servers, the workers and this process share the cores: the
run shows what sharding costs, not the speed-up N masters on N machines give (the docs'
model, docs/deployment/redis-cluster.md, uses these figures for that).

The cluster is the test harness's (``tests.support.topologies.LocalRedisCluster``): the bench
runs from the repository's root.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from typing import Any

import redis
from tests.support.topologies import LocalRedisCluster

from qcluster import Cluster, ClusterConfig
from qcore import codec_for
from qredis import Producer, RedisResultStore, RedisTransport

SECRET = "bench-shards-secret-0123456789abcdefghijklmnopq"
WORKERS, PREFETCH = 2, 32
SINGLES = 500


def noop(i: int) -> None:
    return None


def _masters(cluster: LocalRedisCluster) -> list[redis.Redis]:
    out = []
    for node in cluster.live_nodes():
        client = node.client(socket_timeout=5)
        if client.info("replication")["role"] == "master":
            out.append(client)
        else:
            client.close()
    return out


def _redis_usage(masters: list[redis.Redis]) -> tuple[float, int]:
    """CPU seconds and commands the masters spent so far, summed."""
    cpu, commands = 0.0, 0
    for m in masters:
        info = m.info()
        cpu += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        commands += int(info["total_commands_processed"])
    return cpu, commands


def _cluster(url: str, queue: str, shards: int) -> Cluster:
    return Cluster(
        ClusterConfig(
            name="s", queue=queue, workers=WORKERS, prefetch=PREFETCH, scheduler=False,
            shards=shards, status_interval=5.0,
        ),
        transport=RedisTransport(queue, url=url),
        store=RedisResultStore(url, namespace=queue, codec=codec_for(SECRET)),
        codec=codec_for(SECRET),
    )  # fmt: skip


def _drain(producer: Producer, n: int) -> tuple[float, float]:
    """Bulk enqueue seconds, and seconds until the queue is empty and nothing is in flight."""
    transport = producer.transport
    start = time.perf_counter()
    producer.enqueue_many(noop, range(n), save=False)
    enqueued = time.perf_counter() - start
    while transport.queue_size() or transport.inflight_size():
        time.sleep(0.01)
    return enqueued, time.perf_counter() - start


def one_round(
    cluster: LocalRedisCluster, masters: list[redis.Redis], shards: int, tasks: int, n: int
) -> dict[str, float]:
    queue = f"bench-{shards}x-{n}"
    url = cluster.url
    q_cluster = _cluster(url, queue, shards)
    q_cluster.start()
    try:
        with Producer(url, queue, secret=SECRET, namespace=queue, shards=shards) as producer:
            _drain(producer, 1000)  # warm: workers started, scripts loaded
            cpu0, cmd0 = _redis_usage(masters)
            enqueued, drained = _drain(producer, tasks)
            cpu1, cmd1 = _redis_usage(masters)
            start = time.perf_counter()
            for i in range(SINGLES):
                producer.enqueue(noop, i, save=False)
            single = (time.perf_counter() - start) / SINGLES
            while producer.transport.queue_size() or producer.transport.inflight_size():
                time.sleep(0.01)
            time.sleep(0.5)
            _, idle0 = _redis_usage(masters)
            time.sleep(3.0)
            _, idle1 = _redis_usage(masters)
    finally:
        q_cluster.stop()
    return {
        "bulk_enqueue_tasks_per_s": tasks / enqueued,
        "single_enqueue_us": single * 1e6,
        "drain_tasks_per_s": tasks / drained,
        "redis_cpu_us_per_task": (cpu1 - cpu0) / tasks * 1e6,
        "redis_commands_per_task": (cmd1 - cmd0) / tasks,
        "idle_commands_per_s": (idle1 - idle0) / 3.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    os.environ["Q_SECRET_KEY"] = SECRET
    binary, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if not binary or not cli:
        raise SystemExit("redis-server and redis-cli must be on PATH")
    cluster = LocalRedisCluster(binary, cli).start()
    masters = _masters(cluster)
    load = os.getloadavg()[0]
    runs: dict[int, list[dict[str, float]]] = {1: [], 3: []}
    try:
        for n in range(args.rounds):
            for shards in (1, 3) if n % 2 == 0 else (3, 1):  # interleaved, order alternating
                runs[shards].append(one_round(cluster, masters, shards, args.tasks, n))
    finally:
        for m in masters:
            m.close()
        cluster.close()
    medians = {
        shards: {k: round(statistics.median(r[k] for r in rs), 2) for k in rs[0]}
        for shards, rs in runs.items()
    }
    figures: dict[str, Any] = {
        "tasks": args.tasks,
        "rounds": args.rounds,
        "workers": WORKERS,
        "prefetch": PREFETCH,
        "one_shard": medians[1],
        "three_shards": medians[3],
        "three_over_one": {
            k: round(medians[3][k] / medians[1][k], 3) if medians[1][k] else None
            for k in medians[1]
        },
        "load_average": {"start": round(load, 2), "end": round(os.getloadavg()[0], 2)},
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"figures": figures, "runs": runs}, f, indent=2)


if __name__ == "__main__":
    main()
