"""The chains workload (issue 13): how long a chain waits between one link's end and the next
link's start.

    uv run python -m tools.bench.chains                 # both parts
    uv run python -m tools.bench.chains --length 200    # a shorter long chain

1. long: one chain of ``--length`` (1,000) links, two workers.
2. parallel: ``--chains`` (1,000) chains of 10 links at once, two workers.

Each link returns the time it started; the gap is that minus the previous link's ``stopped``
(set when its function returned), so it holds the record's save, the ack that queues the
next link (one script), the fetch that hands it out and its verification. Target: p50 <= 2 ms
for the long chain. A private redis-server (tools.bench.services), the Redis result store.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from typing import Any

from tools.bench.measure import percentile
from tools.bench.services import BenchRedis
from tools.bench.workloads import loadavg

from qcluster import Cluster, ClusterConfig
from qcore import TaskResult, codec_for
from qredis import Producer, RedisResultStore, RedisTransport

SECRET = "bench-chains-secret-0123456789abcdefghijklmnopqrst"


def stamp() -> float:
    """A link: the time it started."""
    return time.time()


def _cluster(url: str, queue: str) -> Cluster:
    return Cluster(
        ClusterConfig(name="chains", queue=queue, workers=2),
        transport=RedisTransport(queue, url=url),
        store=RedisResultStore(url, namespace=queue, codec=codec_for(SECRET)),
        codec=codec_for(SECRET),
    )


def _records(store: RedisResultStore, ids: list[str], timeout: float) -> list[TaskResult]:
    deadline = time.monotonic() + timeout
    out = []
    for task_id in ids:
        record = store.wait(task_id, max(0.01, deadline - time.monotonic()))
        if record is None:
            raise SystemExit(f"no record for a link within {timeout} s")
        out.append(record)
    return out


def _gaps(records: list[TaskResult]) -> list[float]:
    return [(b.result - a.stopped) * 1000 for a, b in itertools.pairwise(records)]


def _summary(gaps_ms: list[float]) -> dict[str, Any]:
    return {
        "gaps": len(gaps_ms),
        "p50_ms": round(percentile(gaps_ms, 50), 3),
        "p99_ms": round(percentile(gaps_ms, 99), 3),
        "max_ms": round(max(gaps_ms), 3),
    }


def long_chain(server: BenchRedis, length: int) -> dict[str, Any]:
    url, queue = server.url, "long"
    producer = Producer(url, queue, namespace=queue, secret=SECRET)
    cluster = _cluster(url, queue)
    cluster.start()
    try:
        begun = time.monotonic()
        ids = producer.chain([stamp] * length)
        records = _records(producer.store, ids, 600)
        took = time.monotonic() - begun
    finally:
        cluster.stop()
        producer.close()
    return {
        "links": length,
        "seconds": round(took, 2),
        "load": loadavg(),
        **_summary(_gaps(records)),
    }


def parallel(server: BenchRedis, chains: int) -> dict[str, Any]:
    url, queue = server.url, "parallel"
    producer = Producer(url, queue, namespace=queue, secret=SECRET)
    all_ids = [producer.chain([stamp] * 10) for _ in range(chains)]
    cluster = _cluster(url, queue)
    begun = time.monotonic()
    cluster.start()
    try:
        gaps: list[float] = []
        for ids in all_ids:
            gaps += _gaps(_records(producer.store, ids, 600))
        took = time.monotonic() - begun
    finally:
        cluster.stop()
        producer.close()
    return {
        "chains": chains,
        "links": chains * 10,
        "seconds": round(took, 2),
        "links_per_s": round(chains * 10 / took),
        "load": loadavg(),
        **_summary(gaps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=1000, help="links of the long chain")
    parser.add_argument("--chains", type=int, default=1000, help="chains of 10 in parallel")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    os.environ["Q_SECRET_KEY"] = SECRET
    server = BenchRedis().start()
    try:
        figures = {
            "long": long_chain(server, args.length),
            "parallel": parallel(server, args.chains),
        }
    finally:
        server.close()
    checks = {"long chain: link-to-link gap p50 <= 2 ms": figures["long"]["p50_ms"] <= 2}
    print(json.dumps(figures, indent=2))
    for what, ok in checks.items():
        print(f"{'PASS' if ok else 'MISS'}  {what}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"figures": figures, "checks": checks}, f, indent=2)


if __name__ == "__main__":
    main()
