"""The cluster side of workload B (run, save, ack) of two checkouts of Q, side by side in one run.

    git archive main packages | tar -x -C /tmp/q-before      # the code to compare against
    uv run python tools/bench/worker_ab.py --before /tmp/q-before [--n 10000] [--rounds 5]
    uv run python tools/bench/worker_ab.py --before . --after-args "--metrics-port 9310"

B's rate moves by far more than 5% from run to run on a shared machine; the CPU time the
workers spend per task moves much less. Each round starts ``qcluster run`` (2 workers, the
bench's ``add`` task, warning level as in the bench) once on ``--before``'s packages and once on
this checkout's (``PYTHONPATH`` first; the order alternates), warms it up with a few hundred
tasks, then enqueues ``--n`` tasks in bulk and waits for every record. It prints, for each, the
median (and min-max) of the workers' CPU time per task (user + system, from ``/proc``), the
sentinel's, and the rate from the bulk enqueue to the last record; then after/before.
``--before-args`` / ``--after-args`` add options to each side's ``qcluster run`` (the cost of an
option, with ``--before .``: the same code both sides). ``--perf``: the sentinel's CPU from
``perf stat -e task-clock`` attached to it for the run (all its threads, to the microsecond)
instead of ``/proc``'s 10 ms ticks, which its 0.3-0.5 us a task fill only a few of (the cost
of the status published on change, say: ``--before`` a copy with it switched off).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.servers import RedisServer, redis_server_binary  # noqa: E402

PACKAGES = ("qcore", "qredis", "qcluster", "qdjango")
SECRET = "worker-ab-benchmark-secret-0123456789"
QUEUE = "bench"
TASK = "tools.bench.peers.tasks.common.add"
TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    """User + system seconds of a process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(entry.name))
    return out


def _wait_saved(client: object, ids: list[str], timeout: float = 300) -> None:
    from qcore import humanize
    from qredis import ResultKeys

    keys = ResultKeys.for_namespace(QUEUE)
    deadline = time.monotonic() + timeout
    start = 0
    while start < len(ids):
        pipe = client.pipeline(transaction=False)  # type: ignore[attr-defined]
        chunk = ids[start : start + 512]
        for task_id in chunk:
            # Either layout: records by the name derived from the id, or (earlier) by the id.
            pipe.exists(keys.records(humanize(task_id)), keys.record(task_id))
        done = pipe.execute()
        start += next((i for i, d in enumerate(done) if not d), len(chunk))
        if start < len(ids):
            if time.monotonic() > deadline:
                raise SystemExit(f"only {start} of {len(ids)} records within {timeout} s")
            time.sleep(0.01)


def _perf(pid: int) -> subprocess.Popen[str]:
    """``perf stat`` counting the CPU time of every thread of ``pid`` until interrupted."""
    return subprocess.Popen(
        ["perf", "stat", "-x", ",", "-e", "task-clock", "-p", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _perf_seconds(perf: subprocess.Popen[str]) -> float:
    perf.send_signal(signal.SIGINT)
    _, err = perf.communicate(timeout=30)
    for line in err.splitlines():  # "1234.56,msec,task-clock,..."
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("task-clock"):
            return float(fields[0]) / 1e3
    raise SystemExit(f"no task-clock in perf's output:\n{err}")


def measure(
    tree: Path, n: int, server: RedisServer, extra: list[str], perf: bool = False
) -> dict[str, float]:
    """One cluster on the code in ``tree``: CPU per task of its workers and sentinel, rate."""
    from qredis import Producer

    client = server.client()
    client.flushall()
    paths = [str(tree / "packages" / p / "src") for p in PACKAGES] + [str(ROOT)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "Q_SECRET_KEY": SECRET}
    command = [
        sys.executable,
        "-m",
        "qcluster.cli",
        "run",
        *("--redis-url", server.url, "--queue", QUEUE, "--result-namespace", QUEUE),
        *("--workers", "2", "--log-level", "warning", "--import", "tools.bench.peers.tasks.common"),
        *extra,
    ]
    cluster = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    producer = Producer(server.url, QUEUE, namespace=QUEUE, secret=SECRET)
    try:
        _wait_saved(client, producer.enqueue_many(TASK, [(i, i) for i in range(500)]))
        time.sleep(0.5)  # both workers up and idle
        workers = _children(cluster.pid)
        counting = _perf(cluster.pid) if perf else None
        time.sleep(0.2 if perf else 0.0)  # perf attached before the run
        before = [_cpu(p) for p in workers], _cpu(cluster.pid)
        begun = time.perf_counter()
        _wait_saved(client, producer.enqueue_many(TASK, [(i, i) for i in range(n)]))
        wall = time.perf_counter() - begun
        after = [_cpu(p) for p in workers], _cpu(cluster.pid)
        if counting is not None:
            after = after[0], before[1] + _perf_seconds(counting)
    finally:
        producer.close()
        cluster.send_signal(signal.SIGTERM)
        cluster.wait(60)
        client.close()
    worker_cpu = sum(after[0]) - sum(before[0])
    sentinel = after[1] - before[1]
    return {
        "workers": worker_cpu / n,
        "sentinel": sentinel / n,
        "sentinel_per_s": sentinel / wall,  # what runs by the clock (the beacon) costs by it
        "rate": n / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="a checkout (its packages/)")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before-args", default="", help="more `qcluster run` options, before")
    parser.add_argument("--after-args", default="", help="more `qcluster run` options, after")
    parser.add_argument("--perf", action="store_true", help="the sentinel's CPU by perf stat")
    args = parser.parse_args()
    binary = redis_server_binary()
    if binary is None:
        raise SystemExit("redis-server not found on PATH")
    server = RedisServer(binary, appendonly=False)
    server.start()
    trees = {"before": args.before.resolve(), "after": ROOT}
    extra = {"before": shlex.split(args.before_args), "after": shlex.split(args.after_args)}
    results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    try:
        for round_ in range(args.rounds):
            order = ["before", "after"] if round_ % 2 == 0 else ["after", "before"]
            for name in order:
                got = measure(trees[name], args.n, server, extra[name], args.perf)
                results[name].append(got)
                print(
                    f"round {round_ + 1} {name:6}: workers {got['workers'] * 1e6:6.1f} us/task, "
                    f"sentinel {got['sentinel'] * 1e6:5.2f} us/task, {got['rate']:8,.0f} tasks/s",
                    flush=True,
                )
    finally:
        server.close()
    print(f"\n{args.n:,} tasks, {args.rounds} rounds; load average {os.getloadavg()[0]:.2f}")
    medians: dict[str, dict[str, float]] = {}
    for name, runs in results.items():
        medians[name] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        span = {k: (min(r[k] for r in runs), max(r[k] for r in runs)) for k in runs[0]}
        print(
            f"{name:6}: workers {medians[name]['workers'] * 1e6:.1f} us/task "
            f"({span['workers'][0] * 1e6:.1f}-{span['workers'][1] * 1e6:.1f}), "
            f"sentinel {medians[name]['sentinel'] * 1e6:.2f} us/task "
            f"({span['sentinel'][0] * 1e6:.2f}-{span['sentinel'][1] * 1e6:.2f}), "
            f"{medians[name]['sentinel_per_s'] * 1e3:.2f} ms/s "
            f"({span['sentinel_per_s'][0] * 1e3:.2f}-{span['sentinel_per_s'][1] * 1e3:.2f}), "
            f"{medians[name]['rate']:,.0f} tasks/s "
            f"({span['rate'][0]:,.0f}-{span['rate'][1]:,.0f})"
        )
    b, a = medians["before"], medians["after"]
    print(
        f"after/before: workers' CPU per task {a['workers'] / b['workers']:.3f}x, sentinel's "
        f"{a['sentinel'] - b['sentinel']:+.2e} s/task, "
        f"rate {a['rate'] / b['rate']:.3f}x"
    )


if __name__ == "__main__":
    main()
