"""The asyncio producer's unique tasks beside its plain enqueues and the sync producer's unique
tasks, on one private redis-server (no fsync):

    uv run python tools/bench/aio_unique.py [--n 3000] [--rounds 5]

Each round, side by side: ``qredis.aio.Producer`` with 100 ``gather``-ed plain enqueues at a
time, the same with ``q_options={"unique": True}`` (each task its own lock: distinct
arguments), and ``qredis.Producer`` with unique tasks one by one. Printed per side: the rate
and the client's CPU per task (``process_time``, steadier than the rate under load), medians
and min-max over the rounds, and the connections the asyncio producer's pool opened.
To time another tree's code, put its ``packages/*/src`` first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(os.environ.get("Q_ROOT") or Path(__file__).resolve().parents[2])
sys.path.insert(0, str(ROOT))

from tests.support.servers import RedisServer, redis_server_binary  # noqa: E402

SECRET = "aio-unique-benchmark-secret-0123456789abcdef"
UNIQUE = {"unique": True}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def aio_side(url: str, n: int, unique: bool, offset: int) -> tuple[float, float, int]:
    from qredis.aio import Producer

    async def main() -> tuple[float, float, int]:
        async with Producer(url, "aio", secret=SECRET, key_check_every=0) as q:
            await q.enqueue("math.floor", -1.5, q_options=UNIQUE if unique else None)  # warm
            options = UNIQUE if unique else None
            wall, cpu = time.perf_counter(), time.process_time()
            for start in range(0, n, 100):
                calls = range(offset + start, offset + min(n, start + 100))
                await asyncio.gather(
                    *(q.enqueue("math.floor", i, q_options=options) for i in calls)
                )
            took, used = time.perf_counter() - wall, time.process_time() - cpu
            pool = q.client.connection_pool
            made = len(pool._available_connections) + len(pool._in_use_connections)
            return n / took, used / n, made

    return asyncio.run(main())


def sync_side(url: str, n: int, offset: int) -> tuple[float, float, int]:
    from qredis import Producer

    with Producer(url, "sync", secret=SECRET, key_check_every=0) as p:
        p.enqueue("math.floor", -1.5, q_options=UNIQUE)  # warm
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(offset, offset + n):
            p.enqueue("math.floor", i, q_options=UNIQUE)
        took, used = time.perf_counter() - wall, time.process_time() - cpu
    return n / took, used / n, 1


def row(label: str, found: list[tuple[float, float, int]]) -> None:
    rates = [r for r, _, _ in found]
    cpus = [c * 1e6 for _, c, _ in found]
    print(
        f"  {label:42} {statistics.median(rates):>9,.0f}/s ({min(rates):,.0f}-{max(rates):,.0f})"
        f"  CPU {statistics.median(cpus):6.1f} us/task ({min(cpus):.1f}-{max(cpus):.1f})"
        f"  connections {max(m for _, _, m in found)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    server = RedisServer(redis_server_binary())
    server.start()
    try:
        import redis

        client = redis.Redis.from_url(server.url)
        sides: dict[str, list[tuple[float, float, int]]] = {"plain": [], "unique": [], "sync": []}
        print(f"{args.n} tasks a side, {args.rounds} rounds (load {load()}, root {ROOT})")
        for r in range(args.rounds):
            client.flushall()
            sides["plain"].append(aio_side(server.url, args.n, False, r * args.n))
            client.flushall()
            sides["unique"].append(aio_side(server.url, args.n, True, r * args.n))
            client.flushall()
            sides["sync"].append(sync_side(server.url, args.n, r * args.n))
        row("qredis.aio.Producer, 100 concurrent", sides["plain"])
        row("qredis.aio.Producer, 100 concurrent unique", sides["unique"])
        row("qredis.Producer, unique one by one", sides["sync"])
        print(f"  (load {load()})")
        client.close()
    finally:
        server.close()


if __name__ == "__main__":
    main()
