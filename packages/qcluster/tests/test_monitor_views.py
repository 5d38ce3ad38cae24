"""The info/monitor views render what clusters publish and what queues hold."""

from __future__ import annotations

import io

from rich.console import Console

from qcluster.monitor import live, render, snapshot
from qredis import RedisStatusBoard, RedisTransport


def test_views_show_queues_clusters_and_workers(redis_url: str, queue_name: str) -> None:
    board = RedisStatusBoard(redis_url, namespace=queue_name)
    transport = RedisTransport(queue_name, url=redis_url)
    transport.enqueue("a" * 32, b"payload")
    board.publish(
        "c-1",
        {
            "name": "c",
            "host": "h",
            "pid": 1,
            "state": "running",
            "queue": queue_name,
            "uptime": 65,
            "processed": 12,
            "failed": 1,
            "mean_run": 0.00042,
            "workers": [
                {
                    "index": 0,
                    "pid": 2,
                    "state": "running",
                    "task_id": "x",
                    "task_name": "ocean-tiger-maple-owl",
                    "func": "m.f",
                    "running_for": 1.5,
                    "processed": 12,
                    "failed": 1,
                },
            ],
        },
        ttl=10,
    )
    snap = snapshot(board, [transport])
    assert snap["queues"][0]["queued"] == 1 and snap["clusters"][0]["cluster_id"] == "c-1"
    console = Console(file=io.StringIO(), width=200)
    console.print(render(snap))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    for expected in (queue_name, "c-1", "running", "ocean-tiger-maple-owl", "1/1 busy", "1:05"):
        assert expected in text
    assert "mean run" in text and "420 µs" in text
    out = io.StringIO()
    frames: list[int] = []

    def read() -> dict[str, object]:
        frames.append(1)
        return snapshot(board, [transport])

    live(read, interval=0.01, console=Console(file=out, width=200), frames=3)
    assert len(frames) == 3 and "c-1" in out.getvalue()
    board.remove("c-1")
    console = Console(file=io.StringIO(), width=200)
    console.print(render(snapshot(board, [transport])))
    assert "No live clusters" in console.file.getvalue()  # type: ignore[attr-defined]


def test_the_views_shown_once_count_dead_letters_by_reason(redis_url: str, queue_name: str) -> None:
    board = RedisStatusBoard(redis_url, namespace=queue_name)
    transport = RedisTransport(queue_name, url=redis_url)
    for i, reason in enumerate(["UnknownKey: key id 0a0b0c0d", "UnknownKey: x", "WorkerLost: y"]):
        transport.enqueue(f"{i}" * 32, b"payload")
        [delivery] = transport.fetch("c-1")
        transport.dead_letter(delivery, reason)
    assert "dead_reasons" not in snapshot(board, [transport])["queues"][0]  # the live views
    snap = snapshot(board, [transport], reasons=True)
    assert snap["queues"][0]["dead_reasons"] == {"UnknownKey": 2, "WorkerLost": 1}
    console = Console(file=io.StringIO(), width=200)
    console.print(render(snap))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "Dead letters by reason" in text
    [row] = [line for line in text.splitlines() if "UnknownKey" in line]
    assert queue_name in row and " 2 " in row
