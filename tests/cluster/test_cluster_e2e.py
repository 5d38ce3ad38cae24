"""The cluster end to end: real worker processes, a private Redis, real signals."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from qcluster import ClusterConfig
from qcore import ConfigError
from tests.cluster import tasks
from tests.cluster.support import Bench, eventually


@pytest.mark.parametrize("start_method", ["fork", "forkserver", "spawn"])
def test_a_thousand_tasks_are_each_saved_exactly_once(bench: Bench, start_method: str) -> None:
    ids = bench.producer.enqueue_many(tasks.add, [(i, 1000) for i in range(1000)])
    with bench.cluster(start_method=start_method) as cluster:
        # seen from the moment start() returned (published before it said it was ready)
        assert [c["cluster_id"] for c in bench.board.clusters()] == [cluster.cluster_id]
        records = bench.wait_all(ids)
    assert [records[i].result for i in ids] == [i + 1000 for i in range(1000)]
    assert all(r.success and r.func == "tests.cluster.tasks.add" for r in records.values())
    counts = bench.store.counts()
    assert len(counts) == 1000 and set(counts.values()) == {1}
    assert bench.transport.queue_size() == 0 and bench.transport.inflight_size() == 0
    assert bench.board.clusters() == []  # the status is removed on stop


@pytest.mark.slow
def test_a_worker_sigkilled_mid_task_three_times_costs_nothing(bench: Bench) -> None:
    ids = bench.producer.enqueue_many(tasks.sleep_then, [(0.01, i) for i in range(300)])
    killed: list[int] = []
    with bench.cluster(start_method="fork"):
        for round_ in range(3):

            def running_worker() -> int | None:
                status = bench.status()
                for worker in (status or {}).get("workers", []):
                    if worker["state"] == "running" and worker["pid"] not in killed:
                        return int(worker["pid"])
                return None

            pid = eventually(running_worker, what="a worker running a task")
            saved_before = len(bench.store.counts())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            # Tasks keep flowing after each kill: more records get saved.
            eventually(
                lambda before=saved_before: len(bench.store.counts()) >= before + 10,
                what=f"tasks to flow after kill {round_ + 1}",
            )
        records = bench.wait_all(ids)
        status = eventually(
            lambda: (s := bench.status()) and s["replaced"] >= 3 and s, what="replacements"
        )
    assert [records[i].result for i in ids] == list(range(300))
    assert status["lost"] + 0 >= 0 and status["replaced"] >= 3
    assert set(bench.store.counts()) == set(ids)
    assert bench.transport.dead_size() == 0


def test_a_task_past_its_timeout_is_killed_saved_as_timed_out_and_replaced(
    bench: Bench,
) -> None:
    slow = bench.producer.enqueue(tasks.sleep_then, 10, "never")
    after = bench.producer.enqueue(tasks.add, 2, 2)
    begun = time.monotonic()
    with bench.cluster(workers=1, timeout=1, retry=5, start_method="fork"):
        records = bench.wait_all([slow, after], timeout=15)
        elapsed = time.monotonic() - begun
        status = eventually(
            lambda: (s := bench.status()) and s["timed_out"] == 1 and s["replaced"] == 1 and s
        )
    failed = records[slow]
    assert not failed.success and "timed out after 1 s" in failed.result
    assert failed.func == "tests.cluster.tasks.sleep_then" and failed.args == (10, "never")
    assert records[after].success and records[after].result == 4
    assert elapsed < 8
    assert status["replaced"] == 1 and status["timed_out"] == 1
    assert bench.store.counts()[slow] == 1
    assert bench.transport.queue_size() == 0 and bench.transport.inflight_size() == 0


def test_a_task_ignoring_sigterm_still_times_out(bench: Bench) -> None:
    stubborn = bench.producer.enqueue(tasks.ignore_sigterm_and_sleep, 30)
    with bench.cluster(workers=1, timeout=0.5, retry=5, start_method="fork"):
        record = bench.wait_all([stubborn], timeout=10)[stubborn]
    assert "timed out after 0.5 s" in record.result


def test_recycle_replaces_workers_and_saves_everything(bench: Bench) -> None:
    ids = bench.producer.enqueue_many(tasks.record_pid, list(range(50)))
    with bench.cluster(recycle=10, start_method="fork"):
        records = bench.wait_all(ids)
    pids = {records[i].result[1] for i in ids}
    assert [records[i].result[0] for i in ids] == list(range(50))
    assert len(pids) >= 5  # two first workers plus at least 4 replacements, minus overlap
    assert set(bench.store.counts().values()) == {1}


def test_sigterm_finishes_running_tasks_and_leaves_the_queue_for_the_next_cluster(
    bench: Bench, tmp_path: Path
) -> None:
    marks = [tmp_path / "a", tmp_path / "b"]
    long_ids = [bench.producer.enqueue(tasks.touch_and_sleep, str(m), 4.0, "long") for m in marks]
    cluster = bench.cluster(start_method="fork", prefetch=1)
    cluster.start()
    eventually(lambda: all(m.exists() for m in marks), what="both long tasks to start")
    queued = bench.producer.enqueue_many(tasks.add, [(i, 1) for i in range(500)])
    assert cluster.stop() == 0
    # The running tasks finished and were saved; the queued ones were left alone.
    assert {bench.store.get(i).result for i in long_ids} == {"long"}  # type: ignore[union-attr]
    assert bench.transport.inflight_size() == 0
    assert bench.transport.queue_size() == 500
    with bench.cluster(start_method="fork"):
        records = bench.wait_all(queued)
    assert [records[i].result for i in queued] == [i + 1 for i in range(500)]
    counts = bench.store.counts()
    assert all(counts[i] == 1 for i in [*queued, *long_ids])


def test_a_tampered_payload_is_never_run_and_is_dead_lettered(bench: Bench, tmp_path: Path) -> None:
    trace = tmp_path / "ran"
    victim = bench.producer.message(tasks.mark, str(trace))
    payload = bytearray(bench.producer.codec.encode_message(victim))
    payload[-40] ^= 0x01  # flip one bit of the pickled body
    bench.transport.enqueue(victim.id, bytes(payload))
    bench.transport.enqueue("f" * 32, b"not a Q payload at all")
    good = bench.producer.enqueue(tasks.add, 1, 1)
    with bench.cluster(workers=1, start_method="fork"):
        assert bench.wait_all([good])[good].result == 2
        dead = eventually(lambda: (d := bench.transport.dead_letters()) and len(d) == 2 and d)
    reasons = {d.task_id: d.reason for d in dead}
    assert reasons[victim.id].startswith("BadSignature")
    assert reasons["f" * 32].startswith("BadMagic")
    assert not trace.exists()
    assert bench.store.get(victim.id) is None


def test_failures_hooks_and_missing_functions(
    bench: Bench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("Q_TEST_HOOK_DIR", str(tmp_path))
    ok = bench.producer.enqueue(tasks.add, 20, 22, hook=tasks.write_hook)
    broken_hook = bench.producer.enqueue(tasks.add, 1, 2, hook=tasks.raising_hook)
    raises = bench.producer.enqueue(tasks.fail, "on purpose")
    missing = bench.producer.enqueue("tests.cluster.tasks.no_such_task")
    with bench.cluster(workers=1, start_method="fork"):
        records = bench.wait_all([ok, broken_hook, raises, missing])
        eventually(lambda: (tmp_path / ok).exists(), what="the hook")
    assert (tmp_path / ok).read_text() == "42"
    assert records[broken_hook].success and records[broken_hook].result == 3
    assert records[raises].result.startswith("RuntimeError: on purpose")
    assert "Traceback" in records[raises].result
    assert records[missing].result.startswith("FunctionNotFound: cannot resolve")
    assert "no_such_task" in records[missing].result


def test_a_bad_config_fails_at_start_up() -> None:
    with pytest.raises(ConfigError, match="retry \\(30\\) must be greater than timeout \\(60\\)"):
        ClusterConfig(timeout=60, retry=30)
