"""The Queue page in the admin's style: its live part on its own for the refresh, and the
last hour's charts drawn on the server as SVG."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.urls import reverse

from qdjango.admin_charts import run_times, throughput
from qdjango.models import Task

PAGE = "admin:qdjango_queuestatus_changelist"


def _rows(db_alias: str, minutes_ago: int, successes: int, failures: int, run: float) -> None:
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    Task.objects.using(db_alias).bulk_create(
        Task(
            id=uuid.uuid4().hex, name="n", func="m.f", started=at, stopped=at, success=ok,
            run_time=run,
        )
        for ok in [True] * successes + [False] * failures
    )  # fmt: skip


def test_the_page_refreshes_its_live_part_and_links_its_charts(
    db_alias: str, q_cluster: dict[str, Any], superuser_client: Any
) -> None:
    page = superuser_client.get(reverse(PAGE))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="q-live"' in html and "qdjango/refresh.js" in html and 'data-refresh="5"' in html
    assert reverse("admin:qdjango_queuestatus_chart", args=["throughput"]) in html
    assert "cdn" not in html.lower()
    live = superuser_client.get(reverse(PAGE) + "?live=1").content.decode()
    assert 'id="q-sizes"' in live and "<html" not in live


def test_the_charts_count_the_last_hour(
    db_alias: str, q_cluster: dict[str, Any], superuser_client: Any
) -> None:
    _rows(db_alias, 10, successes=7, failures=2, run=0.004)
    _rows(db_alias, 10, successes=1, failures=0, run=0.5)
    _rows(db_alias, 90, successes=50, failures=50, run=9.0)  # over an hour ago: not counted
    minutes, series = throughput()
    assert sum(series["succeeded"]) == 8 and sum(series["failed"]) == 2
    assert len(minutes) == 61
    _steps, quantiles = run_times()
    finite = [v for v in quantiles["p50"] if v == v]
    assert finite == [0.004] and max(v for v in quantiles["p99"] if v == v) > 0.4
    for name in ("throughput", "run-time"):
        response = superuser_client.get(reverse("admin:qdjango_queuestatus_chart", args=[name]))
        assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
        assert b"<polyline" in response.content or b"<circle" in response.content
    missing = reverse("admin:qdjango_queuestatus_chart", args=["nope"])
    assert superuser_client.get(missing).status_code == 404


def test_the_charts_need_the_page_s_permission(db_alias: str, client: Any) -> None:
    url = reverse("admin:qdjango_queuestatus_chart", args=["throughput"])
    assert client.get(url).status_code == 302  # to the login page


def test_sub_millisecond_run_times_read_in_microseconds(
    db_alias: str, q_cluster: dict[str, Any], superuser_client: Any
) -> None:
    _rows(db_alias, 10, successes=3, failures=0, run=0.00042)
    _rows(db_alias, 10, successes=1, failures=0, run=0.000031)
    chart = superuser_client.get(reverse("admin:qdjango_queuestatus_chart", args=["run-time"]))
    svg = chart.content.decode()
    # The axis (its top, the p99; its middle) and the legend's latest p50 and p99.
    assert "0.0 ms" not in svg and "ms" not in svg, svg
    assert ">p50 420 µs<" in svg and "µs</text>" in svg
    listed = superuser_client.get(reverse("admin:qdjango_task_changelist")).content.decode()
    assert "420 µs" in listed and "31 µs" in listed
