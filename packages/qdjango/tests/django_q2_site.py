"""A django-q2 site, run by the real django-q2 in a throwaway virtualenv (never imported by
Q's tests): ``python django_q2_site.py setup|teardown`` with ``DQ2_DATABASE`` (JSON of one
``DATABASES`` entry) and ``DQ2_TRAP`` (a path a malicious pickle would create).

``setup`` migrates django-q2's tables and writes its task history through its own API: a
success run by ``async_task(..., sync=True)``, a failure (saved by its model as its monitor
would: in sync mode django-q2 re-raises before saving), rows made with its models, and
rows it would never make itself (a pickle that runs a command, a value that is not a pickle,
a bad id). It prints the ids as JSON. ``teardown`` migrates django_q back to zero.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import os
import pickle
import sys

import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=["django_q"],
    DATABASES={"default": json.loads(os.environ["DQ2_DATABASE"])},
    USE_TZ=True,
    TIME_ZONE="UTC",
    SECRET_KEY="django-q2-site-secret-0123456789abcdefghijklmnop",
    # The ORM broker: no Redis needed, and sync runs everything inline anyway.
    Q_CLUSTER={"name": "legacy", "orm": "default", "sync": True, "save_limit": 0},
    LOGGING_CONFIG=None,
)
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402


class Shape:
    """A class of the site: its instances pickle by reference to it."""

    def __init__(self, sides: int) -> None:
        self.sides = sides


def setup() -> dict[str, str]:
    call_command("migrate", "django_q", verbosity=0)
    from django.utils import timezone
    from django_q.models import Task
    from django_q.tasks import async_task, fetch

    ids: dict[str, str] = {}
    ids["success"] = async_task("math.copysign", 2, -2, group="legacy", sync=True)
    try:
        async_task("operator.truediv", 1, 0, sync=True)
    except ZeroDivisionError:
        pass
    failed = Task.objects.filter(success=False).first()
    if failed is None:
        # django-q2 re-raises in sync mode before saving: record it as its monitor would.
        now = timezone.now()
        failed = Task.objects.create(
            id="f" * 32, name="failed-row", func="operator.truediv", args=(1, 0), kwargs={},
            result="division by zero : Traceback ...", started=now, stopped=now,
            success=False, attempt_count=1,
        )  # fmt: skip
    ids["failure"] = failed.id
    assert fetch(ids["success"]).result == -2.0

    now = timezone.now()
    rich = Task.objects.create(
        id="a" * 32, name="rich-values", func="myapp.tasks.bill",
        args=(decimal.Decimal("9.99"), dt.date(2024, 2, 29), {"tags": {"a", "b"}}),
        kwargs={"when": now}, result=[1, 2.5, "three", b"four", None], group="legacy",
        started=now - dt.timedelta(seconds=3), stopped=now, success=True, cluster="legacy",
    )  # fmt: skip
    ids["rich"] = rich.id
    site_class = Task.objects.create(
        id="b" * 32, name="site-class", func="myapp.tasks.draw", args=(Shape(3),), kwargs={},
        result=Shape(4), started=now, stopped=now, success=True,
    )  # fmt: skip
    ids["site_class"] = site_class.id

    # Rows django-q2 never writes, written into its table as anyone with the database could.
    trap = os.environ["DQ2_TRAP"]

    class Trap:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {trap}",))

    evil = base64.b64encode(pickle.dumps((Trap(),))).decode()
    ids["malicious"] = "c" * 32
    ids["broken"] = "d" * 32
    ids["bad_id"] = "not-a-task-id"
    table = connection.ops.quote_name("django_q_task")
    columns = "id, name, func, args, kwargs, result, started, stopped, success, attempt_count"
    sql = f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, NULL, NULL, %s, %s, %s, 0)"
    with connection.cursor() as cursor:
        cursor.execute(sql, [ids["malicious"], "malicious", "os.getcwd", evil, now, now, True])
        cursor.execute(sql, [ids["broken"], "broken", "os.getcwd", "not a pickle!", now, now, True])
        cursor.execute(sql, [ids["bad_id"], "bad-id", "os.getcwd", None, now, now, True])
    ids.update(schedules(now))
    return ids


def schedules(now: dt.datetime) -> dict[str, str]:
    """django-q2's schedules, made by its API, and three rows it would refuse, written by hand."""
    from django_q.models import Schedule
    from django_q.tasks import schedule

    later = now + dt.timedelta(hours=1)
    made = {
        "s_once": schedule("math.copysign", 2, -2, name="legacy-once", next_run=later),
        "s_minutes": schedule("math.hypot", 3, 4, name="every-5", schedule_type=Schedule.MINUTES,
                              minutes=5, next_run=later, repeats=7,
                              q_options={"timeout": 30, "broker_name": "legacy"}),
        "s_cron": schedule("math.floor", 1.5, name="weekdays", schedule_type=Schedule.CRON,
                           cron="0 6 * * 1-5"),
        "s_daily": schedule("math.ceil", 2.5, schedule_type=Schedule.DAILY, next_run=later,
                            hook="math.fabs"),
    }  # fmt: skip
    table = connection.ops.quote_name("django_q_schedule")
    sql = (
        f"INSERT INTO {table} (name, func, args, kwargs, schedule_type, repeats, next_run, cron)"
        " VALUES (%s, %s, %s, NULL, %s, -1, %s, %s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, ["bad-cron", "math.floor", "1.5", "C", later, "99 * * * *"])
        cursor.execute(sql, ["bad-func", "nosuch.module.func", None, "O", later, None])
        cursor.execute(sql, ["bad-args", "math.floor", "not a literal(", "O", later, None])
    out = {key: str(row.pk) for key, row in made.items()}
    for name in ("bad-cron", "bad-func", "bad-args"):
        out[name] = str(Schedule.objects.get(name=name).pk)
    return out


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        print(json.dumps(setup()))
    else:
        call_command("migrate", "django_q", "zero", verbosity=0)
