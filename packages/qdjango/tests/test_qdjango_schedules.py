"""Django Q's schedules on Q: the API and its validation, the mirror into Redis, firings written
back to the rows, the admin page and actions, settings; and three clusters on one Redis and one
database firing 200 Once schedules, each exactly once."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.test import override_settings
from django.urls import reverse
from packages.qdjango.tests import jobs
from packages.qdjango.tests.conftest import q_cluster_value
from tests.cluster.support import eventually

from qdjango import schedule
from qdjango.conf import problems
from qdjango.models import Schedule, Task
from qdjango.schedules import reconcile, schedule_id, spec_for, store

ADD = "packages.qdjango.tests.jobs.add"


def soon(seconds: float = 1.0) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def test_schedule_validates_like_django_q(db_alias: str, q_cluster: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as bad_cron:
        schedule(ADD, 1, 2, schedule_type="C", cron="61 * * * *")
    assert "cron" in bad_cron.value.message_dict
    with pytest.raises(ValidationError) as bad_type:
        schedule(ADD, schedule_type="Z")
    assert "schedule_type" in bad_type.value.message_dict
    with pytest.raises(ValidationError) as no_minutes:
        schedule(ADD, schedule_type="I")
    assert "minutes" in no_minutes.value.message_dict
    with pytest.raises(ValidationError) as repeats:
        schedule(ADD, repeats=-2)
    assert "repeats" in repeats.value.message_dict
    with pytest.raises(ValidationError) as naive:
        schedule(ADD, next_run=datetime(2030, 1, 1, 2, 30))
    assert "next_run" in naive.value.message_dict
    with pytest.raises(ValidationError) as func:
        schedule("packages.qdjango.tests.jobs.no_such_function")
    assert "func" in func.value.message_dict
    with pytest.raises(ValidationError) as kwarg:
        schedule(ADD, intended_date_kwarg="not an identifier")
    assert "intended_date_kwarg" in kwarg.value.message_dict
    assert Schedule.objects.count() == 0  # nothing saved, nothing half-mirrored
    assert store().ids() == []
    schedule(ADD, 1, 2, name="named", next_run=soon(3600))
    with pytest.raises(IntegrityError):
        schedule(ADD, name="named")
    row = schedule("packages.qdjango.tests.jobs.echo", word="django", q_options={"timeout": 9},
                   next_run=soon(3600))  # fmt: skip
    spec = spec_for(row)
    assert spec.kwargs == {"word": "django"} and spec.q_options == {"timeout": 9}
    row.kwargs = "x=1, y='a'"
    assert spec_for(row).kwargs == {"x": 1, "y": "a"}


def test_saves_and_deletes_are_mirrored_into_redis(
    db_alias: str, q_cluster: dict[str, Any]
) -> None:
    at = soon(3600)
    row = schedule(ADD, 1, 2, schedule_type="I", minutes=5, next_run=at)
    state = store().get(schedule_id(row.pk))
    assert state is not None and state.due_ms == round(at.timestamp() * 1000)
    assert state.spec.minutes == 5 and state.spec.args == (1, 2)
    row.repeats = 0  # paused
    row.save()
    assert store().get(schedule_id(row.pk)).due_ms is None  # type: ignore[union-attr]
    row.delete()
    assert store().get(schedule_id(row.pk)) is None


def test_a_new_cron_schedule_starts_at_its_first_cron_time(
    db_alias: str, q_cluster: dict[str, Any]
) -> None:
    row = schedule(ADD, 1, 2, schedule_type="C", cron="15 * * * *")
    assert row.next_run > datetime.now(UTC) - timedelta(seconds=1)
    assert (row.next_run.minute, row.next_run.second, row.next_run.microsecond) == (15, 0, 0)
    state = store().get(schedule_id(row.pk))
    assert state is not None and state.due_ms == round(row.next_run.timestamp() * 1000)


def test_reconcile_writes_missing_rows_and_drops_orphans(
    db_alias: str, q_cluster: dict[str, Any]
) -> None:
    row = schedule(ADD, 1, 2, next_run=soon(3600))
    store().remove(schedule_id(row.pk))  # saved while Redis was unreachable, say
    orphan = spec_for(row).with_(id="dj:999999")
    store().add(orphan)  # its row was deleted outside the ORM
    assert reconcile() == (1, 1)
    assert store().ids() == [schedule_id(row.pk)]
    assert reconcile() == (0, 0)


def test_a_row_changed_outside_q_is_never_run(db_alias: str, q_cluster: dict[str, Any]) -> None:
    from qdjango.schedules import UnsignedRow, mirror

    row = schedule(ADD, 1, 2, name="tampered", schedule_type="I", minutes=5, next_run=soon(60))
    other = schedule(ADD, 3, 4, name="untouched", next_run=soon(60))
    assert store().get(schedule_id(row.pk)) is not None
    # Someone who can write the database (not hold the secret) points it at their code.
    Schedule.objects.filter(pk=row.pk).update(func="os.system", args="'touch /tmp/owned'")
    row.refresh_from_db()
    with pytest.raises(UnsignedRow, match="not saved by Q"):
        mirror(row)
    assert reconcile() == (0, 1)  # taken out of Redis at the next cluster start
    assert store().ids() == [schedule_id(other.pk)]
    # What the clusters write back (next run, repeats, last task) is not what it runs.
    Schedule.objects.filter(pk=other.pk).update(repeats=3, task="x" * 32)
    other.refresh_from_db()
    assert mirror(other) is True
    # Saved by Q again (the admin, Schedule.save()), it is signed again and runs.
    row.func, row.args = ADD, "1, 2"
    row.save()
    assert store().get(schedule_id(row.pk)) is not None


def test_settings_scheduler_catch_up_and_time_zone_are_real(settings: Any) -> None:
    assert problems({"scheduler": False, "catch_up": False, "time_zone": "Europe/Amsterdam"}) == []
    assert problems({"time_zone": "Mars/Olympus"})[0][0] == "qdjango.E004"
    from qdjango.conf import parse

    settings.TIME_ZONE = "America/New_York"
    assert parse({}).cluster.time_zone == "America/New_York"
    assert parse({"time_zone": "UTC"}).cluster.time_zone == "UTC"
    assert parse({"catch_up": False}).cluster.catch_up is False


def test_a_daily_schedule_keeps_0230_in_the_sites_time_zone_across_dst(
    db_alias: str, settings: Any, q_cluster: dict[str, Any]
) -> None:
    settings.Q_CLUSTER = {**q_cluster, "time_zone": "Europe/Amsterdam"}
    from zoneinfo import ZoneInfo

    ams = ZoneInfo("Europe/Amsterdam")
    row = schedule(ADD, 1, 1, schedule_type="D", next_run=datetime(2021, 3, 27, 2, 30, tzinfo=ams))
    spec = spec_for(row)
    assert spec.time_zone == "Europe/Amsterdam"
    first = spec.anchor_ms
    second = spec.next_due(first)
    third = spec.next_due(second)  # type: ignore[arg-type]
    runs = [datetime.fromtimestamp(t / 1000, ams) for t in (first, second, third)]  # type: ignore[operator]
    assert [(r.day, r.hour, r.minute) for r in runs] == [(27, 2, 30), (28, 3, 30), (29, 2, 30)]


def test_the_cluster_fires_schedules_and_writes_back_to_the_rows(
    db_alias: str, cluster: Any
) -> None:
    key = f"runs-{uuid.uuid4().hex[:8]}"
    redis_url = _redis_url()
    once = schedule(ADD, 2, 3, next_run=soon(0.5))
    every = schedule(jobs.count_run, redis_url, key, schedule_type="I", minutes=1, repeats=2,
                     next_run=soon(0.5), intended_date_kwarg="when", name="counted")  # fmt: skip
    failing = schedule(jobs.fail, "scheduled failure", schedule_type="I", minutes=1,
                       next_run=soon(0.5))  # fmt: skip
    # A Once schedule with repeats -1 fires once and its row is deleted, as in Django Q.
    eventually(lambda: not Schedule.objects.filter(pk=once.pk).exists(), what="once to fire")
    fired = eventually(lambda: Task.objects.filter(group=schedule_id(once.pk)).first(),
                       what="the Once schedule's task")  # fmt: skip
    assert fired.result == 5
    row = eventually(lambda: Schedule.objects.filter(pk=every.pk, repeats=1).first(),
                     what="the Minutes schedule to fire")  # fmt: skip
    due = round(every.next_run.timestamp() * 1000)
    assert row.next_run == datetime.fromtimestamp((due + 60_000) / 1000, UTC)
    run = eventually(lambda: Task.objects.filter(pk=row.task).first(), what="its task")
    assert run.success and run.group == "counted"
    assert run.options["schedule"] == schedule_id(every.pk)  # the firing says what fired it
    assert run.options["due"] == due / 1000
    assert run.result == datetime.fromtimestamp(due / 1000, UTC).isoformat()  # intended date
    # A schedule whose function fails keeps firing; its failures are Failure records.
    bad = eventually(lambda: Schedule.objects.filter(pk=failing.pk).exclude(task=None).first(),
                     what="the failing schedule to fire")  # fmt: skip
    failure = eventually(lambda: Task.objects.filter(pk=bad.task).first(), what="its failure")
    assert not failure.success and "scheduled failure" in failure.result
    assert bad.repeats == -1 and bad.next_run > failing.next_run


def _redis_url() -> str:
    from django.conf import settings

    return str(settings.Q_CLUSTER["redis"])


def test_admin_pages_validation_and_actions(
    db_alias: str, cluster: Any, superuser_client: Any
) -> None:
    row = schedule(ADD, 1, 2, name="in the admin", schedule_type="D", next_run=soon(3600))
    pages = [
        reverse("admin:qdjango_schedule_changelist"),
        reverse("admin:qdjango_schedule_changelist") + "?schedule_type__exact=D",
        reverse("admin:qdjango_schedule_add"),
        reverse("admin:qdjango_schedule_change", args=[row.pk]),
        reverse("admin:qdjango_schedule_delete", args=[row.pk]),
    ]
    for url in pages:
        assert superuser_client.get(url).status_code == 200, url
    form = {
        "name": "bad cron", "func": ADD, "args": "1, 2", "kwargs": "", "schedule_type": "C",
        "cron": "99 * * * *", "repeats": "-1", "next_run_0": "2030-01-01", "next_run_1": "00:00:00",
    }  # fmt: skip
    response = superuser_client.post(reverse("admin:qdjango_schedule_add"), form)
    assert response.status_code == 200 and b"not a valid cron expression" in response.content
    assert not Schedule.objects.filter(name="bad cron").exists()
    form.update(cron="*/5 * * * *", name="good cron")
    response = superuser_client.post(reverse("admin:qdjango_schedule_add"), form)
    assert response.status_code == 302
    good = Schedule.objects.get(name="good cron")
    assert store().get(schedule_id(good.pk)) is not None
    # Run now: a task of its own, the schedule's timing unchanged.
    changelist = reverse("admin:qdjango_schedule_changelist")
    response = superuser_client.post(
        changelist, {"action": "run_now", "_selected_action": [row.pk]}, follow=True
    )
    assert b"queued to run now" in response.content
    row.refresh_from_db()
    run = eventually(lambda: Task.objects.filter(pk=row.task).first(), what="the run-now task")
    assert run.result == 3
    page = superuser_client.get(changelist).content.decode()
    assert reverse("admin:qdjango_success_change", args=[run.pk]) in page  # last run links it
    # Pause: repeats 0, and not due in Redis any more.
    superuser_client.post(changelist, {"action": "pause", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert row.repeats == 0 and store().get(schedule_id(row.pk)).due_ms is None  # type: ignore[union-attr]
    superuser_client.post(changelist, {"action": "resume", "_selected_action": [row.pk]})
    assert store().get(schedule_id(row.pk)).due_ms is not None  # type: ignore[union-attr]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
def test_three_clusters_on_postgres_fire_200_once_schedules_exactly_once(
    settings: Any, cluster_redis: Any
) -> None:
    from qdjango.cluster import build_cluster, close_connections

    if "postgres" not in settings.DATABASES:
        pytest.skip("PostgreSQL is not answering on 127.0.0.1:5432")
    cluster_redis.start()
    queue = f"qs-{uuid.uuid4().hex[:8]}"
    value = q_cluster_value(cluster_redis.url, queue, "postgres")
    key = f"runs-{queue}"
    clusters = []
    with override_settings(Q_CLUSTER=value, DATABASE_ROUTERS=["qdjango.routers.QRouter"]):
        start = soon(3.0)
        for i in range(200):
            schedule(jobs.count_run, cluster_redis.url, key, intended_date_kwarg="when",
                     next_run=start + timedelta(milliseconds=10 * (i % 100)), name=f"once-{i}",
                     repeats=1)  # fmt: skip
        # Ten rows saved while Redis was unreachable, say: the clusters' schedulers reconcile
        # the table with Redis when they start, so these fire too.
        for row in Schedule.objects.using("postgres").order_by("pk")[:10]:
            assert store().remove(schedule_id(row.pk))
        for i in range(3):
            cluster = build_cluster(name=f"{queue}-{i}")
            close_connections()
            cluster.start(wait=120)
            clusters.append(cluster)
        try:
            client = redis.Redis.from_url(cluster_redis.url)
            eventually(lambda: sum(int(v) for v in client.hvals(key)) >= 200, timeout=60,
                       what="200 runs")  # fmt: skip
            eventually(lambda: Schedule.objects.using("postgres").filter(repeats=0).count() == 200,
                       timeout=30, what="every row written back")  # fmt: skip
            time.sleep(1.5)  # room for a second firing, were there one
            counts = {k.decode(): int(v) for k, v in client.hgetall(key).items()}
            client.close()
        finally:
            codes = [c.stop(timeout=30) for c in clusters]
    assert codes == [0, 0, 0]
    # 100 distinct due times (two schedules each): each schedule ran exactly once.
    assert len(counts) == 100 and set(counts.values()) == {2}
    tasks = set(Schedule.objects.using("postgres").values_list("task", flat=True))
    assert len(tasks) == 200 and None not in tasks


def test_qinfo_and_qmonitor_show_the_next_due_schedules(
    db_alias: str, q_cluster: dict[str, Any]
) -> None:
    import io

    from django.core.management import call_command

    schedule(ADD, 1, 2, name="shown-next", schedule_type="H", next_run=soon(90))
    schedule(ADD, 1, 2, name="paused-one", repeats=0, next_run=soon(30))
    for command, extra in (("qinfo", []), ("qmonitor", ["--run-once"])):
        out = io.StringIO()
        call_command(command, *extra, stdout=out)
        text = out.getvalue()
        assert "Next schedules" in text and "shown-next" in text, command
        assert "paused-one" not in text  # not due: not next
