"""arq 0.28: one ``arq`` process per worker (asyncio), poll delay 10 ms, results in Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from tools.bench.peers.base import Context, Peer

APP = "tools.bench.peers.tasks.arq_app"


class Arq(Peer):
    name = "arq"
    label = "arq 0.28 (poll 10 ms)"
    venv = "arq"
    requirements = ("arq==0.28.0",)

    def worker_commands(self, ctx: Context, workers: int) -> list[list[str]]:
        cli = self.bin(ctx, "arq")
        command = [cli, f"{APP}.WorkerSettings", "--custom-log-dict", f"{APP}.LOG_CONFIG"]
        return [command for _ in range(workers)]

    def result_probe(self, handle: Any) -> tuple[Any, ...]:
        return ("EXISTS", f"arq:result:{handle}")

    def client_open(self) -> None:
        from arq import create_pool
        from tools.bench.peers.tasks import arq_app

        self.loop = asyncio.new_event_loop()
        self.pool = self.loop.run_until_complete(create_pool(arq_app.REDIS))

    def enqueue_one(self, func: str, args: tuple[Any, ...]) -> Any:
        job = self.loop.run_until_complete(self.pool.enqueue_job(func, *args))
        return job.job_id

    def enqueue_series(self, func: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        async def series() -> list[Any]:
            enqueue = self.pool.enqueue_job
            return [(await enqueue(func, *a)).job_id for a in args]

        return self.loop.run_until_complete(series())

    def client_close(self) -> None:
        self.loop.run_until_complete(self.pool.aclose())
        self.loop.close()


PEERS = [Arq]
