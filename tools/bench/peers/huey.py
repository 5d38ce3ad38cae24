"""huey 3.5 with process workers: ``huey_consumer ... -k process -w 2``; results in a Redis hash."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tools.bench.peers.base import Context, Peer

APP = "tools.bench.peers.tasks.huey_app"


class Huey(Peer):
    name = "huey"
    label = "huey 3.5 (process workers)"
    venv = "huey"
    requirements = ("huey==3.5.4", "redis")

    def worker_commands(self, ctx: Context, workers: int) -> list[list[str]]:
        consumer = self.bin(ctx, "huey_consumer")
        return [[consumer, f"{APP}.huey", "-k", "process", "-w", str(workers), "-q"]]

    def result_probe(self, handle: Any) -> tuple[Any, ...]:
        return ("HEXISTS", "huey.results.bench", handle)

    def client_open(self) -> None:
        from tools.bench.peers.tasks import huey_app

        self.tasks = {"add": huey_app.add, "stamp": huey_app.stamp}

    def enqueue_one(self, func: str, args: tuple[Any, ...]) -> Any:
        return self.tasks[func](*args).id

    def enqueue_series(self, func: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        task = self.tasks[func]
        return [task(*a).id for a in args]


PEERS = [Huey]
