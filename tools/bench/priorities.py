"""The priorities workload (issue 15): what mixed priorities cost, and how fast urgent tasks
pass a backlog.

    uv run python -m tools.bench.priorities                 # both parts, 3 rounds of mixed
    uv run python -m tools.bench.priorities --rounds 5 --json out.json

1. mixed: end-to-end throughput of ``--tasks`` (10,000) no-op tasks queued in bulk on a warm
   cluster (2 workers, prefetch 32), all at priority 0 and, in alternating rounds, spread over
   five priorities (-10, -5, 0, 5, 10, interleaved in chunks of 100); the median of each and
   their ratio. Target: mixed >= 0.9x of plain.
2. urgent: ``--tasks`` low-priority tasks (-10) queued, a cluster working through them; once
   1,000 ran, 100 high-priority ones (10) are queued. Every task numbers its start (a Redis
   INCR), so the low tasks that started after the high ones were queued and before the last of
   them started are counted exactly. Target: all 100 start before the next
   2 x (workers x prefetch) low ones.

Tasks without priorities against the commit before priorities (B and C of the peer bench):
``python -m tools.bench --only q-redis --workloads B,C --baseline DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

import redis
from tools.bench.services import BenchRedis

from qcluster import Cluster, ClusterConfig
from qcore import build_message, codec_for
from qredis import Producer, RedisResultStore, RedisTransport

SECRET = "bench-priorities-secret-0123456789abcdefghijklmn"
WORKERS, PREFETCH = 2, 32
LEVELS = (-10, -5, 0, 5, 10)

_clients: dict[tuple[int, str], redis.Redis] = {}


def noop(i: int) -> None:
    return None


def stamp(url: str, key: str) -> int:
    """The order in which this task started among those counting on ``key``."""
    client = _clients.get((os.getpid(), url))
    if client is None:
        client = _clients[(os.getpid(), url)] = redis.Redis.from_url(url)
    return int(client.incr(key))


def _cluster(url: str, queue: str) -> Cluster:
    return Cluster(
        ClusterConfig(name="p", queue=queue, workers=WORKERS, prefetch=PREFETCH, scheduler=False),
        transport=RedisTransport(queue, url=url),
        store=RedisResultStore(url, namespace=queue, codec=codec_for(SECRET)),
        codec=codec_for(SECRET),
    )


def _drain(producer: Producer, n: int, mixed: bool) -> float:
    """Seconds from the first enqueue until the queue is empty and nothing is in flight."""
    transport = producer.transport
    start = time.perf_counter()
    if mixed:
        for c in range(0, n, 100):
            level = LEVELS[(c // 100) % len(LEVELS)]
            producer.enqueue_many(noop, range(c, min(n, c + 100)), priority=level, save=False)
    else:
        producer.enqueue_many(noop, range(n), save=False)
    while transport.queue_size() or transport.inflight_size():
        time.sleep(0.01)
    return time.perf_counter() - start


def mixed(server: BenchRedis, tasks: int, rounds: int) -> dict[str, Any]:
    queue = "mixed"
    cluster = _cluster(server.url, queue)
    cluster.start()
    rates: dict[str, list[float]] = {"plain": [], "mixed": []}
    try:
        with Producer(server.url, queue, secret=SECRET, namespace=queue) as producer:
            _drain(producer, 1000, False)  # warm
            for _ in range(rounds):
                for kind in ("plain", "mixed"):
                    rates[kind].append(tasks / _drain(producer, tasks, kind == "mixed"))
    finally:
        cluster.stop()
    plain, mix = statistics.median(rates["plain"]), statistics.median(rates["mixed"])
    return {
        "tasks": tasks,
        "rounds": rounds,
        "plain_tasks_per_s": round(plain),
        "mixed_tasks_per_s": round(mix),
        "mixed_over_plain": round(mix / plain, 3),
        "plain_all": [round(r) for r in rates["plain"]],
        "mixed_all": [round(r) for r in rates["mixed"]],
    }


def urgent(server: BenchRedis, tasks: int) -> dict[str, Any]:
    url, queue, key = server.url, "urgent", "bench:priorities:started"
    client = redis.Redis.from_url(url)
    client.delete(key)
    with Producer(url, queue, secret=SECRET, namespace=queue) as producer:
        producer.enqueue_many(stamp, [(url, key)] * tasks, priority=-10)
        cluster = _cluster(url, queue)
        cluster.start()
        try:
            while int(client.get(key) or 0) < 1000:
                time.sleep(0.005)
            # Signed first, so that the count read just before sending is the count when they
            # became visible (one round trip apart), not when their building started.
            messages = [build_message(stamp, (url, key), priority=10) for _ in range(100)]
            items = [(m.id, producer.codec.encode_message(m)) for m in messages]
            high = [m.id for m in messages]
            before = int(client.get(key) or 0)
            sent = time.perf_counter()
            producer.transport.enqueue_many(items, priority=10)
            starts = [producer.fetch(task_id, wait=60) for task_id in high]
            done = time.perf_counter() - sent
            left = producer.queue_size()
        finally:
            cluster.stop()
    client.close()
    if any(r is None for r in starts):
        raise SystemExit("an urgent task had no record within 60 s")
    order = sorted(int(r.result) for r in starts if r is not None)
    passed = order[-1] - before - len(high)
    return {
        "backlog": tasks,
        "workers": WORKERS,
        "prefetch": PREFETCH,
        "low_started_while_urgent_waited": passed,
        "bound": 2 * WORKERS * PREFETCH,
        "first_urgent_start_after": order[0] - before - 1,
        "all_urgent_done_s": round(done, 3),
        "backlog_left_then": left,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each kind in mixed")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    os.environ["Q_SECRET_KEY"] = SECRET
    server = BenchRedis().start()
    load = os.getloadavg()[0]
    try:
        figures = {
            "mixed": mixed(server, args.tasks, args.rounds),
            "urgent": urgent(server, args.tasks),
        }
    finally:
        server.close()
    figures["load_average"] = {"start": round(load, 2), "end": round(os.getloadavg()[0], 2)}
    checks = {
        "mixed priorities >= 0.9x of plain": figures["mixed"]["mixed_over_plain"] >= 0.9,
        "100 urgent start before the next 2 x (workers x prefetch) low ones": (
            figures["urgent"]["low_started_while_urgent_waited"] <= figures["urgent"]["bound"]
        ),
    }
    print(json.dumps(figures, indent=2))
    for what, ok in checks.items():
        print(f"{'PASS' if ok else 'MISS'}  {what}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"figures": figures, "checks": checks}, f, indent=2)


if __name__ == "__main__":
    main()
