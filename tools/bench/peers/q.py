"""Q itself, from the workspace's ``.venv``, in three configurations:

- ``q-redis``: the qredis ``Producer`` (``enqueue``, ``enqueue_many``) and ``qcluster run``
  with the Redis result store;
- ``q-django-sqlite`` / ``q-django-pg``: qdjango's ``async_task`` and ``manage.py qcluster``
  with the Django result store on SQLite / PostgreSQL.

Signing is on (``Q_SECRET_KEY``), and so are at-least-once acks: nothing is switched off.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from typing import Any

from tools.bench.peers.base import REPO, Context, Peer

QUEUE = "bench"
NAMESPACE = "default"
SITE = REPO / "tools/bench/peers/tasks/qdjango_site"
TASKS = "tools.bench.peers.tasks.common"


def _import_check(peer: Peer, ctx: Context, code: str) -> str | None:
    """Q's parts are built in parallel: say which import fails instead of crashing a run."""
    env = peer.worker_env(ctx, 2)
    proc = subprocess.run(
        [ctx.python, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    if proc.returncode == 0:
        return None
    lines = proc.stderr.strip().splitlines()
    return lines[-1] if lines else f"{code!r} failed"


def _epoch(value: Any) -> float:
    """A ``stopped`` column as epoch seconds: SQLite holds naive UTC text (USE_TZ),
    PostgreSQL gives an aware datetime."""
    from datetime import UTC, datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


def _funcs() -> dict[str, Any]:
    from tools.bench.peers.tasks import common

    return {"add": common.add, "stamp": common.stamp}


class QRedis(Peer):
    name = "q-redis"
    label = "Q (qcluster run, Redis store)"
    is_q = True
    has_bulk = True
    notice_namespace = NAMESPACE
    workloads = Peer.workloads | {"R50"}

    def missing(self, ctx: Context) -> str | None:
        return _import_check(
            self,
            ctx,
            "from qredis import Producer, ResultKeys; import qcluster.cli, qcluster.cluster",
        )

    def worker_env(self, ctx: Context, workers: int) -> dict[str, str]:
        env = super().worker_env(ctx, workers)
        env["Q_REDIS_URL"] = ctx.redis_url
        return env

    def worker_commands(self, ctx: Context, workers: int) -> list[list[str]]:
        return [
            [self.bin(ctx, "qcluster"), "run", "--redis-url", ctx.redis_url, "--queue", QUEUE,
             "--name", "bench", "--workers", str(workers), "--import", TASKS,
             "--result-namespace", NAMESPACE, "--log-level", "warning"]
        ]  # fmt: skip

    def result_probe(self, handle: Any) -> tuple[Any, ...]:
        from qcore import humanize
        from qredis import ResultKeys

        keys = ResultKeys.for_namespace(NAMESPACE)
        # Either layout: records by the name derived from the id, or (earlier) by the id.
        return ("EXISTS", keys.records(humanize(handle)), keys.record(handle))

    def notice_channel(self, ctx: Context) -> str | None:
        from qredis import ResultKeys

        return ResultKeys.for_namespace(self.notice_namespace).channel

    def record_times(self, ctx: Context, handles: Sequence[Any]) -> dict[str, float]:
        """When each task ended (its record's ``stopped``), read back through the store."""
        from qcore import Codec, Signer
        from qredis import RedisResultStore

        codec = Codec(Signer.from_secret(ctx.secret))
        store = RedisResultStore(ctx.redis_url, namespace=NAMESPACE, codec=codec)
        try:
            found = (store.get(h) for h in handles)
            return {r.id: r.stopped for r in found if r is not None}
        finally:
            store.close()

    def client_open(self) -> None:
        from qredis import Producer

        self.funcs = _funcs()
        self.producer = Producer(os.environ["BENCH_REDIS_URL"], queue=QUEUE, namespace=NAMESPACE)

    def enqueue_one(self, func: str, args: tuple[Any, ...]) -> Any:
        return self.producer.enqueue(self.funcs[func], *args)

    def enqueue_series(self, func: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        enqueue, f = self.producer.enqueue, self.funcs[func]
        return [enqueue(f, *a) for a in args]

    def enqueue_bulk(self, func: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        return self.producer.enqueue_many(self.funcs[func], args)

    def client_close(self) -> None:
        self.producer.close()


class QDjangoSqlite(Peer):
    name = "q-django-sqlite"
    label = "Q (manage.py qcluster, SQLite store)"
    is_q = True
    store = "sqlite"
    pair = "q-django-sqlite"
    poll_interval = 0.05
    settings = "tools.bench.peers.tasks.qdjango_site.settings"
    notice_namespace = QUEUE  # qdjango announces on its queue's namespace

    def missing(self, ctx: Context) -> str | None:
        return _import_check(
            self,
            ctx,
            "import django; django.setup(); from qdjango import async_task; "
            "import qdjango.management.commands.qcluster",
        )

    def worker_env(self, ctx: Context, workers: int) -> dict[str, str]:
        env = super().worker_env(ctx, workers)
        env["DJANGO_SETTINGS_MODULE"] = self.settings
        return env

    def prepare(self, ctx: Context) -> None:
        subprocess.run(
            [ctx.python, str(SITE / "manage.py"), "migrate", "-v", "0", "--no-input"],
            cwd=REPO,
            env=self.worker_env(ctx, 2),
            check=True,
        )

    def worker_commands(self, ctx: Context, workers: int) -> list[list[str]]:
        return [[ctx.python, str(SITE / "manage.py"), "qcluster"]]

    def result_watcher(self, ctx: Context) -> Any:
        from tools.bench.measure import SqlCountWatcher

        return SqlCountWatcher(ctx.db, "qdjango_task")

    notice_channel = QRedis.notice_channel

    def record_times(self, ctx: Context, handles: Sequence[Any]) -> dict[str, float]:
        from tools.bench.measure import sql_rows

        rows = sql_rows(ctx.db, "SELECT id, stopped FROM qdjango_task")
        return {str(task_id): _epoch(stopped) for task_id, stopped in rows}

    def client_open(self) -> None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", self.settings)
        import django

        django.setup()
        from qdjango import async_task

        self.funcs = _funcs()
        self.async_task = async_task

    def enqueue_one(self, func: str, args: tuple[Any, ...]) -> Any:
        return self.async_task(self.funcs[func], *args)

    def enqueue_series(self, func: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        async_task, f = self.async_task, self.funcs[func]
        return [async_task(f, *a) for a in args]


class QDjangoPostgres(QDjangoSqlite):
    name = "q-django-pg"
    label = "Q (manage.py qcluster, PostgreSQL store)"
    store = "postgres"
    pair = "q-django-pg"
    # async_task writes to Redis whatever the database: measured once, on q-django-sqlite.
    workloads = frozenset({"B", "C", "D", "E1k", "E8"})


PEERS = [QRedis, QDjangoSqlite, QDjangoPostgres]
