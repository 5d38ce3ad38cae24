"""Faults where Django is involved: the Django result store, Django's hook runner, Django's
secret keys. One real cluster per test (fork: its workers inherit the set-up Django), SQLite."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.test import override_settings

from qcore import PayloadTooLarge
from tests.cluster.support import eventually
from tests.faults import tasks
from tests.faults.support import Effects

pytestmark = pytest.mark.django_db(transaction=True)

OLD_KEY = "django-secret-key-before-the-rotation-0123456789abcdefghij"
NEW_KEY = "django-secret-key-after-the-rotation-9876543210zyxwvutsrqpo"


@pytest.fixture
def q_settings(settings: Any, redis_url: str, queue_name: str) -> dict[str, Any]:
    value = {
        "name": queue_name,
        "workers": 1,
        "redis": redis_url,
        "database": "default",
        "save_limit": 0,
        "retry": 10,
        "heartbeat": 1,
        "grace": 5,
        "status_interval": 0.5,
        "start_method": "fork",
    }
    settings.Q_CLUSTER = value
    return value


@pytest.fixture
def django_cluster(q_settings: dict[str, Any]) -> Iterator[Callable[[], Any]]:
    """Start a cluster built the way ``manage.py qcluster`` builds it; stopped at the end."""
    from qdjango.cluster import build_cluster, close_connections

    started: list[Any] = []

    def start() -> Any:
        cluster = build_cluster()
        close_connections()  # the workers must not share this process's database connection
        cluster.start(wait=60)
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        if cluster.is_running:
            cluster.stop(timeout=30)


def _dead_letters() -> list[Any]:
    from qdjango import connection

    return connection.transport().dead_letters()


def test_a_worker_sigkilled_mid_task_leaves_one_task_row_and_one_hook_call(
    django_cluster: Callable[[], Any], fx: Effects
) -> None:
    from qdjango import async_task, fetch
    from qdjango.models import Task

    task_id = async_task(tasks.hang_first_time, *fx.args("victim"), hook=tasks.counting_hook)
    cluster = django_cluster()
    os.kill(fx.wait_started(), signal.SIGKILL)
    task = fetch(task_id, wait=30_000)
    eventually(lambda: fx.count("hook:victim"), what="the hook")
    cluster.stop(timeout=30)
    assert task is not None and task.success and task.result == 2
    assert task.attempt_count == 2
    assert Task.objects.filter(pk=task_id).count() == 1
    assert fx.counts() == {"victim": 2, "hook:victim": 1}  # ran twice, hooked once


def test_key_rotation_with_secret_key_fallbacks(
    settings: Any, django_cluster: Callable[[], Any], fx: Effects, q_settings: dict[str, Any]
) -> None:
    from qdjango import async_task, fetch

    settings.SECRET_KEY = OLD_KEY
    settings.SECRET_KEY_FALLBACKS = []
    during = async_task(tasks.counted, *fx.args("during"), "ran")
    after = async_task(tasks.counted, *fx.args("after"), "must not run")
    settings.SECRET_KEY = NEW_KEY
    settings.SECRET_KEY_FALLBACKS = [OLD_KEY]
    # Only the first task may be taken by the rotating cluster: hold the second back.
    client = redis.Redis.from_url(q_settings["redis"])
    from qdjango import connection

    keys = connection.transport().keys
    held = client.lpop(keys.queue)
    assert held == after.encode()
    cluster = django_cluster()
    task = fetch(during, wait=20_000)
    assert task is not None and task.result == "ran"
    cluster.stop(timeout=30)

    settings.SECRET_KEY_FALLBACKS = []  # rotation over: the old key is dropped
    client.rpush(keys.queue, held)
    django_cluster()
    [letter] = eventually(_dead_letters, what="the dead letter")
    assert letter.task_id == after and letter.reason.startswith("UnknownKey: ")
    assert fx.counts() == {"during": 1}
    client.close()


def test_async_task_refuses_fifty_megabytes_before_touching_redis(
    q_settings: dict[str, Any], redis_client: redis.Redis
) -> None:
    from qdjango import async_task

    before = redis_client.dbsize()
    with pytest.raises(PayloadTooLarge, match="over the limit"):
        async_task(tasks.noop, b"x" * (50 * 1024 * 1024))
    assert redis_client.dbsize() == before == 0


def test_django_signals_fire_in_order_with_the_saved_task(
    q_settings: dict[str, Any], fx: Effects
) -> None:
    from qdjango import async_task, signals
    from qdjango.cluster import build_cluster, close_connections

    names = {
        getattr(signals, name): name
        for name in signals.__all__
        if hasattr(getattr(signals, name), "send")
    }
    recorder = tasks.SignalRecorder(fx.url, f"signals:{fx.key}", names)
    for sent in names:
        sent.connect(recorder, weak=False, dispatch_uid="signal-test")
    try:
        ok = async_task(tasks.counted, *fx.args("ok"), "fine")
        failed = async_task(tasks.fail_with_secret, "x")
        late = async_task(tasks.overrun, *fx.args("late"), 30, timeout=1)
        killed = async_task(tasks.hang_first_time, *fx.args("killed"))
        # Built after the receivers are connected, as in an AppConfig.ready(); prefetch=1: no
        # finished task waits in a batch while a kill takes its worker.
        cluster = build_cluster(workers=2, prefetch=1)
        close_connections()
        cluster.start(wait=60)
        try:
            os.kill(fx.wait_started(), signal.SIGKILL)
            for task_id in (ok, failed, late, killed):
                assert _fetch(task_id) is not None, task_id
        finally:
            cluster.stop(timeout=30)
    finally:
        for sent in names:
            sent.disconnect(dispatch_uid="signal-test")

    seen = recorder.seen()
    by_task = {
        i: [(name, what) for name, task_id, what in seen if task_id == i]
        for i in (ok, failed, late, killed)
    }
    enqueued, started = ("pre_enqueue", "dict"), ("pre_execute", "dict")
    assert by_task == {
        ok: [enqueued, started, ("post_execute", "saved")],
        failed: [enqueued, started, ("post_execute", "saved")],
        late: [enqueued, started, ("worker_lost", "-"), ("task_timed_out", "saved")],
        killed: [
            enqueued,
            started,
            ("worker_lost", "-"),
            ("task_retried", "-"),
            started,
            ("post_execute", "saved"),
        ],
    }
    spawned = [name for name, _, _ in seen if name == "post_spawn"]
    assert len(spawned) >= 2  # in each worker process, as django-q2's


def _fetch(task_id: str) -> Any:
    from qdjango import fetch

    return fetch(task_id, wait=30_000)


PRODUCER = """
import sys, time
from qcore import configure_logging
from qredis import Producer

configure_logging(json=True)
url, queue, secret = sys.argv[1:4]
with Producer(url, queue, secret=secret, status_namespace=queue, key_check_every=0.2) as q:
    for i in range(5):  # over a second: the producer checks its key several times
        q.enqueue("tests.faults.tasks.noop", i)
        time.sleep(0.3)
"""
OTHER_SECRET = "a-producer-secret-that-no-cluster-accepts-0123456789"


# Guarantee (issue 11, item 13): a secret mismatch is visible. Clusters publish the ids of the
# keys they accept; a producer (qredis.Producer in a process of its own, async_task here) whose
# key no live cluster of its queue accepts logs exactly one warning, however many tasks it
# sends; its tasks are dead-lettered as UnknownKey, and qinfo and the admin's Queue page count
# the dead letters by that reason.
def test_a_producer_with_another_secret_warns_once_and_its_dead_letters_are_counted(
    settings: Any,
    django_cluster: Callable[[], Any],
    q_settings: dict[str, Any],
    admin_client: Any,
    tmp_path: Path,
) -> None:
    import structlog
    from django.core.management import call_command
    from django.urls import reverse

    from qdjango import async_task, connection, fetch

    django_cluster()
    [status] = eventually(connection.status_board().clusters, what="the cluster's status")
    assert len(status["key_ids"]) == 1 and len(status["key_ids"][0]) == 8  # ids, never keys
    with structlog.testing.capture_logs() as logs:
        ok = async_task(tasks.noop, 0)  # the cluster's own key: no warning
        assert fetch(ok, wait=20_000) is not None
    assert [e for e in logs if e["event"] == "producer.key_not_accepted"] == []

    url, queue = q_settings["redis"], q_settings["name"]
    run = subprocess.run(
        [sys.executable, "-c", PRODUCER, url, queue, OTHER_SECRET],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
    )
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if "producer.key_not_accepted" in line]
    assert len(warnings) == 1, run.stderr
    warning = json.loads(warnings[0])
    assert warning["level"] == "warning" and warning["queue"] == queue
    assert warning["accepted"] == status["key_ids"] and warning["key_id"] not in status["key_ids"]
    assert OTHER_SECRET not in run.stderr

    with structlog.testing.capture_logs() as logs, override_settings(SECRET_KEY=OTHER_SECRET):
        for i in range(3):
            async_task(tasks.noop, i)
    assert len([e for e in logs if e["event"] == "producer.key_not_accepted"]) == 1

    def counted() -> dict[str, int] | None:
        found = connection.transport().dead_reasons()
        return found if found == {"UnknownKey": 8} else None

    eventually(counted, what="8 dead letters, all UnknownKey")
    out = io.StringIO()
    call_command("qinfo", stdout=out)
    text = out.getvalue()
    assert "Dead letters by reason" in text, text
    [row] = [line for line in text.splitlines() if "UnknownKey" in line]
    assert queue in row and re.search(r"\b8\b", row), text

    page = admin_client.get(reverse("admin:qdjango_queuestatus_changelist"))
    html = page.content.decode()
    assert page.status_code == 200 and 'id="q-dead-reasons"' in html
    assert "<td>UnknownKey</td><td>8</td>" in html, html
