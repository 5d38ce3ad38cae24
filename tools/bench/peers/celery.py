"""celery 5.7: prefork pool (``celery worker -P prefork -c 2``), Redis broker + result backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tools.bench.peers.base import Context, Peer

APP = "tools.bench.peers.tasks.celery_app"


class Celery(Peer):
    name = "celery"
    label = "celery 5.7 (prefork, Redis backend)"
    venv = "celery"
    requirements = ("celery[redis]==5.7.0",)
    has_bulk = True

    def worker_commands(self, ctx: Context, workers: int) -> list[list[str]]:
        cli = self.bin(ctx, "celery")
        return [
            [cli, "-A", APP, "worker", "--pool", "prefork", "--concurrency", str(workers),
             "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
             "--without-heartbeat"]
        ]  # fmt: skip

    def result_probe(self, handle: Any) -> tuple[Any, ...]:
        return ("EXISTS", f"celery-task-meta-{handle}")

    def client_open(self) -> None:
        from tools.bench.peers.tasks import celery_app

        self.tasks = {"add": celery_app.add, "stamp": celery_app.stamp}

    def enqueue_one(self, func: str, args: tuple[Any, ...]) -> Any:
        return self.tasks[func].delay(*args).id

    def enqueue_series(self, func: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        task = self.tasks[func]
        return [task.delay(*a).id for a in args]

    def enqueue_bulk(self, func: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        from celery import group

        task = self.tasks[func]
        result = group(task.s(*a) for a in args).apply_async()
        return [r.id for r in result.results]


PEERS = [Celery]
