"""``async def`` tasks on a real cluster: awaited in each worker's event loop, side by side up
to ``async_concurrency``, with their timeouts, hooks and records, each seen running, one
terminated alone, and a worker lost mid-await."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from qcluster import running_tasks
from tests.cluster.support import Bench, eventually
from tests.faults import aio_tasks, tasks
from tests.faults.support import Effects, assert_drained

ROOT = Path(__file__).resolve().parents[2]


def test_an_async_task_is_awaited_saved_once_and_hooked_once(bench: Bench, fx: Effects) -> None:
    ok = bench.producer.enqueue(aio_tasks.nap, *fx.args("ok"), 0.01, hook=tasks.counting_hook)
    bad = bench.producer.enqueue(aio_tasks.fail, *fx.args("bad"), hook=tasks.counting_hook)
    with bench.cluster(workers=1):
        records = bench.wait_all([ok, bad], timeout=30)
        eventually(lambda: fx.count("hook:ok") and fx.count("hook:bad"), what="the hooks")
    assert records[ok].success and records[ok].result == "ok"
    assert not records[bad].success
    assert records[bad].result.startswith("RuntimeError: async failure bad")
    assert 'aio_tasks.py", line' in records[bad].result  # the coroutine's own traceback
    assert bench.store.counts() == {ok: 1, bad: 1}
    assert fx.counts() == {"ok": 1, "bad": 1, "hook:ok": 1, "hook:bad": 1}
    assert_drained(bench)


def test_coroutines_of_one_worker_overlap_up_to_async_concurrency(
    bench: Bench, fx: Effects
) -> None:
    ids = [bench.producer.enqueue(aio_tasks.nap, *fx.args(f"n{i}"), 2.0) for i in range(20)]
    sync = bench.producer.enqueue(tasks.counted, *fx.args("sync"), "s")  # runs in between
    begun = time.monotonic()
    with bench.cluster(workers=1, async_concurrency=20):
        records = bench.wait_all([*ids, sync], timeout=60)
        took = time.monotonic() - begun
        status = bench.status()
    assert all(records[i].success for i in ids) and records[sync].result == "s"
    spans = [tuple(map(float, s.split())) for s in fx.client.lrange(f"{fx.key}:spans", 0, -1)]
    assert len(spans) == 20
    # Every nap started before the first one ended: all 20 awaited at once in one worker.
    assert max(start for start, _ in spans) < min(end for _, end in spans)
    assert took < 30, f"20 overlapping 2 s naps took {took:.1f} s (one by one: 40 s)"
    assert status is not None and status["lost"] == 0
    assert_drained(bench)


def test_a_coroutine_past_its_timeout_is_cancelled_alone_with_one_failure_and_one_hook(
    bench: Bench, fx: Effects
) -> None:
    slow = bench.producer.enqueue(
        aio_tasks.nap, *fx.args("slow"), 60.0, timeout=1.0, hook=tasks.counting_hook
    )
    quick = {
        f"q{i}": bench.producer.enqueue(
            aio_tasks.nap, *fx.args(f"q{i}"), 3.0, timeout=30.0, hook=tasks.counting_hook
        )
        for i in range(4)
    }
    with bench.cluster(workers=1, async_concurrency=5) as cluster:
        records = bench.wait_all([slow, *quick.values()], timeout=60)
        eventually(lambda: all(fx.count(f"hook:{t}") for t in [*quick, "slow"]), what="hooks")
        status = bench.status()
        assert cluster.is_running
    record = records[slow]
    assert not record.success
    assert record.result.startswith("TimeoutError: the task timed out after 1 s")
    assert "event loop" in record.result  # cancelled in the loop: its worker was not killed
    assert all(records[i].success for i in quick.values())
    assert status is not None and status["lost"] == 0 and status["replaced"] == 0
    assert fx.count("slow") == 1 and bench.store.counts()[slow] == 1
    assert {t: fx.count(f"hook:{t}") for t in [*quick, "slow"]} == dict.fromkeys(
        [*quick, "slow"], 1
    )
    assert_drained(bench)


def test_every_awaited_coroutine_is_seen_running_and_one_is_terminated_alone(
    bench: Bench, fx: Effects
) -> None:
    tags = [f"c{i}" for i in range(4)]
    ids = {
        tag: bench.producer.enqueue(
            aio_tasks.announced_nap, *fx.args(tag), 8.0, hook=tasks.counting_hook
        )
        for tag in tags
    }
    doomed = ids["c0"]
    with bench.cluster(workers=1, async_concurrency=5) as cluster:
        pids = {fx.wait_started() for _ in tags}  # all four awaited in one worker
        assert len(pids) == 1
        seen = eventually(
            lambda: (found := running_tasks(bench.board.clusters())) and len(found) == 4 and found,
            what="the four coroutines running in the status",
        )
        assert {task.task_id for task in seen} == set(ids.values())
        for task in seen:
            assert task.func == "tests.faults.aio_tasks.announced_nap" and task.attempt == 1
            assert task.started_at is not None and time.time() - 30 < task.started_at
        [one] = running_tasks(bench.board.clusters(), ids["c2"])
        assert one.task_id == ids["c2"]
        asked = time.monotonic()
        assert bench.producer.cancel(doomed, terminate=True) == "terminating"
        cancelled = bench.wait_all([doomed], timeout=30)[doomed]
        took = time.monotonic() - asked
        records = bench.wait_all(list(ids.values()), timeout=30)
        eventually(lambda: all(fx.count(f"hook:{t}") for t in tags), what="the hooks")
        status = bench.status()
        assert cluster.is_running
    assert not cancelled.success
    assert cancelled.result.startswith("Cancelled: the task was terminated while running")
    assert "event loop" in cancelled.result  # cancelled in the loop: its worker was not killed
    assert took < 6, f"the termination took {took:.1f} s (the naps last 8 s)"
    assert {t: records[ids[t]].result for t in tags[1:]} == {t: t for t in tags[1:]}
    assert status is not None and status["replaced"] == 0 and status["lost"] == 0
    assert [w["pid"] for w in status["workers"]] == list(pids)  # the same worker throughout
    assert fx.counts() == {**dict.fromkeys(tags, 1), **{f"hook:{t}": 1 for t in tags}}
    assert bench.store.counts() == dict.fromkeys(ids.values(), 1)
    assert_drained(bench)


def test_a_coroutine_whose_loop_is_blocked_is_terminated_by_killing_its_worker(
    bench: Bench, fx: Effects
) -> None:
    blocked = bench.producer.enqueue(
        aio_tasks.block_first_time, *fx.args("blocked"), hook=tasks.counting_hook
    )
    with bench.cluster(workers=1, async_concurrency=3, start_method="fork"):
        first = fx.wait_started()
        eventually(
            lambda: running_tasks(bench.board.clusters(), blocked), what="the coroutine running"
        )
        assert bench.producer.cancel(blocked, terminate=True) == "terminating"
        record = bench.wait_all([blocked], timeout=30)[blocked]
        eventually(lambda: fx.count("hook:blocked"), what="the hook")
        status = eventually(lambda: (s := bench.status()) and s["replaced"] >= 1 and s)
    assert record.result.startswith("Cancelled: the task was terminated while running")
    assert "its worker was killed" in record.result  # the sentinel's backstop
    assert first not in [w["pid"] for w in status["workers"]]
    assert fx.counts() == {"blocked": 1, "hook:blocked": 1}  # never ran again
    assert bench.store.counts() == {blocked: 1}
    assert_drained(bench)


def test_a_worker_sigkilled_mid_await_has_each_task_redelivered_with_one_record(
    bench: Bench, fx: Effects
) -> None:
    tags = [f"v{i}" for i in range(5)]
    ids = {
        tag: bench.producer.enqueue(
            aio_tasks.hang_first_time, *fx.args(tag), hook=tasks.counting_hook, max_attempts=3
        )
        for tag in tags
    }
    with bench.cluster(workers=1, async_concurrency=5, start_method="fork"):
        pids = {fx.wait_started() for _ in tags}  # all five awaiting in one worker
        assert len(pids) == 1
        os.kill(pids.pop(), signal.SIGKILL)
        records = bench.wait_all(list(ids.values()), timeout=60)
        eventually(lambda: all(fx.count(f"hook:{t}") for t in tags), what="the hooks")
    assert {t: records[i].result for t, i in ids.items()} == dict.fromkeys(tags, 2)
    assert {t: records[i].attempt_count for t, i in ids.items()} == dict.fromkeys(tags, 2)
    assert {t: fx.count(t) for t in tags} == dict.fromkeys(tags, 2)  # ran again: at least once
    assert bench.store.counts() == dict.fromkeys(ids.values(), 1)  # one record each
    assert {t: fx.count(f"hook:{t}") for t in tags} == dict.fromkeys(tags, 1)
    assert_drained(bench)


def test_qcluster_run_takes_async_concurrency_and_refuses_a_bad_one(
    bench: Bench, fx: Effects
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = [sys.executable, "-m", "qcluster.cli", "run", "--redis-url", bench.url]
    bad = subprocess.run(
        [*run, "--async-concurrency", "0"], capture_output=True, text=True, timeout=60, env=env
    )
    assert bad.returncode == 2
    assert "async_concurrency must be an integer >= 1, not 0" in bad.stderr
    ids = [bench.producer.enqueue(aio_tasks.nap, *fx.args(f"c{i}"), 2.0) for i in range(10)]
    options = ["--queue", bench.queue, "--result-namespace", bench.queue, "--workers", "1"]
    options += ["--async-concurrency", "10", "--import", "tests.faults.aio_tasks"]
    cluster = subprocess.Popen(
        [*run, *options],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        records = bench.wait_all(ids, timeout=60)
    finally:
        cluster.send_signal(signal.SIGINT)
        assert cluster.wait(30) == 0
    assert all(records[i].success for i in ids)
    spans = [tuple(map(float, s.split())) for s in fx.client.lrange(f"{fx.key}:spans", 0, -1)]
    assert max(start for start, _ in spans) < min(end for _, end in spans)  # all at once
