"""django-q2 1.11: ``manage.py qcluster`` with 2 workers, Redis broker, ORM results on SQLite
(``djq2-sqlite``) or PostgreSQL (``djq2-pg``)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from typing import Any

from tools.bench.peers.base import REPO, Context, Peer

SITE = REPO / "tools/bench/peers/tasks/djq2_site"
FUNCS = {
    "add": "tools.bench.peers.tasks.common.add",
    "stamp": "tools.bench.peers.tasks.common.stamp",
}


class DjangoQ2Sqlite(Peer):
    name = "djq2-sqlite"
    # About 400 tasks/s (and a fifth of that on a loaded machine): 1,000 tasks in a quick run.
    quick_share = 0.1
    label = "django-q2 1.11 (SQLite results)"
    venv = "django_q2"
    requirements = ("django-q2==1.11.1", "redis", "django==5.2.19", "psycopg[binary]")
    store = "sqlite"
    pair = "q-django-sqlite"
    poll_interval = 0.05
    settings = "tools.bench.peers.tasks.djq2_site.settings"

    def _env(self, ctx: Context, workers: int = 2) -> dict[str, str]:
        env = ctx.env()
        env["DJANGO_SETTINGS_MODULE"] = self.settings
        env["BENCH_WORKERS"] = str(workers)
        return env

    def prepare(self, ctx: Context) -> None:
        subprocess.run(
            [ctx.python, str(SITE / "manage.py"), "migrate", "-v", "0", "--no-input"],
            cwd=REPO,
            env=self._env(ctx),
            check=True,
        )

    def worker_commands(self, ctx: Context, workers: int) -> list[list[str]]:
        return [[ctx.python, str(SITE / "manage.py"), "qcluster"]]

    def worker_env(self, ctx: Context, workers: int) -> dict[str, str]:
        return self._env(ctx, workers)

    def result_watcher(self, ctx: Context) -> Any:
        from tools.bench.measure import SqlCountWatcher

        return SqlCountWatcher(ctx.db, "django_q_task")

    def client_open(self) -> None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", self.settings)
        import django

        django.setup()
        from django_q.tasks import async_task

        self.async_task = async_task

    def enqueue_one(self, func: str, args: tuple[Any, ...]) -> Any:
        return self.async_task(FUNCS[func], *args)

    def enqueue_series(self, func: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        async_task, path = self.async_task, FUNCS[func]
        return [async_task(path, *a) for a in args]


class DjangoQ2Postgres(DjangoQ2Sqlite):
    name = "djq2-pg"
    label = "django-q2 1.11 (PostgreSQL results)"
    store = "postgres"
    pair = "q-django-pg"
    # Enqueueing goes to Redis whatever the database: measured once, on djq2-sqlite.
    workloads = frozenset({"B", "C", "D", "E1k", "E8"})


PEERS = [DjangoQ2Sqlite, DjangoQ2Postgres]
