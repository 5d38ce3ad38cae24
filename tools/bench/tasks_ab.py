"""Issue 14's figures, side by side in one run on one private redis-server (no fsync):

    uv run python tools/bench/tasks_ab.py [--n 3000] [--rounds 3]

1. ``django.tasks`` beside ``async_task`` (qdjango, SQLite store): enqueue one by one, the two
   sides alternating in blocks of 250 calls within each round (rate, p50/p99 per call, client
   CPU per call, and the median over the pairs of blocks of the rate and CPU ratios), and end
   to end on a 2-worker cluster; target: within 10%.
2. asyncio producer (``qredis.aio``) with 100 concurrent enqueues on one connection beside the
   sync ``qredis.Producer`` one by one; target: at least 3x.
3. ``async def`` tasks on a 2-worker cluster (Redis store, ``async_concurrency=50``), each side
   on a cluster started and idle before the tasks are sent in bulk, timed to the last record:
   ``--n`` no-op ``async def`` tasks beside as many sync no-op tasks (target: within 20%), and
   1,000 tasks that each ``await asyncio.sleep(0.1)`` (target: under 3 s).

Each comparison alternates its sides round by round; the load average is printed beside each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(os.environ.get("Q_ROOT") or Path(__file__).resolve().parents[2])
sys.path.insert(0, str(ROOT))

from tests.support.servers import RedisServer, redis_server_binary  # noqa: E402

SECRET = "tasks-ab-benchmark-secret-0123456789abcdef"
TASKS = os.environ.get("BENCH_TASKS_MODULE", "tools.bench.aio_tasks")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed_calls(call: Callable[[int], Any], n: int) -> tuple[float, list[float]]:
    """Rate of ``n`` calls one by one, and each call's latency."""
    call(-1)  # warm-up, untimed
    each = []
    began = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        call(i)
        each.append(time.perf_counter() - t)
    return n / (time.perf_counter() - began), each


BLOCK = 250
"""Calls per block in part 1's enqueue: short enough that a change in the machine's load
hits both sides (the blocks go a b b a a b ...), long enough to read the CPU clock."""


class Blocks:
    """Part 1's enqueue measured in alternating blocks: per side the rate of each round, each
    call's latency and each block's client CPU per call (``time.process_time``: this process's
    user and system time, the round trip's system calls included); per pair of blocks (one of
    each side, next to each other) the ratio of the second side's rate and CPU to the first's."""

    def __init__(self, sides: Sequence[str]) -> None:
        self.rates: dict[str, list[float]] = {s: [] for s in sides}
        self.each: dict[str, list[float]] = {s: [] for s in sides}
        self.cpu: dict[str, list[float]] = {s: [] for s in sides}
        self.rate_ratios: list[float] = []
        self.cpu_ratios: list[float] = []


def alternating_blocks(
    client: Any, sides: dict[str, Callable[[int], Any]], n: int, rounds: int
) -> Blocks:
    """Each round (Redis flushed first) runs ``n`` calls of each side in blocks of ``BLOCK``,
    the two sides alternating a b b a a b ..., so a drift in load between blocks hits both."""
    names = list(sides)
    out = Blocks(names)
    for side in names:
        sides[side](-1)  # warm-up, untimed
    for _ in range(rounds):
        client.flushall()
        wall = dict.fromkeys(names, 0.0)
        for pair in range(max(1, n // BLOCK)):
            order = names if pair % 2 == 0 else names[::-1]
            block_wall: dict[str, float] = {}
            block_cpu: dict[str, float] = {}
            for side in order:
                call, each = sides[side], out.each[side]
                cpu = time.process_time()
                began = time.perf_counter()
                for i in range(pair * BLOCK, (pair + 1) * BLOCK):
                    t = time.perf_counter()
                    call(i)
                    each.append(time.perf_counter() - t)
                block_wall[side] = time.perf_counter() - began
                block_cpu[side] = (time.process_time() - cpu) / BLOCK
                wall[side] += block_wall[side]
                out.cpu[side].append(block_cpu[side])
            a, b = names
            out.rate_ratios.append(block_wall[a] / block_wall[b])
            out.cpu_ratios.append(block_cpu[b] / block_cpu[a])
        for side in names:
            out.rates[side].append(max(1, n // BLOCK) * BLOCK / wall[side])
    return out


def row(label: str, rates: list[float], each: list[float] | None = None) -> float:
    median = statistics.median(rates)
    extra = ""
    if each:
        extra = f"  p50 {pct(each, 0.5) * 1e6:7.1f} us  p99 {pct(each, 0.99) * 1e6:7.1f} us"
    print(f"  {label:44} {median:>10,.0f}/s ({min(rates):,.0f}-{max(rates):,.0f}){extra}")
    return median


def verdict(what: str, ok: bool) -> None:
    print(f"  -> {what}: {'PASS' if ok else 'FAIL'}  (load {load()})")


# -- 1. django.tasks beside async_task --------------------------------------------------------


def django_setup(redis_url: str, db: Path) -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY=SECRET,
        USE_TZ=True,
        INSTALLED_APPS=["qdjango"] + ([] if _has_django_tasks() else ["django_tasks"]),
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(db)}},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        Q_CLUSTER={
            "name": "bench",
            "workers": 2,
            "redis": redis_url,
            "save_limit": 0,
            "log_level": "warning",
        },
        TASKS={"default": {"BACKEND": "qdjango.backends.QBackend"}},
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _has_django_tasks() -> bool:
    try:
        import django.tasks  # noqa: F401
    except ImportError:
        return False
    return True


def django_tasks_vs_async_task(client: Any, n: int, rounds: int) -> None:
    import importlib

    from qdjango import async_task, fetch
    from qdjango.cluster import build_cluster, close_connections
    from qdjango.models import Task

    aio_tasks = importlib.import_module(TASKS)

    sides: dict[str, Callable[[int], Any]] = {
        "async_task": lambda i: async_task(f"{TASKS}.add", i, i),
        "django.tasks enqueue": lambda i: aio_tasks.djadd.enqueue(i, i),
    }
    print(
        f"1. django.tasks beside async_task: {n} one by one, {rounds} rounds, sides alternating "
        f"in blocks of {BLOCK} (load {load()})"
    )
    blocks = alternating_blocks(client, sides, n, rounds)
    a_side, b_side = sides
    a = row("async_task, enqueue", blocks.rates[a_side], blocks.each[a_side])
    b = row("django.tasks, enqueue", blocks.rates[b_side], blocks.each[b_side])
    print(f"  django.tasks / async_task (rates of whole rounds): {b / a:.3f}")
    for side, label in ((a_side, "async_task"), (b_side, "django.tasks")):
        cpu = blocks.cpu[side]
        print(
            f"  client CPU per call, {label:13} {statistics.median(cpu) * 1e6:7.1f} us "
            f"({min(cpu) * 1e6:.1f}-{max(cpu) * 1e6:.1f} over {len(cpu)} blocks)"
        )
    rate_ratio = statistics.median(blocks.rate_ratios)
    cpu_ratio = statistics.median(blocks.cpu_ratios)
    print(
        f"  per block pair, median: rate django.tasks / async_task {rate_ratio:.3f} "
        f"({min(blocks.rate_ratios):.3f}-{max(blocks.rate_ratios):.3f}); client CPU per call "
        f"django.tasks / async_task {cpu_ratio:.3f} "
        f"({min(blocks.cpu_ratios):.3f}-{max(blocks.cpu_ratios):.3f})"
    )
    verdict("enqueue within 10% (median of the block pairs' rate ratios)", rate_ratio >= 0.9)
    e2e: dict[str, list[float]] = {s: [] for s in sides}
    for round_ in range(rounds):
        for side in sides if round_ % 2 == 0 else reversed(list(sides)):
            client.flushall()
            Task.objects.all().delete()
            last = None
            for i in range(n):
                last = sides[side](i)
            last_id = last if isinstance(last, str) else last.id
            cluster = build_cluster()
            close_connections()
            began = time.perf_counter()
            cluster.start(wait=120)
            assert fetch(last_id, wait=600_000) is not None
            while Task.objects.count() < n:
                time.sleep(0.01)
            e2e[side].append(n / (time.perf_counter() - began))
            cluster.stop(timeout=30)
    a = row("async_task, end to end (2 workers, SQLite)", e2e["async_task"])
    b = row("django.tasks, end to end (2 workers, SQLite)", e2e["django.tasks enqueue"])
    print(f"  django.tasks / async_task: {b / a:.3f}")
    verdict("end to end within 10%", b >= 0.9 * a)


# -- 2. the asyncio producer ----------------------------------------------------------------------


def aio_producer(url: str, client: Any, n: int, rounds: int) -> None:
    from qredis import Producer
    from qredis.aio import Producer as AioProducer

    print(f"2. asyncio producer, 100 concurrent, beside sync one by one: {n} tasks (load {load()})")
    sync_rates, aio_rates = [], []

    async def concurrent() -> float:
        async with AioProducer(url, "aio", secret=SECRET) as q:
            await q.enqueue(f"{TASKS}.add", 0, 0)
            began = time.perf_counter()
            for start in range(0, n, 100):
                await asyncio.gather(
                    *(q.enqueue(f"{TASKS}.add", i, i) for i in range(start, min(n, start + 100)))
                )
            return n / (time.perf_counter() - began)

    for _ in range(rounds):
        client.flushall()
        with Producer(url, "sync", secret=SECRET) as p:
            rate, _ = timed_calls(lambda i: p.enqueue(f"{TASKS}.add", i, i), n)
        sync_rates.append(rate)
        client.flushall()
        aio_rates.append(asyncio.run(concurrent()))
    a = row("qredis.Producer, one by one", sync_rates)
    b = row("qredis.aio.Producer, 100 concurrent", aio_rates)
    print(f"  asyncio / sync: {b / a:.2f}x")
    verdict("at least 3x", b >= 3 * a)


# -- 3. async def tasks -----------------------------------------------------------------------


def _cluster_run(
    url: str, queue: str, func: str, args: list[tuple[Any, ...]], **config: Any
) -> tuple[float, float]:
    """Seconds from a bulk send to the last record, on a started, idle 2-worker cluster, and
    the CPU seconds its workers spent per task meanwhile (steadier than the rate under load)."""
    from tools.bench.worker_ab import _children, _cpu

    from qcluster import Cluster, ClusterConfig
    from qredis import Producer, RedisResultStore, RedisTransport

    settings = {"name": queue, "queue": queue, "workers": 2, "log_level": "error", **config}
    cluster = Cluster(
        ClusterConfig(**settings),
        transport=RedisTransport(queue, url=url),
        store=RedisResultStore(url, namespace=queue),
    )
    store = RedisResultStore(url, namespace=queue)
    cluster.start(wait=120)
    try:
        with Producer(url, queue, namespace=queue, secret=SECRET) as producer:
            warm = producer.enqueue_many(func, args[:4])  # both workers up and idle
            for task_id in warm:
                assert store.wait(task_id, 60) is not None, "the warm-up did not run"
            time.sleep(0.3)
            assert cluster.pid is not None
            workers = _children(cluster.pid)
            cpu = sum(_cpu(pid) for pid in workers)
            began = time.perf_counter()
            ids = producer.enqueue_many(func, args)
            for task_id in reversed(ids):
                assert store.wait(task_id, 600) is not None, f"{task_id} did not finish"
            took = time.perf_counter() - began
            cpu = sum(_cpu(pid) for pid in workers) - cpu
    finally:
        cluster.stop(timeout=30)
        store.close()
    return took, cpu / len(args)


def async_def_tasks(url: str, client: Any, n: int, rounds: int) -> None:
    concurrency = 50
    print(
        f"3. async def tasks, 2 workers, async_concurrency={concurrency}: {n} no-ops beside sync "
        f"no-ops, {rounds} rounds (load {load()})"
    )
    sides = {"sync": f"{TASKS}.add", "async def": f"{TASKS}.aadd"}
    rates: dict[str, list[float]] = {s: [] for s in sides}
    cpus: dict[str, list[float]] = {s: [] for s in sides}
    args = [(i, i) for i in range(n)]
    for round_ in range(rounds):
        for side in sides if round_ % 2 == 0 else reversed(list(sides)):
            client.flushall()
            took, cpu = _cluster_run(url, "a3", sides[side], args, async_concurrency=concurrency)
            rates[side].append(n / took)
            cpus[side].append(cpu)
    a = row("sync no-op, end to end", rates["sync"])
    b = row("async def no-op, end to end", rates["async def"])
    print(f"  async def / sync: {b / a:.3f}")
    for side, label in (("sync", "sync"), ("async def", "async def")):
        each = cpus[side]
        print(
            f"  workers' CPU per task, {label:10} {statistics.median(each) * 1e6:7.1f} us "
            f"({min(each) * 1e6:.1f}-{max(each) * 1e6:.1f})"
        )
    print(
        "  workers' CPU per task, async def / sync: "
        f"{statistics.median(cpus['async def']) / statistics.median(cpus['sync']):.3f}"
    )
    verdict("async def within 20% of sync (rate)", b >= 0.8 * a)
    naps = []
    for _ in range(rounds):
        client.flushall()
        took, _ = _cluster_run(
            url, "a3", f"{TASKS}.nap", [(0.1,)] * 1000, async_concurrency=concurrency
        )
        naps.append(took)
    median = statistics.median(naps)
    print(
        f"  1,000 x await asyncio.sleep(0.1)               {median:10.2f} s "
        f"({min(naps):.2f}-{max(naps):.2f})"
    )
    verdict("1,000 naps under 3 s", median < 3.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--only", default="1,2,3", help="parts to run: 1 django.tasks, 2 aio, 3 async def tasks"
    )
    opts = parser.parse_args()
    binary = redis_server_binary()
    if binary is None:
        print("redis-server must be on PATH", file=sys.stderr)
        return 2
    os.environ["Q_SECRET_KEY"] = SECRET
    parts = set(opts.only.split(","))
    server = RedisServer(binary, appendonly=False).start()
    try:
        client = server.client()
        with tempfile.TemporaryDirectory() as tmp:
            django_setup(server.url, Path(tmp) / "bench.sqlite3")
            if "1" in parts:
                django_tasks_vs_async_task(client, opts.n, opts.rounds)
            if "2" in parts:
                aio_producer(server.url, client, opts.n, opts.rounds)
            if "3" in parts:
                async_def_tasks(server.url, client, opts.n, opts.rounds)
        client.close()
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
