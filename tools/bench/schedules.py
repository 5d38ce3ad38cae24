"""The schedules workload (issue 12): what an idle scheduler costs, and how late firings start.

    uv run python -m tools.bench.schedules            # all three parts
    uv run python -m tools.bench.schedules --idle 60  # longer idle measurement

1. idle: 10,000 active schedules, none due for an hour; CPU of the cluster's process tree
   (sentinel, whose beacon runs the scheduler, and its workers) and of redis-server over
   ``--idle`` seconds, with the scheduler on and, as the baseline, off. Target: < 5% of one core.
2. burst: 1,000 Once schedules due at the same second, two clusters firing them; lateness of
   each task's end (an upper bound of its start) after its due time. Target: all within 2 s.
3. light: 200 Once schedules due at random times over 20 s, one cluster; lateness p50/p99/max.
   Target: p99 <= 1 s.

A private redis-server (tools.bench.services) and the Redis result store; tasks are a no-op.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from typing import Any

from tools.bench.measure import percentile, process_tree
from tools.bench.services import BenchRedis

from qcluster import Cluster, ClusterConfig
from qcore import ScheduleSpec, codec_for
from qredis import RedisResultStore, RedisTransport

SECRET = "bench-schedules-secret-0123456789abcdefghijklmnop"


def noop() -> None:
    return None


def _cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / ticks


def _cluster(
    url: str, queue: str, *, scheduler: bool, workers: int = 1, name: str = "b"
) -> Cluster:
    return Cluster(
        ClusterConfig(name=name, queue=queue, workers=workers, scheduler=scheduler),
        transport=RedisTransport(queue, url=url),
        store=RedisResultStore(url, namespace=queue, codec=codec_for(SECRET)),
        codec=codec_for(SECRET),
    )


def idle(server: BenchRedis, seconds: float) -> dict[str, Any]:
    url, queue = server.url, "idle"
    store = RedisTransport(queue, url=url).schedules(codec_for(SECRET))
    later = time.time() + 3600
    for i in range(10_000):
        store.add(ScheduleSpec(id=f"s{i}", func="tools.bench.schedules.noop",
                               schedule_type="I", minutes=60, next_run=later + i))  # fmt: skip
    out: dict[str, Any] = {"schedules": 10_000, "seconds": seconds}
    assert server.process is not None
    redis_pid = server.process.pid
    for scheduler in (True, False):
        cluster = _cluster(url, queue, scheduler=scheduler)
        cluster.start()
        time.sleep(2)  # past start-up
        assert cluster.pid is not None
        pids = process_tree(cluster.pid)
        c0, r0, t0 = _cpu_seconds(pids), _cpu_seconds([redis_pid]), time.monotonic()
        time.sleep(seconds)
        c1, r1, t1 = _cpu_seconds(pids), _cpu_seconds([redis_pid]), time.monotonic()
        cluster.stop()
        key = "on" if scheduler else "off"
        out[f"cluster_cpu_pct_scheduler_{key}"] = round(100 * (c1 - c0) / (t1 - t0), 2)
        out[f"redis_cpu_pct_scheduler_{key}"] = round(100 * (r1 - r0) / (t1 - t0), 2)
    return out


def _lateness(url: str, queue: str, dues: dict[str, float], timeout: float) -> list[float]:
    results = RedisResultStore(url, namespace=queue, codec=codec_for(SECRET))
    deadline = time.monotonic() + timeout
    late = []
    for task_id, due in dues.items():
        record = results.wait(task_id, max(0.01, deadline - time.monotonic()))
        if record is None:
            raise SystemExit(f"no record for a firing due at {due} within {timeout} s")
        late.append(record.stopped - due)
    return late


def burst(server: BenchRedis) -> dict[str, Any]:
    from qcore import firing_id

    url, queue = server.url, "burst"
    clusters = [_cluster(url, queue, scheduler=True, workers=2, name=f"b{i}") for i in range(2)]
    for cluster in clusters:
        cluster.start()
    store = RedisTransport(queue, url=url).schedules(codec_for(SECRET))
    due = float(int(time.time()) + 5)
    dues = {}
    for i in range(1000):
        store.add(ScheduleSpec(id=f"o{i}", func="tools.bench.schedules.noop", next_run=due))
        dues[firing_id(f"o{i}", round(due * 1000))] = due
    try:
        late = _lateness(url, queue, dues, 60)
    finally:
        for cluster in clusters:
            cluster.stop()
    return {
        "schedules": 1000,
        "max_s": round(max(late), 3),
        "p99_s": round(percentile(late, 99), 3),
    }


def light(server: BenchRedis) -> dict[str, Any]:
    from qcore import firing_id

    url, queue = server.url, "light"
    cluster = _cluster(url, queue, scheduler=True, workers=2)
    cluster.start()
    store = RedisTransport(queue, url=url).schedules(codec_for(SECRET))
    rng = random.Random(7)
    start = time.time() + 2
    dues = {}
    for i in range(200):
        due = round(start + rng.uniform(0, 20), 3)
        store.add(ScheduleSpec(id=f"l{i}", func="tools.bench.schedules.noop", next_run=due))
        dues[firing_id(f"l{i}", round(due * 1000))] = due
    try:
        late = _lateness(url, queue, dues, 60)
    finally:
        cluster.stop()
    return {
        "schedules": 200,
        "p50_s": round(percentile(late, 50), 3),
        "p99_s": round(percentile(late, 99), 3),
        "max_s": round(max(late), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=30.0, help="seconds per idle measurement")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    os.environ["Q_SECRET_KEY"] = SECRET
    server = BenchRedis().start()
    try:
        figures = {"idle": idle(server, args.idle), "burst": burst(server), "light": light(server)}
    finally:
        server.close()
    idle_on = figures["idle"]["cluster_cpu_pct_scheduler_on"]
    checks = {
        "idle cluster with 10,000 schedules < 5% of a core": idle_on < 5,
        "1,000 due at one second all start within 2 s": figures["burst"]["max_s"] <= 2,
        "p99 lateness under light load <= 1 s": figures["light"]["p99_s"] <= 1,
    }
    print(json.dumps(figures, indent=2))
    for what, ok in checks.items():
        print(f"{'PASS' if ok else 'MISS'}  {what}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"figures": figures, "checks": checks}, f, indent=2)


if __name__ == "__main__":
    main()
