"""The bare loop: LPUSH -> BRPOP -> call -> SET, no acks, no signing; 2 forked workers."""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Sequence
from typing import Any

from tools.bench.peers.base import Context, Peer

FUNCS = {
    "add": "tools.bench.peers.tasks.common.add",
    "stamp": "tools.bench.peers.tasks.common.stamp",
}
QUEUE = "bare:queue"
RESULT = "bare:result:"
CHUNK = 1000


class Bare(Peer):
    name = "bare"
    label = "bare loop (LPUSH/BRPOP/SET)"
    venv = "bare"
    requirements = ("redis==8.1.0",)
    has_bulk = True

    def worker_commands(self, ctx: Context, workers: int) -> list[list[str]]:
        module = "tools.bench.peers.tasks.bare_worker"
        return [[ctx.python, "-m", module, "--workers", str(workers)]]

    def result_probe(self, handle: Any) -> tuple[Any, ...]:
        return ("EXISTS", RESULT + handle)

    def client_open(self) -> None:
        import os

        import redis

        self.client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])

    def enqueue_one(self, func: str, args: tuple[Any, ...]) -> Any:
        task_id = uuid.uuid4().hex
        self.client.lpush(QUEUE, pickle.dumps((task_id, FUNCS[func], args)))
        return task_id

    def enqueue_bulk(self, func: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        path, ids = FUNCS[func], []
        for start in range(0, len(args), CHUNK):
            pipe = self.client.pipeline(transaction=False)
            for a in args[start : start + CHUNK]:
                task_id = uuid.uuid4().hex
                ids.append(task_id)
                pipe.lpush(QUEUE, pickle.dumps((task_id, path, a)))
            pipe.execute()
        return ids

    def client_close(self) -> None:
        self.client.close()


PEERS = [Bare]
