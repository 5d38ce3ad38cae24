"""Every log record is one whole line, whatever the number of processes writing to one stream.

Many workers of a busy cluster share the sentinel's stdout and stderr (a file here, as with
``qcluster run --json-logs >> q.log`` or a container's log pipe), and each writes at the
debug level; some records are longer than a pipe's atomic write (4 KiB) and Python's buffer
(8 KiB). ``PYTHONUNBUFFERED=1`` (the deployment Dockerfile sets it) is the setting under which
a record used to reach the stream in two writes, the text and then its newline.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qredis import Producer
from tests.faults import tasks
from tests.faults.support import ClusterProcess


@pytest.mark.slow
@pytest.mark.parametrize("unbuffered", ["1", ""], ids=["unbuffered", "buffered"])
def test_a_busy_cluster_writes_every_json_record_as_one_whole_line(
    redis_url: str, queue_name: str, tmp_path: Path, unbuffered: str
) -> None:
    log = tmp_path / "cluster.log"
    cluster = ClusterProcess(
        [
            "--redis-url",
            redis_url,
            "--queue",
            queue_name,
            "--result-namespace",
            queue_name,
            "--status-namespace",
            queue_name,
            "--workers",
            "8",
            "--recycle",
            "100",
            "--import",
            "tests.faults.tasks",
            "--log-level",
            "debug",
            "--json-logs",
        ],
        log,
        {"PYTHONUNBUFFERED": unbuffered},
    )
    n = 3000
    try:
        cluster.wait_for('"cluster.started"')
        with Producer(redis_url, queue_name, namespace=queue_name) as producer:
            # Mostly short records, every tenth one longer than a pipe's and Python's buffers.
            ids = producer.enqueue_many(
                tasks.chatty, [(i, 20_000 if i % 10 == 0 else 10) for i in range(n)]
            )
            for task_id in ids:
                assert producer.fetch(task_id, wait=60) is not None
    finally:
        code, _ = cluster.stop()
    assert code == 0
    raw = log.read_bytes()
    assert raw.endswith(b"\n")
    lines = raw.split(b"\n")[:-1]
    bad = []
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except ValueError:
            bad.append((number, line[:200]))
    assert not bad, f"{len(bad)} of {len(lines)} lines are not one JSON record, e.g. {bad[:3]}"
    events = [r["event"] for r in records]
    # Every record is there: each task's own two (one through the stdlib logging) and the
    # worker's, and the recycled workers' starts.
    assert events.count("chatty.structlog") == n
    assert events.count("chatty.stdlib 0") == 1
    assert sum(e.startswith("chatty.stdlib ") for e in events) == n
    assert events.count("task.finished") == n
    assert events.count("worker.started") >= n // 100
    assert sum(len(r.get("filler", "")) for r in records) == (n // 10) * 20_000 + (n - n // 10) * 10
