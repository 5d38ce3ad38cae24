"""``manage.py check`` on Q_CLUSTER, ``qinfo``, ``qmonitor --once`` and ``qcluster``."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from packages.qdjango.tests import jobs

from qdjango import async_task, fetch, result

WAIT = 20_000


def _check(settings: Any, value: Any) -> str:
    settings.Q_CLUSTER = value
    with pytest.raises(SystemCheckError) as caught:
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
    return str(caught.value)


def test_check_passes_for_a_good_q_cluster(settings: Any) -> None:
    settings.Q_CLUSTER = {"name": "site", "workers": 2, "timeout": 30, "retry": 60}
    out = io.StringIO()
    call_command("check", stdout=out)
    assert "no issues" in out.getvalue()


def test_check_reports_unknown_and_bad_values(settings: Any) -> None:
    report = _check(
        settings,
        {"name": "site", "wokers": 4, "orm": "default", "save_limit": "lots", "timeout": 90},
    )
    assert (
        "qdjango.E002" in report
        and "Q_CLUSTER['wokers'] is not a setting; did you mean 'workers'?" in report
    )
    assert "Q_CLUSTER['orm'] is a Django Q setting that Q does not have" in report
    assert "qdjango.E003" in report and "save_limit" in report
    # retry (default 60) must exceed timeout (90): the cluster's own validation, reported too.
    assert "qdjango.E004" in report and "retry (60) must be greater than timeout (90)" in report


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (["not", "a", "dict"], "qdjango.E001"),
        ({"workers": 0}, "workers must be an integer >= 1"),
        ({"redis": 6379}, "must be a URL"),
        ({"redis": "localhost:6379"}, "redis://host:6379/0"),
        ({"django_redis": "nope"}, "'nope' is not an alias in CACHES"),
        ({"django_redis": "default"}, "not django-redis"),
        ({"compress": -1}, "compress"),
        ({"sync": "yes"}, "must be True or False"),
        ({"database": "elsewhere"}, "an alias from DATABASES"),
        ({"start_method": "thread"}, "start_method must be one of"),
    ],
)
def test_check_names_each_problem(settings: Any, value: Any, needle: str) -> None:
    assert needle in _check(settings, value)


def test_bad_settings_fail_at_cluster_start_up(settings: Any) -> None:
    from qcore import ConfigError
    from qdjango.cluster import build_cluster

    settings.Q_CLUSTER = {"workers": "many"}
    with pytest.raises(ConfigError, match="workers must be an integer"):
        build_cluster()


def test_qinfo_and_qmonitor_once(db_alias: str, cluster: Any) -> None:
    task_id = async_task(jobs.add, 2, 3)
    assert result(task_id, wait=WAIT) == 5
    assert fetch(async_task(jobs.fail, "counted"), wait=WAIT) is not None
    out = io.StringIO()
    call_command("qinfo", stdout=out)
    info = out.getvalue()
    assert cluster.cluster_id in info
    assert "Queues" in info and "Results" in info and "last 24 h" in info

    out = io.StringIO()
    call_command("qinfo", "--config", stdout=out)
    assert "save_limit" in out.getvalue() and "start_method" in out.getvalue()

    out = io.StringIO()
    call_command("qinfo", "--ids", stdout=out)
    assert out.getvalue().split() == [cluster.cluster_id]

    out = io.StringIO()
    call_command("qmonitor", "--once", stdout=out)
    frame = out.getvalue()
    assert "Workers" in frame and cluster.cluster_id in frame


def test_qinfo_when_redis_is_down(db_alias: str, settings: Any, q_cluster: dict[str, Any]) -> None:
    from django.core.management.base import CommandError
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    from tests.support.servers import free_port

    nowhere = {"host": "127.0.0.1", "port": free_port(), "retry": Retry(NoBackoff(), 0)}
    settings.Q_CLUSTER = {**q_cluster, "redis": nowhere}
    with pytest.raises(CommandError, match="cannot read the queue"):
        call_command("qinfo", stdout=io.StringIO())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_manage_py_qcluster_runs_and_stops_on_sigterm(
    settings: Any, redis_url: str, queue_name: str
) -> None:
    from django.db import connections

    value = {"name": queue_name, "workers": 1, "redis": redis_url, "save_limit": 0}
    settings.Q_CLUSTER = value
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "packages.qdjango.tests.settings",
        "QDJANGO_TEST_Q_CLUSTER": json.dumps(value),
        "QDJANGO_TEST_SQLITE": str(connections["default"].settings_dict["NAME"]),
        "PYTHONPATH": os.getcwd(),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "django", "qcluster", "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        task_id = async_task(jobs.add, 40, 2)
        assert result(task_id, wait=60_000) == 42
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode(errors="replace")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_manage_py_qcluster_queue_replaces_the_queues_of_q_cluster(
    settings: Any, redis_url: str, queue_name: str
) -> None:
    from django.db import connections

    from qdjango.connection import queue_transport

    first, second = f"{queue_name}-1", f"{queue_name}-2"
    value = {"name": queue_name, "workers": 1, "redis": redis_url, "save_limit": 0}
    value["queues"] = [first, second]
    settings.Q_CLUSTER = value
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "packages.qdjango.tests.settings",
        "QDJANGO_TEST_Q_CLUSTER": json.dumps(value),
        "QDJANGO_TEST_SQLITE": str(connections["default"].settings_dict["NAME"]),
        "PYTHONPATH": os.getcwd(),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "django", "qcluster", "--queue", second, "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        waiting = async_task(jobs.add, 1, 1, q_options={"queue": first})
        served = async_task(jobs.add, 40, 2, q_options={"queue": second})
        assert result(served, wait=60_000) == 42
        assert queue_transport(first).queue_size() == 1 and result(waiting) is None
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode(errors="replace")


def test_qmonitor_live_view_redraws(db_alias: str, cluster: Any) -> None:
    from rich.console import Console

    from qdjango.monitor import watch

    out = io.StringIO()
    watch(Console(file=out, width=160, force_terminal=False), interval=0.05, frames=3)
    assert out.getvalue().count("Workers") >= 1 and cluster.cluster_id in out.getvalue()


def test_qmonitor_counts_a_big_table_less_often() -> None:
    from qdjango.monitor import STATS_EVERY, stats_interval

    assert stats_interval(0.01) == STATS_EVERY  # a small table: every 5 s
    assert stats_interval(0.9) == pytest.approx(18.0)  # at most 5% of the time counting
