"""Fenced saves (issue 11, item 3): a worker frozen past the heartbeat TTL, whose task another
cluster ran again meanwhile, cannot overwrite the newer run's record when it wakes up: its save
carries its delivery's fencing token, lower than the newer delivery's."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.support import Bench, eventually
from tests.faults import tasks
from tests.faults.support import ClusterProcess, Effects


def _cluster(bench: Bench, log: Path) -> ClusterProcess:
    return ClusterProcess(
        [
            *("--redis-url", bench.url, "--queue", bench.queue),
            *("--result-namespace", bench.queue, "--status-namespace", bench.queue),
            *("--workers", "1", "--retry", "3", "--import", "tests.faults.tasks", "--json-logs"),
        ],
        log,
        {"Q_HEARTBEAT": "1"},
    )


def _family(pid: int) -> list[int]:
    """``pid`` and its children (a sentinel and its workers)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                children.append(int(entry.name))
    return [pid, *children]


@pytest.fixture
def clusters() -> Iterator[list[ClusterProcess]]:
    started: list[ClusterProcess] = []
    yield started
    for cluster in started:
        for pid in _family(cluster.process.pid):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        cluster.stop()


# Guarantee (issue 11, item 3): a cluster SIGSTOPped mid-task past the heartbeat TTL has its
# task run again by another cluster (saved, acked, hooked); SIGCONT, the frozen worker finishes
# its run and saves late, with its delivery's fencing token: refused, as its ack is. The stored
# record is the one the hook saw, the newer run's.
def test_a_frozen_worker_s_late_save_never_replaces_the_newer_run_s_record(
    bench: Bench, fx: Effects, tmp_path: Path, clusters: list[ClusterProcess]
) -> None:
    first = _cluster(bench, tmp_path / "first.log")
    clusters.append(first)
    first.wait_for('"cluster.started"')
    task_id = bench.producer.enqueue(
        tasks.slow_first_time, *fx.args("t"), 8.0, hook=tasks.result_hook
    )
    fx.wait_started()
    frozen = _family(first.process.pid)
    assert len(frozen) == 2, "a sentinel and its one worker"
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)

    second = _cluster(bench, tmp_path / "second.log")
    clusters.append(second)
    eventually(lambda: fx.count("hook:t") == 1, timeout=90, what="the second run's hook")
    hooked = fx.client.lrange(f"{fx.key}:hooked", 0, -1)
    assert hooked == [b"'run 2'"]
    assert bench.store.get(task_id).result == "run 2"  # type: ignore[union-attr]

    for pid in frozen:
        os.kill(pid, signal.SIGCONT)
    # The frozen run ends, saves (fenced out) and acks (refused): then it is all over.
    first.wait_for('"task.ack_refused"', timeout=60)
    record = bench.store.get(task_id)
    assert record is not None and record.result == "run 2", "the late save replaced the record"
    assert fx.count("t") == 2
    assert fx.count("hook:t") == 1
    assert fx.client.lrange(f"{fx.key}:hooked", 0, -1) == hooked
