"""The admin's task lists: all tasks, the failure list's error line, run time apart from the
time taken, and counts that stop at a cap (no COUNT(*) of the whole table); the list of
schedules, cut to fit as they are, in as many queries for many rows as for one."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from typing import Any

from django.core.management import call_command
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from packages.qdjango.tests import jobs

from qdjango import async_task, fetch, result, schedule
from qdjango.admin_tasks import COUNT_CAP, error_line
from qdjango.models import Schedule, Task

WAIT = 20_000


def test_all_tasks_lists_successes_and_failures_with_their_run_time(
    db_alias: str, cluster: Any, superuser_client: Any
) -> None:
    ok = async_task(jobs.add, 20, 22, group="lists")
    bad = async_task(jobs.fail, "the error line, not the traceback", group="lists")
    assert result(ok, wait=WAIT) == 42 and fetch(bad, wait=WAIT) is not None
    done = Task.objects.using(db_alias).get(pk=ok)
    assert done.run_time is not None and 0 <= done.run_time <= done.time_taken()
    page = superuser_client.get(reverse("admin:qdjango_task_changelist"))
    assert page.status_code == 200
    html = page.content.decode()
    assert done.name in html and Task.objects.using(db_alias).get(pk=bad).name in html
    assert "All tasks" in html or "all tasks" in html
    assert " ms<" in html or " µs<" in html  # a run time, below a second
    assert superuser_client.get(reverse("admin:qdjango_task_change", args=[ok])).status_code == 200
    only_failed = superuser_client.get(
        reverse("admin:qdjango_task_changelist") + "?success__exact=0"
    )
    assert Task.objects.using(db_alias).get(pk=bad).name in only_failed.content.decode()
    assert done.name not in only_failed.content.decode()
    failures = superuser_client.get(reverse("admin:qdjango_failure_changelist")).content.decode()
    assert "ValueError: the error line, not the traceback" in failures
    assert "Traceback (most recent call last)" not in failures
    recent = superuser_client.get(reverse("admin:qdjango_task_changelist") + "?finished=hour")
    assert done.name in recent.content.decode()
    out = io.StringIO()
    call_command("qinfo", stdout=out)
    assert "mean run" in out.getvalue() and "mean time taken" in out.getvalue()


def test_error_line_is_the_exception_line() -> None:
    assert error_line("ValueError: bad\n\nTraceback (most recent call last):\n  File x") == (
        "ValueError: bad"
    )
    bare = "Traceback (most recent call last):\n  File \"a.py\", line 1, in f\nKeyError: 'k'\n"
    assert error_line(bare) == "KeyError: 'k'"
    assert error_line("x" * 500).endswith("…") and len(error_line("x" * 500)) == 120


def test_a_long_list_counts_to_the_cap_only(
    db_alias: str, q_cluster: dict[str, Any], superuser_client: Any
) -> None:
    now = dt.datetime.now(dt.UTC)
    Task.objects.using(db_alias).bulk_create(
        [
            Task(id=uuid.uuid4().hex, name=f"row-{i}", func="m.f", started=now, stopped=now)
            for i in range(COUNT_CAP + 5)
        ],
        batch_size=2000,
    )
    with CaptureQueriesContext(connections[db_alias]) as queries:
        page = superuser_client.get(reverse("admin:qdjango_task_changelist"))
    assert page.status_code == 200
    assert "10,000+ all tasks" in page.content.decode()
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT" in sql.upper() for sql in counts), counts
    # "Show counts" (Django's facets): each choice counted to the cap, never the whole table.
    for model, expected in (("task", ["Yes (10,000+)", "No (0)"]), ("failure", [])):
        with CaptureQueriesContext(connections[db_alias]) as queries:
            page = superuser_client.get(reverse(f"admin:qdjango_{model}_changelist") + "?_facets=1")
        html = page.content.decode()
        shown = "Last hour (0)" if model == "failure" else "Last hour (10,000+)"
        for text in [shown, *expected]:
            assert text in html, (text, html[:4000])
        counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
        assert len(counts) >= 4 and all("LIMIT" in sql.upper() for sql in counts), counts


def test_the_search_finds_every_task_by_id_name_or_group_and_parts_among_the_newest(
    db_alias: str, q_cluster: dict[str, Any], superuser_client: Any
) -> None:
    from qdjango.admin_bounded import SEARCH_RECENT

    now = dt.datetime.now(dt.UTC)
    old = now - dt.timedelta(days=2)
    Task.objects.using(db_alias).bulk_create(
        [Task(id=uuid.uuid4().hex, name="old-needle", func="m.old", group="old-group",
              started=old, stopped=old)]
        + [Task(id=uuid.uuid4().hex, name=f"row-{i}", func="m.f", started=now, stopped=now)
           for i in range(SEARCH_RECENT)],
        batch_size=2000,
    )  # fmt: skip
    needle = Task.objects.using(db_alias).get(name="old-needle")
    url = reverse("admin:qdjango_task_changelist")

    def found(term: str) -> str:
        with CaptureQueriesContext(connections[db_alias]) as queries:
            page = superuser_client.get(url, {"q": term})
        assert page.status_code == 200
        # No query reads the table unbounded for a part: LIKE only among the newest, read
        # from the one SEARCH_RECENT back on.
        sqls = [q["sql"].upper() for q in queries.captured_queries]
        assert any(f"OFFSET {SEARCH_RECENT - 1}" in sql for sql in sqls), sqls
        for sql in sqls:
            if "LIKE" in sql:
                assert '"STOPPED" >=' in sql, sql
        return page.content.decode()

    for term in ("old-needle", needle.pk, "old-group"):
        assert ">old-needle<" in found(term), term
    # A part of its name: it is older than the newest SEARCH_RECENT tasks, so not found.
    assert ">old-needle<" not in found("needle")
    part = found("ow-777")
    assert ">row-777<" in part and ">row-7770<" in part and ">row-1<" not in part
    assert "among the newest" in part  # the search box says how it searches


def test_the_schedule_list_is_cut_to_fit_and_reads_its_last_runs_in_one_query(
    db_alias: str, q_cluster: dict[str, Any], superuser_client: Any
) -> None:
    ok = async_task(jobs.add, 1, 2, sync=True)
    url = reverse("admin:qdjango_schedule_changelist")

    def queries_of_the_list() -> tuple[int, str]:
        with CaptureQueriesContext(connections[db_alias]) as queries:
            page = superuser_client.get(url)
        assert page.status_code == 200
        return len(queries.captured_queries), page.content.decode()

    first = schedule("packages.qdjango.tests.jobs.add", 1, 2, name="nightly", cron="0 3 * * *",
                     schedule_type="C")  # fmt: skip
    Schedule.objects.filter(pk=first.pk).update(task=ok)
    one, html = queries_of_the_list()
    run = Task.objects.get(pk=ok)
    # The name links the schedule; the func is cut (the full path in its title); the last run
    # is its task's name, linking the task; next run as the task lists show times.
    change = reverse("admin:qdjango_schedule_change", args=[first.pk])
    assert f'<a href="{change}' in html and f'title="id {first.pk}">nightly</span>' in html
    assert 'title="packages.qdjango.tests.jobs.add">…jobs.add</span>' in html
    success = reverse("admin:qdjango_success_change", args=[ok])
    assert f'<a href="{success}" title="{ok}">{run.name}</a>' in html
    assert f"{first.next_run:%Y-%m}" in html and "a.m." not in html
    for i in range(5):
        row = schedule("packages.qdjango.tests.jobs.add", name=f"row {i}", cron="0 3 * * *",
                       schedule_type="C")  # fmt: skip
        Schedule.objects.filter(pk=row.pk).update(task=ok)
    many, html = queries_of_the_list()
    assert html.count(f">{run.name}</a>") == 6
    assert many == one, f"{many} queries for 6 schedules, {one} for one"


def test_a_list_sorts_by_its_indexed_columns_only_whatever_the_url_asks(
    db_alias: str, q_cluster: dict[str, Any], superuser_client: Any
) -> None:
    now = dt.datetime.now(dt.UTC)
    Task.objects.using(db_alias).bulk_create(
        [
            Task(id=uuid.uuid4().hex, name=f"row-{i}", func=f"m.f{9 - i}", success=i % 2 == 0,
                 started=now, stopped=now + dt.timedelta(seconds=i))
            for i in range(10)
        ]
    )  # fmt: skip
    url = reverse("admin:qdjango_task_changelist")

    def order(o: str) -> tuple[list[str], list[str]]:
        with CaptureQueriesContext(connections[db_alias]) as queries:
            page = superuser_client.get(url, {"o": o})
        assert page.status_code == 200
        sqls = [q["sql"] for q in queries.captured_queries if '"qdjango_task"' in q["sql"]]
        html = page.content.decode()
        return [f"row-{i}" for i in sorted(range(10), key=lambda i: html.index(f">row-{i}<"))], sqls

    newest_first = [f"row-{i}" for i in reversed(range(10))]
    # func (column 2: 0 is the action checkbox) and outcome (3): not sortable here, the list
    # stays newest first
    for o in ("2", "-2", "3", "-3", "2.3"):
        rows, sqls = order(o)
        assert rows == newest_first, o
        assert not any('ORDER BY "qdjango_task"."func"' in sql for sql in sqls)
        assert not any('ORDER BY "qdjango_task"."success"' in sql for sql in sqls)
    rows, _ = order("1")  # by name: one of the two it offers
    assert rows == sorted(newest_first)
