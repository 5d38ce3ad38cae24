"""rq 3.0: one ``rq worker`` process per worker, SimpleWorker (in-process) and the forking
Worker (one fork per job); results in Redis (``rq:results:<id>``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tools.bench.peers.base import Context, Peer

FUNCS = {
    "add": "tools.bench.peers.tasks.common.add",
    "stamp": "tools.bench.peers.tasks.common.stamp",
}


class RqSimple(Peer):
    name = "rq-simple"
    label = "rq 3.0 (SimpleWorker)"
    venv = "rq"
    requirements = ("rq==3.0.0",)
    has_bulk = True
    worker_class = "rq.worker.SimpleWorker"

    def worker_commands(self, ctx: Context, workers: int) -> list[list[str]]:
        cli = self.bin(ctx, "rq")
        return [
            [cli, "worker", "--url", ctx.redis_url, "--worker-class", self.worker_class,
             "--name", f"bench-{index}", "--quiet", "bench"]
            for index in range(workers)
        ]  # fmt: skip

    def result_probe(self, handle: Any) -> tuple[Any, ...]:
        return ("EXISTS", f"rq:results:{handle}")

    def client_open(self) -> None:
        import os

        from redis import Redis
        from rq import Queue

        self.queue = Queue("bench", connection=Redis.from_url(os.environ["BENCH_REDIS_URL"]))

    def enqueue_one(self, func: str, args: tuple[Any, ...]) -> Any:
        return self.queue.enqueue(FUNCS[func], *args).id

    def enqueue_series(self, func: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        enqueue, path = self.queue.enqueue, FUNCS[func]
        return [enqueue(path, *a).id for a in args]

    def enqueue_bulk(self, func: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        from rq import Queue

        path = FUNCS[func]
        jobs = self.queue.enqueue_many([Queue.prepare_data(path, args=a) for a in args])
        return [job.id for job in jobs]


class RqFork(RqSimple):
    name = "rq-fork"
    label = "rq 3.0 (forking Worker)"
    worker_class = "rq.worker.Worker"
    # One fork per task makes it ~50x slower than the others here: B and E run on a fifth of
    # the tasks so that a full run stays within the hour.
    task_share = 0.2
    # Enqueueing is the same code as rq-simple: measured once, there.
    workloads = frozenset({"B", "C", "D", "E1k", "E8"})


PEERS = [RqSimple, RqFork]
