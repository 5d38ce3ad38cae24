"""Instructions a worker spends per plain task (decode, run, save, ack), two checkouts side by side.

    git archive 825923d^ | tar -x -C /tmp/q-before          # the code to compare against
    uv run python tools/bench/worker_cost.py --before /tmp/q-before [--n 2000] [--rounds 2]

The steadiest measure on a shared machine: a worker's own code run in one process under
``valgrind --tool=cachegrind``, which counts the instructions it executes whatever else the
machine does. For each checkout (its ``packages/`` first on ``PYTHONPATH``) and each round, a
process of that checkout queues ``--warm`` and then ``--warm + --n`` of the bench's ``add``
tasks with its own ``Producer.enqueue_many`` (not counted), then a process under cachegrind runs
them as a worker does: ``RedisTransport.fetch`` of up to ``prefetch`` tasks and
``Processor.run`` (records saved in the Redis store, acks), until the queue is empty. The
difference of the two counts over ``--n`` is the worker's cost per task, start-up and imports
cancelled out. Redis's own work is not counted (another process).
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("qcore", "qredis", "qcluster", "qdjango")
SECRET = "worker-cost-benchmark-secret-0123456789"
QUEUE = "bench"
TASK = "tools.bench.peers.tasks.common.add"


def _enqueue(url: str, count: int) -> None:
    from qredis import Producer

    producer = Producer(url, QUEUE, namespace=QUEUE, secret=SECRET)
    try:
        producer.enqueue_many(TASK, [(i, i) for i in range(count)])
    finally:
        producer.close()


def _work(url: str) -> None:
    """Run what the queue holds as one worker would, then return."""
    from qcluster import ClusterConfig, processing
    from qcluster.cluster import codec_from_env
    from qcluster.processing import Processor

    # A worker at full speed saves and acks once per fetched batch (32 no-op tasks take less
    # than FLUSH_AFTER); under valgrind, 50 times slower, it would flush after every task or
    # two, at the timer's whim. One flush per batch, as outside valgrind, and the same in
    # every run.
    processing.FLUSH_AFTER = 10.0
    # A worker is forked from a sentinel that froze its heap (qcluster.forking): the collector
    # never walks what was imported.
    gc.collect()
    gc.freeze()
    from qcluster.tasklog import cluster_events
    from qredis import RedisResultStore, RedisTransport

    config = ClusterConfig(queue=QUEUE, log_level="WARNING")
    codec = codec_from_env()
    transport = RedisTransport(QUEUE, url=url)
    store = RedisResultStore(url, namespace=QUEUE, codec=codec)
    processor = Processor(
        transport=transport,
        store=store,
        codec=codec,
        config=config,
        cluster_id="bench",
        consumer="bench.worker",
        events=cluster_events(config),
    )
    while deliveries := transport.fetch("bench.worker", config.prefetch, 0.0):
        processor.run(deliveries)
    transport.close()
    store.close()


def _count(tree: Path, url: str, tasks: int) -> int:
    """Instructions of one worker process that runs ``tasks`` queued tasks."""
    paths = [str(tree / "packages" / p / "src") for p in PACKAGES] + [str(ROOT)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(paths),
        "Q_SECRET_KEY": SECRET,
        "PYTHONHASHSEED": "0",  # the same dict and set layouts in every run
    }
    me = [sys.executable, str(Path(__file__).resolve())]
    subprocess.run([*me, "--enqueue", url, str(tasks)], env=env, cwd=ROOT, check=True)
    done = subprocess.run(
        [
            *("valgrind", "--tool=cachegrind", "--cache-sim=no"),
            "--cachegrind-out-file=/dev/null",
            *me,
            *("--work", url),
        ],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{done.stderr}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    if sys.argv[1:2] == ["--enqueue"]:
        _enqueue(sys.argv[2], int(sys.argv[3]))
        return
    if sys.argv[1:2] == ["--work"]:
        _work(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="a checkout (its packages/)")
    parser.add_argument("--after", type=Path, default=ROOT, help="a checkout (default: this)")
    parser.add_argument("--n", type=int, default=2000, help="tasks counted")
    parser.add_argument("--warm", type=int, default=200, help="tasks of the shorter run")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.support.servers import RedisServer, redis_server_binary

    binary = redis_server_binary()
    if binary is None:
        raise SystemExit("redis-server not found on PATH")
    server = RedisServer(binary, appendonly=False)
    server.start()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    per_task: dict[str, list[float]] = {"before": [], "after": []}
    try:
        client = server.client()
        for round_ in range(args.rounds):
            order = ["before", "after"] if round_ % 2 == 0 else ["after", "before"]
            for name in order:
                counts = []
                for tasks in (args.warm, args.warm + args.n):
                    client.flushall()
                    counts.append(_count(trees[name], server.url, tasks))
                per_task[name].append((counts[1] - counts[0]) / args.n)
                print(
                    f"round {round_ + 1} {name:6}: {per_task[name][-1] / 1e3:.1f}k instructions "
                    f"per task ({counts[0]:,} for {args.warm}, {counts[1]:,} for "
                    f"{args.warm + args.n})",
                    flush=True,
                )
        client.close()
    finally:
        server.close()
    before, after = (statistics.median(per_task[k]) for k in ("before", "after"))
    print(
        f"\nmedian: before {before / 1e3:.1f}k, after {after / 1e3:.1f}k instructions per task: "
        f"after/before {after / before:.3f}x"
    )


if __name__ == "__main__":
    main()
