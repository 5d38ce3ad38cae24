"""dramatiq 2.2: ``dramatiq ... --processes 2 --threads 8``, Redis broker, Redis results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tools.bench.peers.base import Context, Peer

APP = "tools.bench.peers.tasks.dramatiq_app"


class Dramatiq(Peer):
    name = "dramatiq"
    label = "dramatiq 2.2 (procs x 8 threads)"
    venv = "dramatiq"
    requirements = ("dramatiq[redis]==2.2.1",)
    has_bulk = True

    def worker_commands(self, ctx: Context, workers: int) -> list[list[str]]:
        cli = self.bin(ctx, "dramatiq")
        return [[cli, APP, "--processes", str(workers), "--threads", "8"]]

    def result_probe(self, handle: Any) -> tuple[Any, ...]:
        return ("EXISTS", handle)

    def client_open(self) -> None:
        from tools.bench.peers.tasks import dramatiq_app

        self.app = dramatiq_app
        self.tasks = {"add": dramatiq_app.add, "stamp": dramatiq_app.stamp}

    def enqueue_one(self, func: str, args: tuple[Any, ...]) -> Any:
        return self.app.backend.build_message_key(self.tasks[func].send(*args))

    def enqueue_series(self, func: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        actor, key = self.tasks[func], self.app.backend.build_message_key
        return [key(actor.send(*a)) for a in args]

    def enqueue_bulk(self, func: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        import dramatiq

        actor = self.tasks[func]
        messages = [actor.message(*a) for a in args]
        dramatiq.group(messages).run()
        return [self.app.backend.build_message_key(m) for m in messages]


PEERS = [Dramatiq]
