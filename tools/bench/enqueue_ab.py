"""Workload A (enqueue one by one) of two checkouts of Q, side by side in one run.

    git archive main packages | tar -x -C /tmp/q-before      # the code to compare against
    uv run python tools/bench/enqueue_ab.py --before /tmp/q-before [--n 5000] [--rounds 7]

A change to the enqueue path must not cost A more than 5% (issue 10). A's figures move by
more than that from run to run on a shared machine, so this measures both versions in the
same run, on one private redis-server, in alternating rounds: each round runs A's client (the
q-redis ``Producer.enqueue`` and the q-django-sqlite ``async_task`` peers of the bench, one
untimed warm-up call, then ``--n`` calls) in a child process, once with ``--before``'s packages
first on ``PYTHONPATH`` and once with this checkout's. It prints, for each, the median (and
min-max) tasks/s, as A reports it, and the client's CPU time per call (user + system), which a
busy machine disturbs less than the rate; each also for the best tenth of every series (the
part least disturbed by other work); then after/before.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.servers import RedisServer, redis_server_binary  # noqa: E402

PACKAGES = ("qcore", "qredis", "qcluster", "qdjango")
PEERS = ("q-redis", "q-django-sqlite")
SECRET = "enqueue-ab-benchmark-secret-0123456789"


class _Nowhere:
    """A transport that keeps nothing: ``--no-redis`` times the client's own work alone."""

    queue = "nowhere"

    def enqueue(self, *args: object, **kwargs: object) -> None:
        pass

    def close(self) -> None:
        pass


def _without_redis(peer: object) -> None:
    nowhere = _Nowhere()
    if hasattr(peer, "producer"):
        peer.producer.transport = nowhere
    else:
        from qdjango import connection

        connection.transport = lambda: nowhere  # type: ignore[assignment]


def child(peer_name: str, n: int, slices: int = 10, redis: bool = True) -> None:
    """One series in this process, timed in ``slices`` parts: print the rate and CPU time per
    call of the whole series and of its best part (the part least disturbed by other work)."""
    from tools.bench.registry import load

    peer = load(peer_name)
    peer.client_open()
    if not redis:
        _without_redis(peer)
    peer.enqueue_one("add", (0, 0))
    size = max(1, n // slices)
    parts = []
    for start in range(0, n, size):
        args = [(i, i) for i in range(start, min(n, start + size))]
        wall, cpu = time.perf_counter(), time.process_time()
        peer.enqueue_series("add", args)
        parts.append((len(args), time.perf_counter() - wall, time.process_time() - cpu))
    peer.client_close()
    count, wall, cpu = (sum(p[i] for p in parts) for i in range(3))
    print(
        json.dumps(
            {
                "rate": count / wall,
                "cpu": cpu / count,
                "best rate": max(c / w for c, w, _ in parts),
                "best cpu": min(u / c for c, _, u in parts),
            }
        )
    )


def run_child(
    tree: Path, peer: str, n: int, redis_url: str, redis: bool = True
) -> dict[str, float]:
    """One series of ``n`` enqueues by ``peer`` on the code in ``tree``, in a child process."""
    paths = [str(tree / "packages" / p / "src") for p in PACKAGES] + [str(ROOT)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(paths),
        "BENCH_REDIS_URL": redis_url,
        "Q_SECRET_KEY": SECRET,
        "DJANGO_SETTINGS_MODULE": "tools.bench.peers.tasks.qdjango_site.settings",
    }
    command = [sys.executable, __file__, "--child", peer, "--n", str(n)]
    command += [] if redis else ["--no-redis"]
    out = subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, help="a checkout (or archive) of Q")
    parser.add_argument("--after", type=Path, default=ROOT, help="another (default: this one)")
    parser.add_argument("--n", type=int, default=5000, help="enqueues per series")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--no-redis", action="store_true", help="a transport that keeps nothing: client CPU only"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        child(opts.child, opts.n, redis=not opts.no_redis)
        return 0
    if opts.before is None:
        parser.error("--before is required")
    binary = redis_server_binary()
    if binary is None:
        print("redis-server must be on PATH", file=sys.stderr)
        return 2
    sides = {"before": opts.before.resolve(), "after": opts.after.resolve()}
    found: dict[tuple[str, str], list[dict[str, float]]] = {
        (s, p): [] for s in sides for p in PEERS
    }
    server = RedisServer(binary, appendonly=False).start()  # as the bench: no fsync per write
    try:
        client = server.client()
        for round_ in range(opts.rounds):
            # Alternate which side goes first, so neither always runs on a warmer machine.
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for peer in PEERS:
                for side in order:
                    client.flushall()
                    found[side, peer].append(
                        run_child(sides[side], peer, opts.n, server.url, not opts.no_redis)
                    )
        client.close()
    finally:
        server.close()
    where = "without Redis (a transport that keeps nothing)" if opts.no_redis else "on Redis"
    print(f"A, one by one, {where}: {opts.n} enqueues per series, {opts.rounds} rounds")
    print(f"{'':48} {'before':>24} {'after':>24} {'after/before':>13}")
    for peer in PEERS:
        figures = (
            ("rate", "tasks/s", 1.0),
            ("best rate", "tasks/s, best tenth", 1.0),
            ("cpu", "client CPU us/call", 1e6),
            ("best cpu", "client CPU us/call, best tenth", 1e6),
        )
        for what, label, scale in figures:
            cells, medians = [], []
            for side in sides:
                values = [r[what] * scale for r in found[side, peer]]
                medians.append(statistics.median(values))
                cells.append(f"{medians[-1]:>8,.1f} ({min(values):,.1f}-{max(values):,.1f})")
            name = f"{peer} {label}"
            print(f"{name:48} {cells[0]:>24} {cells[1]:>24} {medians[1] / medians[0]:>12.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
