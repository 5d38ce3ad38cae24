"""Workload A (enqueue one by one) of two checkouts of Q, side by side in one run.

    git archive main packages | tar -x -C /tmp/q-before      # the code to compare against
    uv run python tools/bench/enqueue_ab.py --before /tmp/q-before [--n 5000] [--rounds 7]

A change to the enqueue path must not cost A more than 5% (issue 10). A's figures move by
more than that from run to run on a shared machine, so this measures both versions in the
same run, on one private redis-server, in alternating rounds: each round runs the bench's own
driver (``tools/bench/driver.py``, ``--action series``: the q-redis ``Producer.enqueue`` and
the q-django-sqlite ``async_task`` peers) once with ``--before``'s packages first on
``PYTHONPATH`` and once with this checkout's. It prints the median (and min-max) tasks/s of
each, and after/before.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.servers import RedisServer, redis_server_binary  # noqa: E402

PACKAGES = ("qcore", "qredis", "qcluster", "qdjango")
PEERS = ("q-redis", "q-django-sqlite")
SECRET = "enqueue-ab-benchmark-secret-0123456789"


def run_driver(tree: Path, peer: str, n: int, redis_url: str) -> float:
    """Tasks/s of one series of ``n`` enqueues by ``peer`` on the code in ``tree``."""
    paths = [str(tree / "packages" / p / "src") for p in PACKAGES] + [str(ROOT)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(paths),
        "BENCH_REDIS_URL": redis_url,
        "Q_SECRET_KEY": SECRET,
        "DJANGO_SETTINGS_MODULE": "tools.bench.peers.tasks.qdjango_site.settings",
    }
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, "-m", "tools.bench.driver", "--peer", peer]
        command += ["--action", "series", "--n", str(n + 1), "--out", out.name]
        subprocess.run(command, cwd=ROOT, env=env, check=True)
        found = json.loads(Path(out.name).read_text())
    return float(found["count"] / found["elapsed"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="a checkout (or archive) of Q")
    parser.add_argument("--n", type=int, default=5000, help="enqueues per series")
    parser.add_argument("--rounds", type=int, default=7)
    opts = parser.parse_args()
    binary = redis_server_binary()
    if binary is None:
        print("redis-server must be on PATH", file=sys.stderr)
        return 2
    sides = {"before": opts.before.resolve(), "after": ROOT}
    rates: dict[tuple[str, str], list[float]] = {(s, p): [] for s in sides for p in PEERS}
    server = RedisServer(binary).start()
    try:
        client = server.client()
        for round_ in range(opts.rounds):
            # Alternate which side goes first, so neither always runs on a warmer machine.
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for peer in PEERS:
                for side in order:
                    client.flushall()
                    rates[side, peer].append(run_driver(sides[side], peer, opts.n, server.url))
        client.close()
    finally:
        server.close()
    print(f"A, one by one: {opts.n} enqueues per series, {opts.rounds} rounds, tasks/s")
    print(f"{'':18} {'before':>24} {'after':>24} {'after/before':>13}")
    for peer in PEERS:
        cells = []
        for side in sides:
            values = rates[side, peer]
            cells.append(
                f"{statistics.median(values):>8,.0f} ({min(values):,.0f}-{max(values):,.0f})"
            )
        ratio = statistics.median(rates["after", peer]) / statistics.median(rates["before", peer])
        print(f"{peer:18} {cells[0]:>24} {cells[1]:>24} {ratio:>12.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
