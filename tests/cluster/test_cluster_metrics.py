"""The cluster's metrics endpoint: one per cluster, the sentinel adding up its workers."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from qcluster import ClusterError
from tests.cluster import tasks
from tests.cluster.support import Bench, eventually

ADD = "tests.cluster.tasks.add"
FAIL = "tests.cluster.tasks.fail"
DIE = "tests.cluster.tasks.die_first_time"
SLEEP = "tests.cluster.tasks.sleep_then"


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the endpoint, by (name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_the_counters_match_a_known_run_across_recycled_and_killed_workers(
    bench: Bench, tmp_path: Path
) -> None:
    q = bench.queue
    ok = bench.producer.enqueue_many(tasks.add, [(i, 1) for i in range(30)])
    bad = bench.producer.enqueue_many(tasks.fail, [(f"no {i}",) for i in range(5)])
    died = bench.producer.enqueue(tasks.die_first_time, str(tmp_path / "died"))
    slow = bench.producer.enqueue(tasks.sleep_then, 30, "never", timeout=1)
    # raises on each of its three runs: retried twice (no wait), then a Failure
    again = bench.producer.enqueue(tasks.fail, "again", retries=2, retry_backoff=0)
    with bench.cluster(metrics_port=0, recycle=7, retry=5, start_method="fork"):
        records = bench.wait_all([*ok, *bad, died, slow, again], timeout=60)
        status = eventually(bench.status, what="a status")
        port = status["metrics_port"]

        def settled() -> dict[Any, float] | None:
            samples = scrape(port)
            done = value(samples, "q_tasks_succeeded_total", queue=q, func=ADD) == 30
            return samples if done and value(samples, "q_workers", state="idle") == 2 else None

        samples = eventually(settled, what="the figures of every worker")
        recycled = value(samples, "q_worker_exits_total", reason="recycle")
        # The sentinel's own count of recycled workers (in its status) is the truth here.
        eventually(
            lambda: (s := bench.status()) and s["recycled"] == recycled,
            what="the status to count the recycled workers the endpoint counted",
        )
    assert records[died].result == "survived" and not records[slow].success
    assert value(samples, "q_tasks_succeeded_total", queue=q, func=ADD) == 30
    assert value(samples, "q_tasks_started_total", queue=q, func=ADD) == 30
    assert value(samples, "q_tasks_failed_total", queue=q, func=FAIL) == 5 + 1
    assert value(samples, "q_tasks_retried_total", queue=q, func=FAIL) == 2
    assert value(samples, "q_tasks_started_total", queue=q, func=FAIL) == 5 + 3
    assert records[again].attempt_count == 3 and len(records[again].options.failures) == 2
    assert value(samples, "q_tasks_failed_total", queue=q, func=ADD) == 0
    assert value(samples, "q_tasks_retried_total", queue=q, func=DIE) == 1
    assert value(samples, "q_tasks_started_total", queue=q, func=DIE) == 2
    assert value(samples, "q_tasks_succeeded_total", queue=q, func=DIE) == 1
    assert value(samples, "q_tasks_timed_out_total", queue=q, func=SLEEP) == 1
    assert value(samples, "q_task_run_seconds_count", queue=q, func=ADD) == 30
    # the run time of each run that ended its task (a retried run's counts in started only)
    assert value(samples, "q_task_run_seconds_count", queue=q, func=FAIL) == 5 + 1
    assert value(samples, "q_task_run_seconds_bucket", queue=q, func=ADD, le="+Inf") == 30
    assert value(samples, "q_task_wait_seconds_count", queue=q) == 30 + 5 + 3 + 2 + 1
    # 41 runs with recycle=7: workers were recycled (their counts kept, as the totals show).
    assert recycled >= 2
    assert value(samples, "q_worker_exits_total", reason="lost") == 1
    assert value(samples, "q_worker_exits_total", reason="timeout") == 1
    assert value(samples, "q_queue_depth", queue=q) == 0
    assert value(samples, "q_queue_dead", queue=q) == 0
    assert value(samples, "q_workers_busy") == 0


def test_a_metrics_port_in_use_is_a_clear_error_at_start(bench: Bench) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        cluster = bench.cluster(metrics_port=port, metrics_host="127.0.0.1")
        with pytest.raises(ClusterError, match=rf"metrics_port {port} on 127.0.0.1 cannot be used"):
            cluster.start(wait=30)
        assert not cluster.is_running
        assert bench.board.clusters() == []
    finally:
        taken.close()


@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_workers_started_without_fork_count_into_their_cells(
    bench: Bench, start_method: str
) -> None:
    ids = bench.producer.enqueue_many(tasks.add, [(i, 1) for i in range(20)])
    with bench.cluster(metrics_port=0, start_method=start_method):
        bench.wait_all(ids)
        port = eventually(bench.status)["metrics_port"]

        def counted() -> dict[Any, float] | None:
            # A batch is counted just after its records are saved, its run times last: a
            # scrape at once may come first (seen at load 5).
            samples = scrape(port)
            runs = value(samples, "q_task_run_seconds_count", queue=bench.queue, func=ADD)
            return samples if runs >= 20 else None

        samples = eventually(counted, what="the runs of every batch counted")
    assert value(samples, "q_tasks_started_total", queue=bench.queue, func=ADD) == 20
    assert value(samples, "q_tasks_succeeded_total", queue=bench.queue, func=ADD) == 20
    assert value(samples, "q_task_run_seconds_count", queue=bench.queue, func=ADD) == 20
