"""Enqueue throughput of qredis beside redis-benchmark's LPUSH, same server, same run.

    uv run python tools/bench/enqueue_redis.py          # 100,000 per bulk figure, 3 rounds
    uv run python tools/bench/enqueue_redis.py -n 20000 --one 5000 --rounds 1 --aof

Starts a private redis-server (``tests/support/servers.py``; never the one on 6379), runs
``redis-benchmark -t lpush -n N -P 1`` and ``-P 1000`` against it, then Q's enqueue one by one
(``Producer.enqueue``: build, sign, one round trip each) and in bulk
(``RedisTransport.enqueue_many`` with payloads signed beforehand by the caller, and
``Producer.enqueue_many`` signing as it goes), and prints operations per second and the
ratios. redis-benchmark runs 50 clients at once (its default) and one client (``-c 1``); Q runs
in this one thread. The figures are measured
in interleaved rounds and each keeps its best round (a shared machine disturbs some rounds).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.servers import RedisServer, redis_server_binary  # noqa: E402

from qcore import TaskMessage  # noqa: E402
from qredis import Producer, RedisTransport  # noqa: E402

SECRET = "enqueue-benchmark-secret-0123456789"


def redis_benchmark(port: int, n: int, pipeline: int, clients: int | None = None) -> float:
    """Requests per second of redis-benchmark's LPUSH test."""
    command = ["redis-benchmark", "-p", str(port), "-t", "lpush", "-n", str(n)]
    command += ["-P", str(pipeline), "-q"]
    if clients is not None:
        command += ["-c", str(clients)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    # -q still prints progress lines separated by \r; the last figure is the summary.
    found = re.findall(r"LPUSH: ([\d.]+) requests per second", out)
    if not found:
        raise RuntimeError(f"unexpected redis-benchmark output: {out[-500:]!r}")
    return float(found[-1])


def timed(fn: object, *args: object) -> float:
    start = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=100_000, help="requests per figure")
    parser.add_argument("--one", type=int, default=20_000, help="one-by-one enqueues per round")
    parser.add_argument("--aof", action="store_true", help="appendonly yes, fsync everysec")
    parser.add_argument("--chunk", type=int, default=1000, help="enqueue_many chunk size")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each figure keeps its best")
    opts = parser.parse_args()
    binary = redis_server_binary()
    if binary is None or shutil.which("redis-benchmark") is None:
        print("redis-server and redis-benchmark must be on PATH", file=sys.stderr)
        return 2
    n, one = opts.n, min(opts.one, opts.n)
    extra = ["--appendfsync", "everysec"] if opts.aof else []
    server = RedisServer(binary, appendonly=opts.aof, extra=extra).start()
    try:
        client = server.client()
        version = client.info("server")["redis_version"]
        producer = Producer(server.url, queue="bench", secret=SECRET)
        producer.enqueue("math.floor", 0.5)  # warm-up: connection, script load
        codec = producer.codec
        messages = [TaskMessage.new("math.floor", (i,)) for i in range(n)]
        items = [(m.id, codec.encode_message(m)) for m in messages]
        payload_size = sum(len(p) for _, p in items) / n
        transport = RedisTransport("bench", url=server.url, chunk_size=opts.chunk)
        transport.enqueue("warm", b"x")

        def q_one() -> float:
            return one / timed(lambda: [producer.enqueue("math.floor", i) for i in range(one)])

        def q_one_presigned() -> float:
            sample = items[:one]
            return len(sample) / timed(lambda: [transport.enqueue(i, p) for i, p in sample])

        def q_many() -> float:
            rate = n / timed(transport.enqueue_many, items)
            assert transport.queue_size() == n, "not every task was queued"
            return rate

        def q_many_signing() -> float:
            return n / timed(producer.enqueue_many, "math.floor", range(n))

        figures = [
            ("redis-benchmark LPUSH -P 1 (50 clients)", lambda: redis_benchmark(server.port, n, 1)),
            ("redis-benchmark LPUSH -P 1 -c 1", lambda: redis_benchmark(server.port, n, 1, 1)),
            ("redis-benchmark LPUSH -P 1000", lambda: redis_benchmark(server.port, n, 1000)),
            ("Q Producer.enqueue, one by one", q_one),
            ("Q RedisTransport.enqueue, one by one, pre-signed", q_one_presigned),
            ("Q RedisTransport.enqueue_many, pre-signed", q_many),
            ("Q Producer.enqueue_many, signing included", q_many_signing),
        ]
        # Rounds interleave the figures, and each keeps its best round: on a shared machine
        # the best of a few is the figure least disturbed by other work.
        best: dict[str, float] = {}
        for _ in range(opts.rounds):
            for name, measure in figures:
                client.flushall()
                best[name] = max(best.get(name, 0.0), measure())
        rows = [(name, best[name]) for name, _ in figures]
        transport.close()
        producer.close()
        client.close()
    finally:
        server.close()

    by_name = dict(rows)
    p1 = by_name["redis-benchmark LPUSH -P 1 (50 clients)"]
    p1c1 = by_name["redis-benchmark LPUSH -P 1 -c 1"]
    p1000 = by_name["redis-benchmark LPUSH -P 1000"]
    print(
        f"Redis {version} on 127.0.0.1, appendonly {'yes' if opts.aof else 'no'}; "
        f"n={n}, one-by-one={one}, chunk={opts.chunk}, mean Q payload {payload_size:.0f} B, "
        f"best of {opts.rounds} rounds"
    )
    print(f"{'':48} {'ops/s':>12} {'us/op':>8}")
    for name, rate in rows:
        print(f"{name:48} {rate:12,.0f} {1e6 / rate:8.1f}")
    ratios = [
        ("Producer.enqueue / LPUSH -P 1 (50 clients)", "Q Producer.enqueue, one by one", p1),
        ("Producer.enqueue / LPUSH -P 1 -c 1", "Q Producer.enqueue, one by one", p1c1),
        (
            "enqueue_many (pre-signed) / LPUSH -P 1000",
            "Q RedisTransport.enqueue_many, pre-signed",
            p1000,
        ),
        (
            "Producer.enqueue_many / LPUSH -P 1000",
            "Q Producer.enqueue_many, signing included",
            p1000,
        ),
    ]
    print("ratios")
    for label, name, reference in ratios:
        print(f"  {label:46} {by_name[name] / reference:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
