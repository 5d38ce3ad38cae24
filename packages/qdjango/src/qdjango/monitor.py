"""What ``qinfo`` and ``qmonitor`` show: qcluster's views of the clusters and the queue, plus
what only the database knows (task counts and rates over the last 24 hours)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table

from qcluster import running_tasks
from qcluster.monitor import render, seconds_text, snapshot

__all__ = ["info_view", "monitor_view", "read_snapshot", "stats_interval", "task_stats", "watch"]

DAY = timedelta(hours=24)


def task_stats() -> dict[str, Any]:
    """Saved successes and failures: in all, in the last 24 hours, rates, the mean run time
    (the function only) and the mean time taken (the wait in the queue included)."""
    from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q
    from django.utils import timezone

    from qdjango.models import Task

    since = timezone.now() - DAY
    taken = ExpressionWrapper(F("stopped") - F("started"), output_field=DurationField())
    totals = Task.objects.aggregate(
        successes=Count("pk", filter=Q(success=True)),
        failures=Count("pk", filter=Q(success=False)),
    )
    day = Task.objects.filter(stopped__gte=since).aggregate(
        successes=Count("pk", filter=Q(success=True)),
        failures=Count("pk", filter=Q(success=False)),
        mean=Avg(taken, filter=Q(success=True)),
        run=Avg("run_time", filter=Q(success=True)),
    )
    hours = DAY.total_seconds() / 3600
    mean = day["mean"]
    return {
        "successes": totals["successes"],
        "failures": totals["failures"],
        "successes_24h": day["successes"],
        "failures_24h": day["failures"],
        "per_hour_24h": (day["successes"] + day["failures"]) / hours,
        "failure_rate_24h": (day["failures"] / (day["successes"] + day["failures"]))
        if day["successes"] + day["failures"]
        else 0.0,
        "mean_seconds_24h": None if mean is None else mean.total_seconds(),
        "mean_run_seconds_24h": day["run"],
    }


STATS_EVERY = 5.0
"""Seconds between the live view's database reads at the least (Redis is read at every
frame)."""
STATS_SHARE = 0.05
"""The share of the time the live view may spend counting the table: on a big one (a count
taking 0.5 s at a million rows) it reads less often than every ``STATS_EVERY``."""


def stats_interval(took: float) -> float:
    """Seconds until the live view's next database read, after one that took ``took``."""
    return max(STATS_EVERY, took / STATS_SHARE)


def read_snapshot(stats: dict[str, Any] | None = None, *, reasons: bool = False) -> dict[str, Any]:
    """Clusters and queue sizes from Redis, task statistics from the database (``stats``:
    ones read before, kept instead of counting the table again; ``reasons``: the dead
    letters counted by reason too, for ``qinfo``)."""
    from qdjango.conf import get_settings
    from qdjango.connection import status_board, transport
    from qdjango.schedules import store

    snap = snapshot(status_board(), [transport()], [store()], reasons=reasons)
    snap["tasks"] = task_stats() if stats is None else stats
    snap["settings"] = get_settings()
    snap["redis"] = get_settings().redis_display
    return snap


def _tasks_table(stats: dict[str, Any]) -> Table:
    table = Table(title="Results (database)", title_justify="left")
    columns = ("", "successes", "failures", "tasks/hour", "failure rate", "mean run")
    for column in (*columns, "mean time taken"):
        table.add_column(column, justify="left" if not column else "right")
    mean = stats["mean_seconds_24h"]
    run = stats.get("mean_run_seconds_24h")
    table.add_row(
        "last 24 h",
        f"{stats['successes_24h']:,}",
        f"{stats['failures_24h']:,}",
        f"{stats['per_hour_24h']:,.1f}",
        f"{stats['failure_rate_24h']:.1%}",
        "-" if run is None else seconds_text(run),
        "-" if mean is None else seconds_text(mean),
    )
    table.add_row("stored", f"{stats['successes']:,}", f"{stats['failures']:,}", "", "", "", "")
    return table


def _config_table(snap: dict[str, Any]) -> Table:
    conf = snap["settings"]
    table = Table(title="Settings (Q_CLUSTER)", title_justify="left")
    table.add_column("setting")
    table.add_column("value")
    for key, value in conf.cluster.as_dict().items():
        table.add_row(key, repr(value))
    table.add_row("redis", conf.redis_display)
    for key in ("save_limit", "sync", "label", "django_redis", "database", "compress_threshold"):
        table.add_row(key, repr(getattr(conf, key)))
    return table


def _running_table(snap: dict[str, Any]) -> Table | None:
    running = running_tasks(snap["clusters"])
    if not running:
        return None
    table = Table(title="Running tasks (the clusters' last status)", title_justify="left")
    # An id is copied from here: never wrapped or cut (the other columns give way).
    table.add_column("task id", no_wrap=True, min_width=32)
    for column in ("name", "func", "worker", "started (UTC)", "attempt"):
        table.add_column(column)
    for task in running[:20]:
        started = (
            "-"
            if task.started_at is None
            else datetime.fromtimestamp(task.started_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        )
        table.add_row(
            task.task_id,
            task.name or "-",
            task.func or "-",
            task.consumer,
            started,
            str(task.attempt or "-"),
        )
    return table


def info_view(snap: dict[str, Any], *, config: bool = False) -> RenderableType:
    """``qinfo``: the clusters and queues (without per-worker rows), the tasks running now and
    the task statistics."""
    parts: list[RenderableType] = [render(snap, workers=False)]
    running = _running_table(snap)
    if running is not None:
        parts.append(running)
    parts.append(_tasks_table(snap["tasks"]))
    if config:
        parts.append(_config_table(snap))
    return Group(*parts)


def monitor_view(snap: dict[str, Any]) -> RenderableType:
    """``qmonitor``: clusters, each worker and what it runs, queues, task statistics."""
    return Group(render(snap, workers=True), _tasks_table(snap["tasks"]))


def watch(console: Console, *, interval: float = 0.25, frames: int | None = None) -> None:
    """Redraw the monitor view until Ctrl+C."""
    from rich.live import Live

    # Not qcluster's live(): ours adds the database rows, read every STATS_EVERY seconds.
    began = time.monotonic()
    snap = read_snapshot()
    stats, counted = snap["tasks"], time.monotonic()
    every = stats_interval(counted - began)
    with Live(monitor_view(snap), console=console, refresh_per_second=8) as view:
        shown = 1
        try:
            while frames is None or shown < frames:
                time.sleep(interval)
                began = time.monotonic()
                if began - counted >= every:
                    stats, counted = task_stats(), time.monotonic()
                    every = stats_interval(counted - began)
                view.update(monitor_view(read_snapshot(stats)))
                shown += 1
        except KeyboardInterrupt:
            return
