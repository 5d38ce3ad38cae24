"""Small charts of the last hour for the admin's Queue page, drawn on the server as SVG (no
chart library, nothing from a CDN): tasks per minute by outcome, and run time p50/p99.

Each chart is its own request (an ``<img>`` of the Queue page), so the page itself never waits
on them. The figures come from the ``Task`` table's last hour, read through the index on
``stopped``; the percentiles are computed by PostgreSQL (``percentile_cont``) or, on other
databases, from the run times of the hour's newest :data:`SAMPLE` tasks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, router
from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.http import HttpResponse
from django.utils import timezone
from django.utils.html import escape

from qcluster.monitor import seconds_text

__all__ = ["CHARTS", "chart_response", "run_times", "throughput"]

HOUR = timedelta(hours=1)
BUCKET = 300  # seconds per point of the run-time chart
SAMPLE = 20_000
WIDTH, HEIGHT, PAD = 560, 200, 50
COLOURS = ("#417690", "#ba2121", "#e6a100", "#5b8a3a")


def _since() -> datetime:
    return timezone.now() - HOUR


def throughput() -> tuple[list[datetime], dict[str, list[float]]]:
    """Minutes of the last hour, and tasks finished in each: succeeded and failed."""
    from qdjango.models import Task

    since = _since().replace(second=0, microsecond=0)
    minutes = [since + timedelta(minutes=i) for i in range(61)]
    index = {m: i for i, m in enumerate(minutes)}
    series = {"succeeded": [0.0] * len(minutes), "failed": [0.0] * len(minutes)}
    rows = (
        Task.objects.filter(stopped__gte=since)
        .annotate(minute=TruncMinute("stopped"))
        .values_list("minute", "success")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for minute, success, n in rows:
        at = index.get(minute)
        if at is not None:
            series["succeeded" if success else "failed"][at] += n
    return minutes, series


def run_times() -> tuple[list[datetime], dict[str, list[float]]]:
    """Five-minute steps of the last hour, and the run time's p50 and p99 in each (seconds)."""
    from qdjango.models import Task

    since = _since()
    start = math.floor(since.timestamp() / BUCKET) * BUCKET
    steps = [datetime.fromtimestamp(start + i * BUCKET, since.tzinfo) for i in range(13)]
    p50: list[float] = [math.nan] * len(steps)
    p99: list[float] = [math.nan] * len(steps)
    alias = router.db_for_read(Task)
    conn = connections[alias]
    if conn.vendor == "postgresql":
        table = conn.ops.quote_name(Task._meta.db_table)
        sql = (
            f"SELECT floor(extract(epoch FROM stopped) / {BUCKET}) * {BUCKET} AS step, "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY run_time), "
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY run_time) "
            f"FROM {table} WHERE stopped >= %s AND run_time IS NOT NULL GROUP BY step"
        )
        with conn.cursor() as cursor:
            cursor.execute(sql, [since])
            found = {int(step): (a, b) for step, a, b in cursor.fetchall()}
    else:
        values = list(
            Task.objects.using(alias)
            .filter(stopped__gte=since, run_time__isnull=False)
            .order_by("-stopped")
            .values_list("stopped", "run_time")[:SAMPLE]
        )
        grouped: dict[int, list[float]] = {}
        for stopped, run in values:
            grouped.setdefault(int(stopped.timestamp() // BUCKET * BUCKET), []).append(run)
        found = {k: (_quantile(v, 0.5), _quantile(v, 0.99)) for k, v in grouped.items()}
    for i in range(len(steps)):
        pair = found.get(start + i * BUCKET)
        if pair is not None:
            p50[i], p99[i] = float(pair[0]), float(pair[1])
    return steps, {"p50": p50, "p99": p99}


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    at = q * (len(ordered) - 1)
    low, high = math.floor(at), math.ceil(at)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def svg(
    title: str, xs: Sequence[datetime], series: dict[str, list[float]], *, unit: str = ""
) -> str:
    """A line chart: one polyline per series (gaps where a value is NaN), axes and a legend."""
    finite = [v for values in series.values() for v in values if not math.isnan(v)]
    top = max(finite, default=0.0) or 1.0
    plot_w, plot_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    count = max(1, len(xs) - 1)

    def x(i: int) -> float:
        return PAD + plot_w * i / count

    def y(v: float) -> float:
        return PAD + plot_h * (1 - v / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11" role="img" '
        f'aria-label="{escape(title)}">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
        f'<text x="{PAD}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{PAD}" y1="{PAD + plot_h}" x2="{PAD + plot_w}" y2="{PAD + plot_h}" '
        'stroke="#999"/>',
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{PAD + plot_h}" stroke="#999"/>',
        f'<text x="{PAD - 4}" y="{PAD + 4}" text-anchor="end">{escape(_label(top, unit))}</text>',
        f'<text x="{PAD - 4}" y="{PAD + plot_h / 2 + 4:.1f}" text-anchor="end">'
        f"{escape(_label(top / 2, unit))}</text>",
        f'<text x="{PAD - 4}" y="{PAD + plot_h}" text-anchor="end">0</text>',
    ]
    if xs:
        for i in (0, len(xs) // 2, len(xs) - 1):
            parts.append(
                f'<text x="{x(i):.1f}" y="{HEIGHT - PAD + 16}" text-anchor="middle">'
                f"{timezone.localtime(xs[i]).strftime('%H:%M')}</text>"
            )
    for n, (name, values) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(values):
            if math.isnan(v):
                runs.append([])
            else:
                runs[-1].append(f"{x(i):.1f},{y(v):.1f}")
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{colour}"/>')
            elif run:
                parts.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
                    f'points="{" ".join(run)}"/>'
                )
        lx = WIDTH - PAD - 150
        ly = 14 + 14 * n
        # A run-time series says its latest value: a reader need not estimate it from the axis.
        latest = [v for v in values if not math.isnan(v)][-1:]
        legend = f"{name} {_label(latest[0], unit)}" if unit == "s" and latest else name
        parts.append(f'<rect x="{lx}" y="{ly - 8}" width="10" height="3" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 14}" y="{ly}">{escape(legend)}</text>')
    if not finite:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#777">'
            "no task finished in the last hour</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _label(value: float, unit: str) -> str:
    # Run times as qinfo and the lists show them: microseconds below a millisecond (a no-op's
    # p50 read "0.0 ms" in milliseconds).
    return seconds_text(value) if unit == "s" else f"{value:,.0f}"


CHARTS: dict[str, Any] = {
    "throughput": ("Tasks per minute, last hour", throughput, ""),
    "run-time": ("Run time p50 / p99, last hour", run_times, "s"),
}


def chart_response(name: str) -> HttpResponse:
    """The SVG of chart ``name`` (a key of :data:`CHARTS`)."""
    title, read, unit = CHARTS[name]
    xs, series = read()
    response = HttpResponse(svg(title, xs, series, unit=unit), content_type="image/svg+xml")
    response["Cache-Control"] = "private, max-age=10"
    return response
