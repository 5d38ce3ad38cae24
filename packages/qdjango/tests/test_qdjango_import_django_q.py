"""``manage.py q_import_django_q`` on a database migrated and filled by the real django-q2
(installed in a throwaway virtualenv with uv), on SQLite and PostgreSQL: successes and
failures imported with their values, a malicious pickle never unpickled, broken rows
reported and skipped (exit status 1), a dry run that writes nothing, a second run that
changes nothing."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

SITE = Path(__file__).with_name("django_q2_site.py")
DJANGO_Q2 = "django-q2==1.11.1"


@pytest.fixture(scope="session")
def django_q2_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A virtualenv with the real django-q2 (and croniter, for its cron schedules), the Django
    version of this run and psycopg."""
    import django

    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH: the test installs django-q2 with it")
    venv = tmp_path_factory.mktemp("django-q2-venv")
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", python, DJANGO_Q2, "croniter",
         f"django=={django.__version__}", "psycopg[binary]"],
        check=True,
    )  # fmt: skip
    return python


def _site(python: str, command: str, database: dict[str, Any], trap: Path) -> str:
    env = {
        **os.environ,
        "DQ2_DATABASE": json.dumps(database),
        "DQ2_TRAP": str(trap),
        "PYTHONPATH": "",
    }
    done = subprocess.run(
        [python, str(SITE), command], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def django_q2_rows(
    django_q2_python: str, db_alias: str, q_cluster: dict[str, Any], tmp_path: Path
) -> Iterator[tuple[dict[str, str], Path]]:
    """django-q2's tables and rows, in the very database Q's tables are in for this test."""
    from django.db import connections

    live = connections[db_alias].settings_dict
    keep = ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT")
    database = {k: live[k] for k in keep if live.get(k) not in (None, "")}
    if "PORT" in database:
        database["PORT"] = str(database["PORT"])
    connections[db_alias].close()
    trap = tmp_path / "trap"
    ids = json.loads(_site(django_q2_python, "setup", database, trap).splitlines()[-1])
    yield ids, trap
    connections[db_alias].close()
    _site(django_q2_python, "teardown", database, trap)


def _import(db_alias: str, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("q_import_django_q", "--database", db_alias, *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


def _snapshot(alias: str) -> list[tuple[Any, ...]]:
    from qdjango.models import Task

    return [
        (t.id, t.name, t.func, repr(t.args), repr(t.kwargs), repr(t.result), t.group,
         t.started, t.stopped, t.success, t.attempt_count, t.cluster)
        for t in Task.objects.using(alias).order_by("id")
    ]  # fmt: skip


@pytest.mark.slow
def test_import_of_a_real_django_q2_history(
    django_q2_rows: tuple[dict[str, str], Path], db_alias: str
) -> None:
    from qdjango.fields import Unreadable
    from qdjango.models import Task

    ids, trap = django_q2_rows

    code, out = _import(db_alias, "--dry-run", "--only", "tasks")
    assert code == 1, out
    assert "tasks: would import 5, already in Q 0, skipped 2" in out
    assert Task.objects.using(db_alias).count() == 0

    code, out = _import(db_alias, "--only", "tasks")
    assert code == 1, out
    assert "tasks: imported 5, already in Q 0, skipped 2, imported with values left out 2" in out
    assert f"tasks: skipped {ids['broken']}: args: not base64" in out
    assert f"tasks: skipped {ids['bad_id']}: id 'not-a-task-id' is not a task id" in out
    assert "2 row(s) skipped" in out
    assert not trap.exists(), "a pickle from the table was unpickled as it stood"

    rows = {t.id: t for t in Task.objects.using(db_alias)}
    assert set(rows) == {ids[k] for k in ("success", "failure", "rich", "site_class", "malicious")}
    ok = rows[ids["success"]]
    assert (ok.func, ok.args, ok.result, ok.success, ok.group) == (
        "math.copysign",
        (2, -2),
        -2.0,
        True,
        "legacy",
    )
    assert ok.time_taken() >= 0
    failed = rows[ids["failure"]]
    assert failed.success is False and "division by zero" in str(failed.result)
    rich = rows[ids["rich"]]
    assert rich.args == (decimal.Decimal("9.99"), dt.date(2024, 2, 29), {"tags": {"a", "b"}})
    assert rich.result == [1, 2.5, "three", b"four", None]
    assert isinstance(rich.kwargs["when"], dt.datetime)
    assert rich.time_taken() == pytest.approx(3, abs=0.01) and rich.cluster == "legacy"
    shape = rows[ids["site_class"]]
    assert isinstance(shape.args, Unreadable) and "__main__.Shape" in shape.args.reason
    assert isinstance(shape.result, Unreadable)
    assert f"tasks: imported {ids['site_class']} without args" in out
    evil = rows[ids["malicious"]]
    assert isinstance(evil.args, Unreadable) and "posix.system" in evil.args.reason
    assert evil.func == "os.getcwd"

    before = _snapshot(db_alias)
    code, again = _import(db_alias, "--only", "tasks")
    assert code == 1
    assert "tasks: imported 0, already in Q 5, skipped 2, imported with values left out 0" in again
    assert _snapshot(db_alias) == before
    assert not trap.exists()


@pytest.mark.slow
def test_import_of_real_django_q2_schedules(
    django_q2_rows: tuple[dict[str, str], Path], db_alias: str
) -> None:
    from qdjango.models import Schedule
    from qdjango.schedules import schedule, schedule_id, spec_for, store

    ids, _ = django_q2_rows
    code, out = _import(db_alias, "--only", "schedules", "--dry-run")
    assert code == 1, out
    assert "schedules: would import 4, already in Q 0, skipped 3" in out
    assert Schedule.objects.using(db_alias).count() == 0 and store().ids() == []

    code, out = _import(db_alias, "--only", "schedules")
    assert code == 1, out
    assert "schedules: imported 4, already in Q 0, skipped 3" in out
    assert f"#{ids['bad-cron']} (bad-cron): cron:" in out and "not a valid cron" in out
    assert f"#{ids['bad-func']} (bad-func): func:" in out
    assert f"#{ids['bad-args']} (bad-args): args:" in out
    assert "without q_options broker_name" in out
    rows = {str(s.pk): s for s in Schedule.objects.using(db_alias)}
    assert set(rows) == {ids[k] for k in ("s_once", "s_minutes", "s_cron", "s_daily")}
    minutes = rows[ids["s_minutes"]]
    assert (minutes.name, minutes.schedule_type, minutes.minutes, minutes.repeats) == (
        "every-5", "I", 5, 7,
    )  # fmt: skip
    spec = spec_for(minutes)
    assert spec.args == (3, 4) and spec.q_options == {"timeout": 30}
    assert spec_for(rows[ids["s_daily"]]).hook == "math.fabs"
    assert spec_for(rows[ids["s_cron"]]).cron == "0 6 * * 1-5"
    # Each is in Redis, due at its next_run.
    for row in rows.values():
        state = store().get(schedule_id(row.pk))
        assert state is not None and state.due_ms == round(row.next_run.timestamp() * 1000)

    code, again = _import(db_alias, "--only", "schedules")
    assert code == 1 and "schedules: imported 0, already in Q 4, skipped 3" in again
    # The id sequence moved past the imported ids: Q's next schedule gets a fresh one.
    fresh = schedule("math.floor", 1.5, name="made in Q")
    assert str(fresh.pk) not in rows


@pytest.mark.django_db
def test_no_django_q2_table_is_nothing_to_import() -> None:
    code, out = _import("default")
    assert code == 0 and "tasks: no table django_q_task, nothing to import" in out
    assert "schedules: no table django_q_schedule, nothing to import" in out


@pytest.fixture(scope="session")
def side_by_side_python(django_q2_python: str) -> str:
    """The django-q2 virtualenv with Q's four packages installed beside it."""
    root = Path(__file__).resolve().parents[3]
    packages = [
        str(root / "packages" / name) for name in ("qcore", "qredis", "qcluster", "qdjango")
    ]
    uv = shutil.which("uv")
    assert uv is not None
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", django_q2_python, *packages], check=True
    )
    return django_q2_python


@pytest.mark.slow
def test_django_q2_and_q_run_side_by_side_on_one_site(
    side_by_side_python: str, tmp_path: Path
) -> None:
    database = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "site.sqlite3")}
    done = subprocess.run(
        [side_by_side_python, str(Path(__file__).with_name("side_by_side_site.py"))],
        env={**os.environ, "DQ2_DATABASE": json.dumps(database), "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["django_q2"] == -2.0 and seen["q"] == -3.0
    assert seen["q_rows"] == ["math.copysign"]
    # Q's check warns about django-q2's keys and reports no error.
    assert "qdjango.W001" in seen["check"] and "'orm'" in seen["check"]
    assert "'cached'" in seen["check"] and "ERRORS" not in seen["check"]
    # Django runs the qcluster command of the app listed first.
    assert seen["qcluster_command_of"] == "django_q"
