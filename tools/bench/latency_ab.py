"""Workload C (start latency) of two checkouts of Q at the same time, samples interleaved.

    git archive main packages | tar -x -C /tmp/q-before      # the code to compare against
    uv run python tools/bench/latency_ab.py --before /tmp/q-before [--n 300] [--rounds 3]

C's p50 moves by 20% and more between two runs on a shared machine, since it is mostly the
time the machine takes to wake a sleeping worker. Here both clusters run at once (``qcluster
run``, 2 workers, warning level, one on ``--before``'s packages and one on this checkout's, on
two databases of one private redis-server), and the samples go to each in turn 10 ms apart:
whatever the machine does at a moment, it does to both. Each sample is the bench's ``stamp``
task (the clock read first thing in the task, minus the clock read before the enqueue call).
Prints p50, p90, p99 and the minimum of each, per round, then the median after/before.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.servers import RedisServer, redis_server_binary  # noqa: E402

PACKAGES = ("qcore", "qredis", "qcluster", "qdjango")
SECRET = "latency-ab-benchmark-secret-0123456789"
TASK = "tools.bench.peers.tasks.common.stamp"
KEY = "bench:latency"  # tools.bench.peers.tasks.common.LATENCY_KEY


def one_round(trees: dict[str, Path], n: int, port: int) -> dict[str, list[float]]:
    """Both clusters at once; ``n`` samples each, interleaved; latencies in ms."""
    import redis

    from qredis import Producer

    clusters: dict[str, subprocess.Popen[bytes]] = {}
    producers: dict[str, Producer] = {}
    clients: dict[str, redis.Redis] = {}
    try:
        for db, (name, tree) in enumerate(trees.items(), start=1):
            url = f"redis://127.0.0.1:{port}/{db}"
            paths = [str(tree / "packages" / p / "src") for p in PACKAGES] + [str(ROOT)]
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join(paths),
                "Q_SECRET_KEY": SECRET,
                "BENCH_REDIS_URL": url,
            }
            command = [
                sys.executable,
                *("-m", "qcluster.cli", "run", "--redis-url", url, "--queue", "c"),
                *("--result-namespace", "c", "--workers", "2", "--log-level", "warning"),
                *("--import", "tools.bench.peers.tasks.common"),
            ]
            clusters[name] = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            producers[name] = Producer(url, "c", namespace="c", secret=SECRET)
            clients[name] = redis.Redis.from_url(url)
            clients[name].flushdb()
        names = list(trees)
        for _ in range(20):  # warm-up: both clusters up, every code path loaded
            for name in names:
                producers[name].enqueue(TASK, time.time())
                time.sleep(0.02)
        _wait_for(clients, 20)  # every warm-up sample in, so none is counted below
        for client in clients.values():
            client.delete(KEY)
        for i in range(n):
            for name in names if i % 2 == 0 else reversed(names):
                producers[name].enqueue(TASK, time.time())
                time.sleep(0.01)
        _wait_for(clients, n)
        return {
            name: sorted(float(x) * 1000 for x in clients[name].lrange(KEY, 0, -1))
            for name in names
        }
    finally:
        for producer in producers.values():
            producer.close()
        for client in clients.values():
            client.close()
        for cluster in clusters.values():
            cluster.send_signal(signal.SIGTERM)
        for cluster in clusters.values():
            cluster.wait(60)


def _wait_for(clients: dict[str, Any], n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while any(c.llen(KEY) < n for c in clients.values()):
        if time.monotonic() > deadline:
            raise SystemExit(f"fewer than {n} samples within {timeout} s")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="a checkout (its packages/)")
    parser.add_argument("--n", type=int, default=300, help="samples per cluster and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    binary = redis_server_binary()
    if binary is None:
        raise SystemExit("redis-server not found on PATH")
    os.environ["Q_SECRET_KEY"] = SECRET
    server = RedisServer(binary, appendonly=False)
    server.start()
    ratios = []
    try:
        for round_ in range(args.rounds):
            # Which cluster starts first, and takes database 1, alternates too.
            pairs = [("before", args.before.resolve()), ("after", ROOT)]
            trees = dict(pairs if round_ % 2 == 0 else reversed(pairs))
            got = one_round(trees, args.n, server.port)
            for name in ("before", "after"):
                ms = got[name]
                print(
                    f"round {round_ + 1} {name:6}: p50 {statistics.median(ms):.3f} ms, "
                    f"p90 {ms[int(len(ms) * 0.9)]:.3f}, p99 {ms[int(len(ms) * 0.99)]:.3f}, "
                    f"min {ms[0]:.3f} ({len(ms)} samples)",
                    flush=True,
                )
            ratios.append(statistics.median(got["after"]) / statistics.median(got["before"]))
    finally:
        server.close()
    print(
        f"\nafter/before, C p50: median {statistics.median(ratios):.3f}x "
        f"({', '.join(f'{r:.3f}' for r in ratios)}); load average {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
