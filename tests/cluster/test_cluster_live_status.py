"""A worker's state change reaches the status board within half a second: the sentinel
publishes on change (rate-limited), not only every ``status_interval``."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from qcluster.monitor import render
from qcore import mask_url
from tests.cluster import tasks
from tests.cluster.support import Bench, eventually


def _worker(bench: Bench) -> dict | None:
    status = bench.status()
    workers = (status or {}).get("workers") or []
    return workers[0] if workers else None


def _published(bench: Bench, state: str, task_id: str | None = None) -> float:
    """When the status document showing the worker in ``state`` was built (its ``updated_at``,
    the sentinel's clock: this host's), not when this test happened to read it: a loaded
    machine may run the test's own polls late. The next document comes only with the next
    change (``status_interval`` is a minute), so the one read is the first in that state."""

    def shown() -> float | None:
        status = bench.status()
        workers = (status or {}).get("workers") or []
        if workers and workers[0]["state"] == state and workers[0]["task_id"] == task_id:
            return float(status["updated_at"])  # type: ignore[index]
        return None

    return eventually(shown, timeout=10, what=f"the worker shown {state}")


def test_a_worker_s_state_change_is_published_within_half_a_second(
    bench: Bench, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    # The interval alone would show the change after up to a minute.
    with bench.cluster(workers=1, status_interval=60, retry=130, heartbeat=1):
        eventually(lambda: (w := _worker(bench)) and w["state"] == "idle", what="an idle worker")
        task_id = bench.producer.enqueue(tasks.touch_and_sleep, str(marker), 1.5, "done")
        running = _published(bench, "running", task_id)
        started = os.path.getmtime(marker)
        bench.wait_all([task_id])
        finished = time.time()  # the record is saved: the worker acks, then it is idle
        idle = _published(bench, "idle")
    assert running - started < 0.5, f"running shown {running - started:.3f} s late"
    assert idle - finished < 0.5, f"idle shown {idle - finished:.3f} s late"


def test_the_live_views_name_the_redis_they_read_masked() -> None:
    from rich.console import Console

    url = "redis://q-user:hunter2-secret@redis.internal:6380/2"
    console = Console(width=160, record=True)
    console.print(render({"redis": mask_url(url), "queues": [], "clusters": [], "at": time.time()}))
    text = console.export_text()
    assert "Redis: redis://q-user:***@redis.internal:6380/2" in text
    assert "hunter2" not in text


def test_the_redis_store_keeps_the_run_time_and_the_views_show_its_mean(bench: Bench) -> None:
    from rich.console import Console

    from qcluster.monitor import snapshot

    # Queued a second before any cluster: the time taken counts that wait, the run time not.
    ids = [bench.producer.enqueue(tasks.sleep_then, 0.2, i) for i in range(2)]
    time.sleep(1.0)
    with bench.cluster(workers=1):
        bench.wait_all(ids)
        status = eventually(
            lambda: (s := bench.status()) and s["processed"] == 2 and s, what="the status"
        )
        snap = snapshot(bench.board, [bench.transport])
    for task_id in ids:
        record = bench.producer.fetch(task_id)  # read back from the Redis result store
        assert record is not None and record.run_time is not None
        assert 0.2 <= record.run_time < 5, record.run_time
        assert record.time_taken() >= 1.0 + record.run_time
    assert 0.2 <= status["mean_run"] < 5, status
    console = Console(width=200, record=True)
    console.print(render(snap))
    text = console.export_text()
    assert "mean run" in text and re.search(r"\b\d+\.\d\d ms\b|\b\d\.\d{3} s\b", text), text


def test_the_monitor_shows_each_coroutine_a_worker_awaits(bench: Bench) -> None:
    from rich.console import Console

    from qcluster.monitor import WORKER_TASKS_SHOWN, snapshot
    from qcluster.running import worker_tasks

    names = [f"nap-{i}" for i in range(WORKER_TASKS_SHOWN + 2)]
    with bench.cluster(workers=2, async_concurrency=10):
        ids = [
            bench.producer.enqueue(tasks.nap_then, 6, i, q_options={"task_name": name})
            for i, name in enumerate(names)
        ]
        # One worker may take them all, or both some: the views show every one either way.
        status = eventually(
            lambda: (
                (s := bench.status())
                and sum(len(worker_tasks(w)) for w in s["workers"]) == len(names)
                and s
            ),
            what="the six naps running in the status",
        )
        snap = snapshot(bench.board, [bench.transport])
        bench.wait_all(ids, timeout=30)
    console = Console(width=200, record=True)
    console.print(render(snap))
    text = console.export_text()
    workers = [w for w in status["workers"] if worker_tasks(w)]
    busy = f"{len(workers)}/2 busy, {len(names)} tasks"
    assert busy in text, text
    counts = sorted(len(worker_tasks(w)) for w in workers)
    shown = sum(min(n, WORKER_TASKS_SHOWN) for n in counts)
    listed = [name for name in names if re.search(rf"\b{name}\b", text)]
    assert len(listed) == shown, (listed, counts, text)
    for n in counts:
        # Each worker's row says how many it runs; past WORKER_TASKS_SHOWN, a row counts the rest.
        assert re.search(rf"│ {n}\s+│ nap-\d", text), (n, text)
        if n > WORKER_TASKS_SHOWN:
            assert f"… {n - WORKER_TASKS_SHOWN} more" in text, text
