"""What a worker spends per ``django.tasks`` task beside an ``async_task`` task: instructions.

    uv run --frozen python -m tools.bench.djtasks_cost [--n 2000] [--warm 200] [--rounds 1]

Each count is one process under ``valgrind --tool=cachegrind`` running a Django site's queued
tasks through the worker's own code: ``join()`` with the Django result store (SQLite), the
task codec from ``SECRET_KEY`` and the bus a Django cluster's workers have (its signals with a
receiver, ``task_finished`` for ``django.tasks``), on the in-memory transport. The tasks are
``tools.bench.aio_tasks.add`` sent with ``qdjango.async_task`` and ``aio_tasks.djadd`` sent
with ``Task.enqueue`` (Q's backend); they are built and signed beforehand, in another process,
so the count holds the worker's part only. The difference of two counts (``--warm`` and
``--warm + --n`` tasks) over ``--n`` is the cost per task, start-up and imports cancelled
out; the heap is frozen and a batch flushed once, as in a worker (see worker_cost.py). The
database is a copy of one migrated beforehand (SQLite's own work is counted, the kernel's not).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import pickle
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECRET = "djtasks-cost-benchmark-secret-0123456789abcdef"
SIDES = ("async_task", "django.tasks")


def _setup(db: Path) -> None:
    import django
    from django.conf import settings

    # Django 6 has django.tasks; on 5.2 the backport is an app of its own
    apps = ["qdjango"] if importlib.util.find_spec("django.tasks") else ["qdjango", "django_tasks"]
    settings.configure(
        SECRET_KEY=SECRET,
        USE_TZ=True,
        INSTALLED_APPS=apps,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(db)}},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        Q_CLUSTER={"name": "bench", "save_limit": 0, "log_level": "warning"},
        TASKS={"default": {"BACKEND": "qdjango.backends.QBackend"}},
    )
    django.setup()


def _prepare(work: Path, count: int) -> None:
    """The migrated database, and each side's ``count`` signed payloads (pickled)."""
    _setup(work / "template.sqlite3")
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from tools.bench import aio_tasks

    from qcore.testing import MemoryTransport
    from qdjango import async_task, connection

    for side in SIDES:
        transport = MemoryTransport()
        # Every transport the two producers ask for is this one (no Redis here).
        connection.queue_transport = lambda queue, t=transport: t  # type: ignore[assignment]
        connection.served_queue_transport = connection.queue_transport  # type: ignore[assignment]
        connection.transport = lambda t=transport: t  # type: ignore[assignment]
        for i in range(count):
            if side == "async_task":
                async_task("tools.bench.aio_tasks.add", i, i)
            else:
                aio_tasks.djadd.enqueue(i, i)
        ids = list(transport._s.payloads)
        if len(ids) != count:
            raise SystemExit(f"{side}: {len(ids)} payloads queued, not {count}")
        items = [(task_id, transport._s.payloads[task_id]) for task_id in ids]
        (work / f"{SIDES.index(side)}.pickle").write_bytes(pickle.dumps(items))


def _work(work: Path, side: str, count: int, db: Path) -> None:
    """Run ``count`` of ``side``'s tasks as a Django cluster's worker would, then return."""
    _setup(db)
    from qcluster import processing
    from qcluster.inprocess import join
    from qcore.testing import MemoryTransport
    from qdjango.conf import get_settings, task_codec
    from qdjango.models import Task
    from qdjango.signals import signal_bus
    from qdjango.store import DjangoResultStore

    items = pickle.loads((work / f"{SIDES.index(side)}.pickle").read_bytes())[:count]
    transport = MemoryTransport()
    transport.enqueue_many(items)
    store = DjangoResultStore.from_settings(notify=False)
    events = signal_bus(using=store.using, context=store.context, connected_only=True)
    processing.FLUSH_AFTER = 10.0  # one flush per batch, as at full speed (see worker_cost.py)
    gc.collect()
    gc.freeze()
    ran = join(transport, store, codec=task_codec(), events=events, config=get_settings().cluster)
    store.close()
    if ran != count or Task.objects.filter(success=True).count() != count:
        raise SystemExit(f"{side}: {ran} ran, not {count}")


def _count(work: Path, side: str, tasks: int, *, counted: bool = True) -> int:
    """Instructions of one worker process that runs ``tasks`` of ``side``'s tasks
    (``counted=False``: a run outside valgrind, which returns 0)."""
    db = work / "worker" / "db.sqlite3"  # a new directory: no WAL of the last run beside it
    shutil.rmtree(db.parent, ignore_errors=True)
    db.parent.mkdir()
    shutil.copyfile(work / "template.sqlite3", db)
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict and set layouts in every run
    command = [sys.executable, "-m", "tools.bench.djtasks_cost", "--work", str(work), side]
    command += [str(tasks), str(db)]
    if not counted:
        subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True)
        return 0
    done = subprocess.run(
        [
            *("valgrind", "--tool=cachegrind", "--cache-sim=no"),
            "--cachegrind-out-file=/dev/null",
            *command,
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
    if sys.argv[1:2] == ["--prepare"]:
        _prepare(Path(sys.argv[2]), int(sys.argv[3]))
        return
    if sys.argv[1:2] == ["--work"]:
        _work(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), Path(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="tasks counted")
    parser.add_argument("--warm", type=int, default=200, help="tasks of the shorter run")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    per_task: dict[str, list[float]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="djtasks-cost-") as tmp:
        work = Path(tmp)
        subprocess.run(
            [
                *(sys.executable, "-m", "tools.bench.djtasks_cost"),
                *("--prepare", tmp, str(args.warm + args.n)),
            ],
            cwd=ROOT,
            check=True,
        )
        for side in SIDES:  # each side once, uncounted: what it compiles is cached for all
            _count(work, side, args.warm, counted=False)
        for round_ in range(args.rounds):
            for side in SIDES if round_ % 2 == 0 else reversed(SIDES):
                counts = [_count(work, side, tasks) for tasks in (args.warm, args.warm + args.n)]
                per_task[side].append((counts[1] - counts[0]) / args.n)
                print(
                    f"round {round_ + 1} {side:12}: {per_task[side][-1] / 1e3:.1f}k instructions "
                    f"per task ({counts[0]:,} for {args.warm}, {counts[1]:,} for "
                    f"{args.warm + args.n})",
                    flush=True,
                )
    a, b = (statistics.median(per_task[side]) for side in SIDES)
    print(
        f"\nmedian: async_task {a / 1e3:.1f}k, django.tasks {b / 1e3:.1f}k instructions per "
        f"task: django.tasks/async_task {b / a:.3f}x (+{(b - a) / 1e3:.1f}k)"
    )


if __name__ == "__main__":
    main()
