"""The Django store's save path of two checkouts of Q, side by side in one run.

    git archive main packages | tar -x -C /tmp/q-before      # the code to compare against
    uv run python tools/bench/store_ab.py --before /tmp/q-before [--records 2000] [--rounds 7]

What a record costs a worker when it is saved: in alternating rounds, a child process with
``--before``'s packages first on ``PYTHONPATH``, then one with this checkout's, saves
``--records`` records (``add(i, i)`` successes, in batches of ``--batch`` as a worker does)
through ``DjangoResultStore.save_many`` into a fresh SQLite file (WAL, as the tests use it),
and times the column conversion alone (``_rows``: pickling, signing, dates) as well. Prints
the median (min-max) microseconds per record of each, and after/before.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("qcore", "qredis", "qcluster", "qdjango")
SECRET = "store-ab-benchmark-secret-0123456789"


def child(records: int, batch: int, db: str) -> None:
    """One measurement in this process: print ``{"rows": s/record, "save": s/record}``."""
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY=SECRET,
        USE_TZ=True,
        INSTALLED_APPS=["qdjango"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": db,
                "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL"},
            }
        },
        Q_CLUSTER={"name": "bench", "redis": "redis://127.0.0.1:1/0", "save_limit": 0},
    )
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from qcore import TaskMessage, TaskResult
    from qdjango import store

    try:  # where the column conversion lives moved (qdjango.upsert)
        from qdjango.upsert import _rows  # type: ignore[attr-defined]
    except ImportError:
        _rows = store._rows  # type: ignore[attr-defined]

    made = []
    for i in range(records):
        message = TaskMessage.new("tools.bench.peers.tasks.common.add", (i, i))
        made.append(TaskResult.from_message(message, result=2 * i, success=True))
    target = store.DjangoResultStore(using="default", save_limit=0)
    _rows(connection, made[:batch])  # warm-up: codecs, keys
    cpu = time.process_time()
    for start in range(0, records, batch):
        _rows(connection, made[start : start + batch])
    rows = (time.process_time() - cpu) / records
    wall = time.perf_counter()
    for start in range(0, records, batch):
        target.save_many(made[start : start + batch])
    save = (time.perf_counter() - wall) / records
    print(json.dumps({"rows": rows, "save": save}))


def run_child(tree: Path, records: int, batch: int) -> dict[str, float]:
    paths = [str(tree / "packages" / p / "src") for p in PACKAGES] + [str(ROOT)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, __file__, "--child", str(Path(folder) / "q.sqlite3")]
        command += ["--records", str(records), "--batch", str(batch)]
        out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, help="a checkout (or archive) of Q")
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        child(opts.records, opts.batch, opts.child)
        return 0
    if opts.before is None:
        parser.error("--before is required")
    sides = {"before": opts.before.resolve(), "after": ROOT}
    found: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    for round_ in range(opts.rounds):
        order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
        for side in order:
            found[side].append(run_child(sides[side], opts.records, opts.batch))
    print(f"Django store, SQLite: {opts.records} records in batches of {opts.batch}, ", end="")
    print(f"{opts.rounds} rounds, microseconds per record")
    print(f"{'':34} {'before':>22} {'after':>22} {'after/before':>13}")
    labels = {"rows": "_rows (CPU: columns, signatures)", "save": "save_many (wall, SQLite)"}
    for what, label in labels.items():
        cells, medians = [], []
        for side in sides:
            values = [r[what] * 1e6 for r in found[side]]
            medians.append(statistics.median(values))
            cells.append(f"{medians[-1]:>7.1f} ({min(values):.1f}-{max(values):.1f})")
        print(f"{label:34} {cells[0]:>22} {cells[1]:>22} {medians[1] / medians[0]:>12.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
