"""Rendering cluster status for people: ``qcluster info`` and ``qcluster monitor``.

Reads only what clusters publish on a :class:`qcore.StatusBoard` and the sizes a
:class:`qcore.Transport` reports, so qdjango's ``qinfo``/``qmonitor`` can reuse it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from qcluster.running import worker_tasks
from qcore import DEAD_REASONS_LIMIT, StatusBoard, Transport

__all__ = ["LIVE_INTERVAL", "Snapshot", "live", "render", "seconds_text", "snapshot"]

LIVE_INTERVAL = 0.25
"""Seconds between a live view's reads: with the clusters publishing a worker's change within
0.2 s (qcluster.beacon), a change shows within half a second."""

Snapshot = dict[str, Any]


def _size(read: Callable[[], int]) -> int | None:
    try:
        return int(read())
    except ConnectionError:
        raise  # the server is unreachable: the next read would wait as long again
    except Exception:
        return None


def snapshot(
    board: StatusBoard,
    transports: Iterable[Transport],
    schedules: Iterable[Any] = (),
    *,
    reasons: bool = False,
) -> Snapshot:
    """What the views show: live clusters, the sizes of each queue and, from each schedule
    store given (qredis.RedisSchedules), the next schedules due. With ``reasons`` (the views
    shown once, not the live ones): each queue's newest dead letters counted by the kind of
    their reason.

    The board is read first, and a server that cannot be reached ends the snapshot with its
    error (``ConnectionError``) at the first call that finds out, so a view answers within
    one call's bound instead of one per number it shows.
    """
    clusters = board.clusters()
    queues = []
    for transport in transports:
        row: dict[str, Any] = {
            "queue": transport.queue,
            "queued": _size(transport.queue_size),
            "in_flight": _size(transport.inflight_size),
            "delayed": _size(transport.delayed_size),
            "dead": _size(transport.dead_size),
        }
        if reasons and row["dead"]:
            row["dead_reasons"] = transport.dead_reasons(DEAD_REASONS_LIMIT)
        queues.append(row)
    names = [str(c.get("name")) for c in clusters if c.get("name")]
    upcoming = []
    for store in schedules:
        for state in store.upcoming(10, clusters=names):
            spec = state.spec
            upcoming.append(
                {
                    "id": spec.id,
                    "name": spec.name,
                    "func": spec.func,
                    "type": spec.schedule_type.name.title(),
                    "next_run": None if state.due_ms is None else state.due_ms / 1000,
                    "repeats": state.repeats,
                    "last_task": state.last_task,
                    "cluster": spec.cluster,
                }
            )
    upcoming.sort(key=lambda row: row["next_run"] or 0)
    return {"clusters": clusters, "queues": queues, "schedules": upcoming, "at": time.time()}


def _num(value: Any) -> str:
    return "?" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def seconds_text(value: float) -> str:
    """A run time people can read: sub-millisecond ones too (``420 µs``, not ``0.000 s``)."""
    if value < 0.00001:
        return f"{value * 1_000_000:.1f} µs"
    if value < 0.001:
        return f"{value * 1_000_000:.0f} µs"
    return f"{value * 1000:.2f} ms" if value < 1 else f"{value:.3f} s"


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _queues_table(queues: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title="Queues", title_justify="left", expand=False)
    for column in ("queue", "queued", "in flight", "delayed", "dead"):
        table.add_column(column, justify="left" if column == "queue" else "right")
    for q in queues:
        dead = _num(q["dead"])
        table.add_row(
            q["queue"],
            _num(q["queued"]),
            _num(q["in_flight"]),
            _num(q["delayed"]),
            Text(dead, style="bold red") if q["dead"] else dead,
        )
    return table


def _reasons_table(queues: Sequence[Mapping[str, Any]]) -> Table | None:
    rows = [(q, kind, n) for q in queues for kind, n in (q.get("dead_reasons") or {}).items()]
    if not rows:
        return None
    table = Table(title="Dead letters by reason", title_justify="left")
    for column in ("queue", "reason", "count"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for q, kind, n in rows:
        counted = q["dead"] is not None and q["dead"] > DEAD_REASONS_LIMIT
        of = f" (of the newest {DEAD_REASONS_LIMIT:,})" if counted else ""
        table.add_row(q["queue"], kind, f"{n:,}{of}")
    return table


def _clusters_table(clusters: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title="Clusters", title_justify="left")
    numbers = ("processed", "failed", "mean run")
    for column in ("cluster", "host", "pid", "state", "queue", "workers", *numbers):
        table.add_column(column, justify="right" if column in numbers else "left")
    table.add_column("uptime", justify="right")
    for c in clusters:
        workers = c.get("workers") or []
        running = [len(worker_tasks(w)) for w in workers]
        busy = f"{sum(1 for n in running if n)}/{len(workers)} busy"
        if sum(running) > sum(1 for n in running if n):  # workers awaiting several coroutines
            busy += f", {sum(running)} tasks"
        table.add_row(
            str(c.get("cluster_id")),
            str(c.get("host")),
            str(c.get("pid")),
            str(c.get("state")),
            str(c.get("queue")),
            busy,
            _num(c.get("processed")),
            _num(c.get("failed")),
            seconds_text(mean) if isinstance(mean := c.get("mean_run"), int | float) else "-",
            _duration(c.get("uptime")),
        )
    return table


WORKER_TASKS_SHOWN = 4
"""Rows a worker's running tasks take at most in the Workers table (the oldest; then a row
counting the rest)."""


def _since(task: Mapping[str, Any], at: float) -> str:
    started = task.get("started_at")
    if isinstance(started, int | float):
        return f"{max(0.0, at - started):.1f}s"
    running = task.get("running_for")
    return f"{running:.1f}s" if isinstance(running, int | float) else "-"


def _workers_table(clusters: Sequence[Mapping[str, Any]], at: float) -> Table:
    table = Table(title="Workers", title_justify="left")
    columns = ("cluster", "#", "pid", "state", "tasks", "task", "func", "for")
    for column in (*columns, "processed", "failed"):
        table.add_column(column, justify="right" if column in ("processed", "failed") else "left")
    for c in clusters:
        for w in c.get("workers") or []:
            # Each task it runs: one, or several coroutines awaited side by side, oldest first.
            tasks = worker_tasks(w)
            first = tasks[0] if tasks else {}
            table.add_row(
                str(c.get("cluster_id")),
                str(w.get("index")),
                str(w.get("pid")),
                str(w.get("state")),
                str(len(tasks)),
                str(first.get("task_name") or "-"),
                str(first.get("func") or "-"),
                _since(first, at) if first else "-",
                _num(w.get("processed")),
                _num(w.get("failed")),
            )
            for task in tasks[1:WORKER_TASKS_SHOWN]:
                name, func = str(task.get("task_name") or "-"), str(task.get("func") or "-")
                table.add_row("", "", "", "", "", name, func, _since(task, at), "", "")
            if len(tasks) > WORKER_TASKS_SHOWN:
                more = f"… {len(tasks) - WORKER_TASKS_SHOWN} more"
                table.add_row("", "", "", "", "", more, "", "", "", "")
    return table


def _schedules_table(rows: Sequence[Mapping[str, Any]], at: float) -> Table:
    table = Table(title="Next schedules", title_justify="left")
    for column in ("schedule", "func", "type", "next run (UTC)", "in", "repeats", "last task"):
        table.add_column(column, justify="right" if column in ("in", "repeats") else "left")
    for row in rows:
        due = row["next_run"]
        when = "-" if due is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(due))
        table.add_row(
            str(row["name"] or row["id"]),
            str(row["func"]),
            str(row["type"]),
            when,
            "-" if due is None else _duration(max(0.0, due - at)),
            "forever" if row["repeats"] < 0 else str(row["repeats"]),
            str(row["last_task"] or "-"),
        )
    return table


def render(snap: Snapshot, *, workers: bool = True) -> RenderableType:
    """One frame: which Redis (masked), queues, clusters and (optionally) each worker, and the
    next schedules."""
    parts: list[RenderableType] = []
    if snap.get("redis"):
        parts.append(Text(f"Redis: {snap['redis']}", style="bold"))
    parts.append(_queues_table(snap["queues"]))
    reasons = _reasons_table(snap["queues"])
    if reasons is not None:
        parts.append(reasons)
    clusters = snap["clusters"]
    if clusters:
        parts.append(_clusters_table(clusters))
        if workers:
            parts.append(_workers_table(clusters, snap["at"]))
    else:
        parts.append(Text("No live clusters.", style="yellow"))
    if snap.get("schedules"):
        parts.append(_schedules_table(snap["schedules"], snap["at"]))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(snap["at"]))
    parts.append(Text(f"as of {stamp}", style="dim"))
    return Group(*parts)


def live(
    read: Callable[[], Snapshot],
    *,
    interval: float = LIVE_INTERVAL,
    console: Console | None = None,
    frames: int | None = None,
) -> None:
    """Redraw in place every ``interval`` seconds until Ctrl+C (or ``frames`` frames)."""
    shown = 0
    with Live(render(read()), console=console, refresh_per_second=8, screen=False) as view:
        shown += 1
        try:
            while frames is None or shown < frames:
                time.sleep(interval)
                view.update(render(read()))
                shown += 1
        except KeyboardInterrupt:
            return
