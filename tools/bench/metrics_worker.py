"""Instructions a real worker's loop spends per task with metrics off and on (issue 16's 3%).

    uv run python tools/bench/metrics_worker.py [--n 2000] [--warm 200] [--rounds 2]
        [--prefetch 32] [--cache-sim] [--tree DIR] [--modes off,noop,on]

``metrics_cost.py`` runs the worker's ``Processor`` over the in-memory transport and store,
whose work per task (about 200k instructions, ``enqueue_many`` included) is far more than a
real worker's on Redis: the same cost of the metrics is a smaller share of it. This runs what a
worker process of ``qcluster run --workers 1`` runs, in one process under ``valgrind
--tool=cachegrind``: ``RedisTransport.fetch`` of ``--prefetch`` tasks and ``Processor.run``
(records saved in the Redis store, acks), with the worker's :class:`~qcluster.slot.Slot` in
shared memory as its tracker, the cluster's event bus (``cluster_events``: the task log), and
for ``on`` the cluster's :class:`~qcluster.metrics.MetricsRecorder` subscribed to it and counting
into a :class:`~qcluster.metrics.MetricsCell` (shared memory), as ``worker_main`` attaches it.
The heap is frozen (a forked worker's is) and a fetched batch is flushed once (a worker at
full speed does; under valgrind, 50 times slower, the 5 ms flush timer would fire at its whim).

For each round and mode a process queues ``--warm`` and then ``--warm + --n`` of the bench's
``add`` tasks (not counted), then a process under cachegrind runs them; the difference of the
two counts over ``--n`` is the cost per task, start-up and imports cancelled out. Redis's own
work is another process, not counted. ``--cache-sim`` adds cachegrind's cache simulation: the
first-level data misses (reads and writes) and last-level misses per task. ``--prefetch`` sets
the batch (8 shows a per-batch cost spread over fewer tasks). ``--tree``: the checkout whose
``packages/`` run (default this one). ``--cpu``: the same loop run without valgrind, the CPU
time (user + system) of the loop per task instead, ``--n`` tasks per run. ``--modes``:
``off``, ``on``, and ``noop`` (a subscriber of ``TasksSettled`` that does nothing: the cost of
building and telling the event alone).
The counts of separate runs of the same code differ by up to about 1.5k instructions per task
(cause not established): compare medians of several rounds.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("qcore", "qredis", "qcluster", "qdjango")
SECRET = "metrics-worker-benchmark-secret-0123456789"
QUEUE = "bench"
TASK = "tools.bench.peers.tasks.common.add"
FIELDS = ("I", "D1mr", "D1mw", "DLmr", "DLmw")
"""cachegrind's totals read: instructions, first-level data misses, last-level data misses."""


def _enqueue(url: str, count: int) -> None:
    from qredis import Producer

    producer = Producer(url, QUEUE, namespace=QUEUE, secret=SECRET)
    try:
        producer.enqueue_many(TASK, [(i, i) for i in range(count)])
    finally:
        producer.close()


def _work(url: str, mode: str, prefetch: int) -> None:
    """Run what the queue holds as a worker of ``qcluster run`` does (metrics ``mode``)."""
    import multiprocessing

    from qcluster import ClusterConfig, processing
    from qcluster.cluster import codec_from_env
    from qcluster.metrics import MetricsCell, MetricsRecorder, counter
    from qcluster.processing import Processor
    from qcluster.slot import Slot
    from qcluster.tasklog import cluster_events
    from qredis import RedisResultStore, RedisTransport

    processing.FLUSH_AFTER = 10.0
    ctx = multiprocessing.get_context("fork")
    config = ClusterConfig(
        queue=QUEUE,
        log_level="WARNING",
        prefetch=prefetch,
        metrics_port=0 if mode == "on" else None,
    )
    events = cluster_events(config)
    if mode == "noop":  # the event built and told, nobody counting: what the emission costs
        from qcore.events import TasksSettled

        events.subscribe(TasksSettled, lambda event: None)
    if mode == "on":  # as Cluster._spec subscribes it and worker_main attaches its cell
        recorder = MetricsRecorder(QUEUE)
        recorder.subscribe(events)
        recorder.attach(MetricsCell(ctx))
    slot = Slot(ctx)
    slot.reset(os.getpid())
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
        events=events,
        tracker=slot,
    )
    gc.collect()
    gc.freeze()
    begun = time.process_time()
    while deliveries := transport.fetch("bench.worker", prefetch, 0.0):
        processor.run(deliveries)
    print(f"cpu {time.process_time() - begun!r} tasks {processor.processed}")
    if mode == "on":  # every run counted: the figures are the real thing's
        rows = recorder.snapshot()["rows"]
        assert sum(counter(row, "succeeded") for row in rows.values()) == processor.processed
    transport.close()
    store.close()


def _count(tree: Path, url: str, tasks: int, mode: str, args: argparse.Namespace) -> list[int]:
    """cachegrind's :data:`FIELDS` for one worker process that runs ``tasks`` queued tasks."""
    paths = [str(tree / "packages" / p / "src") for p in PACKAGES] + [str(ROOT)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(paths),
        "Q_SECRET_KEY": SECRET,
        "PYTHONHASHSEED": "0",  # the same dict and set layouts in every run
    }
    me = [sys.executable, str(Path(__file__).resolve())]
    subprocess.run([*me, "--enqueue", url, str(tasks)], env=env, cwd=ROOT, check=True)
    sim = "--cache-sim=yes" if args.cache_sim else "--cache-sim=no"
    done = subprocess.run(
        [
            *("valgrind", "--tool=cachegrind", sim, "--cachegrind-out-file=/dev/null"),
            *(*me, "--work", url, mode, str(args.prefetch)),
        ],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    found = [int(_total(r"I\s+refs:\s+([\d,]+)", done.stderr)[0])]
    if args.cache_sim:  # "D1  misses:  1,234  ( 1,000 rd + 234 wr )", the same for "LLd"
        for level in ("D1", "LLd"):
            found += _total(
                rf"{level}\s+misses:\s+[\d,]+\s+\(\s*([\d,]+) rd\s+\+\s+([\d,]+) wr", done.stderr
            )
    return found


def _cpu(tree: Path, url: str, tasks: int, mode: str, prefetch: int) -> float:
    """CPU seconds per task of the same loop run natively (no valgrind): user + system."""
    paths = [str(tree / "packages" / p / "src") for p in PACKAGES] + [str(ROOT)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "Q_SECRET_KEY": SECRET}
    me = [sys.executable, str(Path(__file__).resolve())]
    subprocess.run([*me, "--enqueue", url, str(tasks)], env=env, cwd=ROOT, check=True)
    done = subprocess.run(
        [*me, "--work", url, mode, str(prefetch)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    found = re.search(r"cpu ([\d.e-]+) tasks (\d+)", done.stdout)
    if found is None:
        raise SystemExit(f"no CPU time in the worker's output:\n{done.stdout}{done.stderr}")
    return float(found.group(1)) / int(found.group(2))


def _total(pattern: str, output: str) -> list[int]:
    found = re.search(pattern, output)
    if found is None:
        raise SystemExit(f"no {pattern!r} in valgrind's output:\n{output}")
    return [int(group.replace(",", "")) for group in found.groups()]


def main() -> None:
    if sys.argv[1:2] == ["--enqueue"]:
        _enqueue(sys.argv[2], int(sys.argv[3]))
        return
    if sys.argv[1:2] == ["--work"]:
        _work(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=ROOT, help="a checkout (its packages/)")
    parser.add_argument("--n", type=int, default=2000, help="tasks counted")
    parser.add_argument("--warm", type=int, default=200, help="tasks of the shorter run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--prefetch", type=int, default=32, help="tasks per fetch and flush")
    parser.add_argument("--cache-sim", action="store_true", help="count cache misses too")
    parser.add_argument("--modes", default="off,on", help="of off, noop, on")
    parser.add_argument(
        "--cpu", action="store_true", help="CPU per task of the loop run natively instead"
    )
    args = parser.parse_args()
    modes = args.modes.split(",")
    sys.path.insert(0, str(ROOT))
    from tests.support.servers import RedisServer, redis_server_binary

    binary = redis_server_binary()
    if binary is None:
        raise SystemExit("redis-server not found on PATH")
    server = RedisServer(binary, appendonly=False)
    server.start()
    shown = FIELDS if args.cache_sim else FIELDS[:1]
    per_task: dict[str, list[list[float]]] = {mode: [] for mode in modes}
    try:
        client = server.client()
        for round_ in range(args.rounds):
            for mode in modes if round_ % 2 == 0 else modes[::-1]:
                if args.cpu:
                    client.flushall()
                    cpu = _cpu(args.tree.resolve(), server.url, args.n, mode, args.prefetch)
                    per_task[mode].append([cpu * 1e9])  # nanoseconds, in the I column
                    print(f"round {round_ + 1} {mode:4}: {cpu * 1e6:.2f} us of CPU per task")
                    continue
                counts = []
                for tasks in (args.warm, args.warm + args.n):
                    client.flushall()
                    counts.append(_count(args.tree.resolve(), server.url, tasks, mode, args))
                per_task[mode].append([(b - a) / args.n for a, b in zip(*counts)])
                figures = ", ".join(f"{f} {v:,.1f}" for f, v in zip(shown, per_task[mode][-1]))
                print(f"round {round_ + 1} {mode:3}: per task {figures}", flush=True)
        client.close()
    finally:
        server.close()
    print(
        f"\n{args.n:,} tasks counted, prefetch {args.prefetch}, {args.rounds} rounds, load "
        f"{os.getloadavg()[0]:.1f}; medians{' (ns of CPU)' if args.cpu else ''}:"
    )
    medians = {
        m: [statistics.median(r[i] for r in runs) for i in range(len(shown))]
        for m, runs in per_task.items()
    }
    for i, field in enumerate(shown):
        figures = ", ".join(f"{mode} {medians[mode][i]:,.1f}" for mode in modes)
        off = medians.get("off", [0.0] * len(shown))[i]
        vs = [f"{m} / off {medians[m][i] / off:.4f}x" for m in modes if m != "off" and off]
        print(f"{field:5} per task: {figures}; " + ", ".join(vs))


if __name__ == "__main__":
    main()
