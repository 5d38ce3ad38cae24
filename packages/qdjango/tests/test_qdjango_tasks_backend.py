"""Django's tasks framework (``django.tasks``, or the backport on Django 5.2) on Q: the backend
end to end on a real cluster and in ``sync`` mode, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import checks
from django.test import override_settings
from django.utils import timezone
from packages.qdjango.tests import djtasks, jobs

from qdjango import async_task, connection, fetch, running
from qdjango.models import Task
from qdjango.tasks_api import (
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_backends,
    task_enqueued,
    task_finished,
    task_started,
)

WAIT = 20_000  # ms
PATH = "packages.qdjango.tests.djtasks"


@pytest.fixture
def sync(settings: Any, q_cluster: dict[str, Any]) -> dict[str, Any]:
    """Tasks run here and now, through the worker's code (``Q_CLUSTER["sync"]``)."""
    settings.Q_CLUSTER = {**q_cluster, "sync": True}
    return settings.Q_CLUSTER


@pytest.fixture
def seen() -> Any:
    """What django.tasks's three signals were sent with, in order."""
    sent: list[tuple[str, Any]] = []

    def receiver(name: str) -> Any:
        def got(sender: Any, task_result: Any, **kwargs: Any) -> None:
            sent.append((name, sender, task_result.status, task_result.id))

        return got

    receivers = {
        "enqueued": receiver("enqueued"),
        "started": receiver("started"),
        "finished": receiver("finished"),
    }
    task_enqueued.connect(receivers["enqueued"])
    task_started.connect(receivers["started"])
    task_finished.connect(receivers["finished"])
    yield sent
    task_enqueued.disconnect(receivers["enqueued"])
    task_started.disconnect(receivers["started"])
    task_finished.disconnect(receivers["finished"])


def backend() -> Any:
    return task_backends["default"]


def test_the_backend_says_what_it_supports() -> None:
    from qdjango.backends import QBackend

    assert isinstance(backend(), QBackend)
    assert backend().supports_defer and backend().supports_get_result
    assert backend().supports_async_task
    assert backend().supports_priority


def test_a_q_task_keeps_its_backend_until_the_tasks_setting_changes() -> None:
    import importlib.util

    from qdjango.backends import QBackend, QTask

    first = djtasks.add.get_backend()
    assert type(djtasks.add) is QTask and isinstance(first, QBackend)
    assert djtasks.add.get_backend() is first and first is backend()
    dummy = (
        "django.tasks.backends.dummy.DummyBackend"
        if importlib.util.find_spec("django.tasks")
        else "django_tasks.backends.dummy.DummyBackend"
    )
    entries = {"default": {"BACKEND": "qdjango.backends.QBackend"}, "other": {"BACKEND": dummy}}
    with override_settings(TASKS=entries):
        again = djtasks.add.get_backend()
        assert isinstance(again, QBackend) and again is not first  # the changed setting's
        assert djtasks.add.get_backend() is again
        # another backend is Django's to look up (it may hold a thread's state): never kept
        other = djtasks.add.using(backend="other")
        assert other.get_backend() is task_backends["other"]
        assert type(other.get_backend()).__name__ == "DummyBackend"
    after = djtasks.add.get_backend()
    assert after is not again and after is backend()


# -- sync: through the worker's own code, in this process ----------------------------------


def test_a_task_succeeds_with_its_value_and_timestamps(db_alias: str, sync: Any) -> None:
    before = timezone.now()
    result = djtasks.add.enqueue(2, 3)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 5
    assert result.args == [2, 3] and result.kwargs == {}
    assert before <= result.enqueued_at <= result.finished_at <= timezone.now()
    assert result.attempts == 1 and result.errors == []
    again = djtasks.add.get_result(result.id)
    assert again.status == TaskResultStatus.SUCCESSFUL and again.return_value == 5
    row = Task.objects.using(db_alias).get(pk=result.id)  # the same Task row as async_task's
    assert row.func == f"{PATH}.add" and row.success and row.result == 5


def test_django_json_rules_hold_for_arguments_and_values(db_alias: str, sync: Any) -> None:
    result = djtasks.echo.enqueue((1, 2), b"bytes", key={"a": (3,)})
    assert result.args == [[1, 2], "bytes"] and result.kwargs == {"key": {"a": [3]}}
    assert result.return_value == {"args": [[1, 2], "bytes"], "kwargs": {"key": {"a": [3]}}}
    # A value Django's rules refuse fails the task, as Django's own backends do.
    refused = djtasks.not_json.enqueue()
    assert refused.status == TaskResultStatus.FAILED
    assert refused.errors[0].exception_class_path == "builtins.TypeError"


def test_a_failure_has_its_error_class_and_traceback(db_alias: str, sync: Any) -> None:
    result = djtasks.fail.enqueue("boom")
    assert result.status == TaskResultStatus.FAILED and result.is_finished
    [error] = result.errors
    assert error.exception_class is ValueError
    assert "ValueError: boom" in error.traceback and "in fail" in error.traceback
    with pytest.raises(ValueError, match="Task failed"):
        _ = result.return_value
    own = djtasks.broke.enqueue()
    assert own.errors[0].exception_class_path == f"{PATH}.TaskBroke"
    assert own.errors[0].exception_class is djtasks.TaskBroke
    assert djtasks.broke.get_result(own.id).errors[0].exception_class is djtasks.TaskBroke


def test_context_and_async_tasks(db_alias: str, sync: Any) -> None:
    result = djtasks.attempt.enqueue()
    assert result.return_value == {
        "attempt": 1,
        "id": result.id,
        "status": "RUNNING",
        "workers": 1,
    }
    assert djtasks.async_add.enqueue(20, 22).return_value == 42


def test_the_signals_are_sent_with_each_status(db_alias: str, sync: Any, seen: Any) -> None:
    from qdjango.backends import QBackend

    ok = djtasks.add.enqueue(1, 1)
    bad = djtasks.fail.enqueue()
    assert seen == [
        ("started", QBackend, TaskResultStatus.RUNNING, ok.id),
        ("finished", QBackend, TaskResultStatus.SUCCESSFUL, ok.id),
        ("enqueued", QBackend, TaskResultStatus.SUCCESSFUL, ok.id),
        ("started", QBackend, TaskResultStatus.RUNNING, bad.id),
        ("finished", QBackend, TaskResultStatus.FAILED, bad.id),
        ("enqueued", QBackend, TaskResultStatus.FAILED, bad.id),
    ]


def test_the_signals_carry_whole_results(db_alias: str, sync: Any) -> None:
    """task_finished's result is get_result's, and the run's start is task_started's; each
    task's signals are sent once, an async def task's and a failure's too."""
    sent: dict[str, list[Any]] = {"started": [], "finished": []}

    def started(sender: Any, task_result: Any, **kwargs: Any) -> None:
        sent["started"].append(task_result)

    def finished(sender: Any, task_result: Any, **kwargs: Any) -> None:
        sent["finished"].append(task_result)

    task_started.connect(started)
    task_finished.connect(finished)
    try:
        results = [
            djtasks.add.enqueue(2, 3),
            djtasks.fail.enqueue("boom"),
            djtasks.async_add.enqueue(20, 22),
            djtasks.async_fail.enqueue("async boom"),
        ]
        async_task(jobs.add, 1, 2)  # no django.tasks task: none of its signals
        async_task(jobs.nothing)
    finally:
        task_started.disconnect(started)
        task_finished.disconnect(finished)
    ids = [r.id for r in results]
    assert [r.id for r in sent["started"]] == ids and [r.id for r in sent["finished"]] == ids
    for begun, ended in zip(sent["started"], sent["finished"], strict=True):
        saved = backend().get_result(ended.id)
        assert begun.status == TaskResultStatus.RUNNING and ended.status == saved.status
        assert ended is not begun and ended.task == saved.task and ended.backend == saved.backend
        assert ended.args == saved.args and ended.kwargs == saved.kwargs
        assert ended.enqueued_at == saved.enqueued_at == begun.enqueued_at
        assert ended.finished_at == saved.finished_at
        assert begun.started_at is not None and ended.started_at == begun.started_at
        assert ended.last_attempted_at == begun.started_at
        assert ended.enqueued_at <= ended.started_at <= ended.finished_at
        # the saved row's start: its end less its run time, the same moment within clock jitter
        assert abs((saved.started_at - ended.started_at).total_seconds()) < 0.05
        assert saved.last_attempted_at == saved.started_at
        assert ended.worker_ids == saved.worker_ids == begun.worker_ids
        assert [(e.exception_class_path, e.traceback) for e in ended.errors] == [
            (e.exception_class_path, e.traceback) for e in saved.errors
        ]
        if saved.status == TaskResultStatus.SUCCESSFUL:
            assert ended.return_value == saved.return_value
    assert [r.status for r in sent["finished"]] == [
        TaskResultStatus.SUCCESSFUL,
        TaskResultStatus.FAILED,
        TaskResultStatus.SUCCESSFUL,
        TaskResultStatus.FAILED,
    ]
    assert [sent["finished"][i].return_value for i in (0, 2)] == [5, 42]
    assert "ValueError: async boom" in sent["finished"][3].errors[0].traceback


# -- bad input: an error at the call, nothing queued ---------------------------------------


def test_bad_input_is_refused_at_enqueue(db_alias: str, q_cluster: Any) -> None:
    transport = connection.transport()
    with pytest.raises(TypeError, match="Unsupported type"):
        djtasks.echo.enqueue(object())
    with pytest.raises(InvalidTask, match="Queue 'nope' is not valid"):
        djtasks.echo.using(queue_name="nope")
    with pytest.raises(InvalidTask, match="aware"):
        djtasks.echo.using(run_after=timezone.now().replace(tzinfo=None))
    with pytest.raises(InvalidTask, match="priority"):
        djtasks.echo.using(priority=101)
    with pytest.raises(InvalidTask, match="priority"):
        djtasks.echo.using(priority=1.5)
    assert transport.queue_size() == 0 and transport.delayed_size() == 0
    with pytest.raises(TaskResultDoesNotExist):
        backend().get_result("0" * 32)
    with pytest.raises(TaskResultDoesNotExist):
        backend().get_result("not-an-id")


def test_manage_py_check_reports_a_bad_entry() -> None:
    bad = {
        "BACKEND": "qdjango.backends.QBackend",
        "QUEUES": ["ok", "has space"],
        "OPTIONS": {"timeout": -1, "colour": "red"},
    }
    with override_settings(TASKS={"default": bad}):
        found = [m for m in checks.run_checks() if m.id == "qdjango.E101"]
        text = " | ".join(m.msg for m in found)
        assert "unknown OPTIONS colour" in text
        assert "timeout must be a positive number" in text
        assert "may not contain braces or whitespace: 'has space'" in text
        assert all(m.obj == "settings.TASKS['default']" for m in found)
        with pytest.raises(InvalidTask, match="misconfigured"):
            djtasks.add.using(queue_name="ok")
    assert not [m for m in checks.run_checks() if m.id == "qdjango.E101"]


# -- a real cluster -------------------------------------------------------------------------


def _finished(result: Any) -> Any:
    assert fetch(result.id, wait=WAIT) is not None, "the task did not finish"
    result.refresh()
    return result


def test_end_to_end_on_a_cluster(db_alias: str, cluster: Any, seen: Any) -> None:
    result = djtasks.add.enqueue(40, 2)
    assert result.status == TaskResultStatus.READY and seen[0][:3] == (
        "enqueued",
        type(backend()),
        TaskResultStatus.READY,
    )
    _finished(result)
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 42
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.worker_ids == [cluster.cluster_id]
    row = fetch(result.id)  # the admin's, fetch's and qinfo's row
    assert row.func == f"{PATH}.add" and row.result == 42 and row.success
    # the worker's signals went to the worker's receivers, not ours: only enqueued here
    assert [name for name, *_ in seen] == ["enqueued"]


def test_run_after_waits_in_the_delayed_set(db_alias: str, cluster: Any) -> None:
    run_after = timezone.now() + timedelta(seconds=2)
    result = djtasks.add.using(run_after=run_after).enqueue(1, 2)
    early = backend().get_result(result.id)
    assert early.status == TaskResultStatus.READY
    assert abs((early.task.run_after - run_after).total_seconds()) < 0.01
    assert connection.transport().delayed_size() >= 1
    _finished(result)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.finished_at >= run_after


def test_a_failure_on_a_cluster(db_alias: str, cluster: Any) -> None:
    result = _finished(djtasks.broke.enqueue())
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is djtasks.TaskBroke


def test_a_worker_killed_mid_task_is_a_second_attempt(
    db_alias: str, cluster: Any, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    result = djtasks.attempt.enqueue(pid_file=str(pid_file))
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the first attempt never started"
        time.sleep(0.05)
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    _finished(result)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value["attempt"] == 2 and result.attempts == 2


def test_async_def_tasks_on_a_cluster(db_alias: str, cluster: Any) -> None:
    ok = _finished(djtasks.async_add.enqueue(20, 22))
    assert ok.status == TaskResultStatus.SUCCESSFUL and ok.return_value == 42
    assert ok.worker_ids == [cluster.cluster_id]
    bad = _finished(djtasks.async_fail.enqueue("async boom"))
    assert bad.status == TaskResultStatus.FAILED
    [error] = bad.errors
    assert error.exception_class is ValueError and "in async_fail" in error.traceback
    assert _finished(djtasks.async_attempt.enqueue()).return_value == 1


def test_async_def_tasks_overlap_on_a_cluster_with_async_concurrency(
    db_alias: str, settings: Any, q_cluster: dict[str, Any]
) -> None:
    from qdjango.cluster import build_cluster, close_connections

    settings.Q_CLUSTER = {**q_cluster, "async_concurrency": 5}
    own = build_cluster()
    close_connections()
    own.start(wait=120)
    try:
        results = [djtasks.async_nap.enqueue(2.0) for _ in range(5)]
        spans = [_finished(result).return_value for result in results]
    finally:
        assert own.stop(timeout=30) == 0
    assert all(r.status == TaskResultStatus.SUCCESSFUL for r in results)
    # All five awaited at once in the one worker: each started before any ended.
    assert max(begun for begun, _ in spans) < min(ended for _, ended in spans)


def test_a_task_sent_with_async_task_is_seen_by_get_result(db_alias: str, cluster: Any) -> None:
    task_id = async_task(jobs.add, 2, 2)
    assert fetch(task_id, wait=WAIT) is not None
    result = backend().get_result(task_id)
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 4
    assert result.task.func is jobs.add


def test_another_queue_is_the_q_queue_of_that_name(db_alias: str, q_cluster: Any) -> None:
    result = djtasks.second_queue.enqueue()
    other = connection.queue_transport("qd-second")
    assert other.queue == "qd-second" and other.queue_size() == 1
    assert connection.transport().queue_size() == 0
    assert backend().get_result(result.id).status == TaskResultStatus.READY


# -- RUNNING: from the workers' slots, through the clusters' status ---------------------------


def test_a_running_task_is_seen_running_without_a_row(
    db_alias: str, cluster: Any, superuser_client: Any
) -> None:
    from io import StringIO

    from django.core.management import call_command
    from django.urls import reverse

    result = djtasks.sleep.enqueue(6)  # long enough to be seen on a loaded machine
    deadline = time.monotonic() + 15
    now = backend().get_result(result.id)
    while now.status != TaskResultStatus.RUNNING:
        assert now.status == TaskResultStatus.READY, now.status
        assert time.monotonic() < deadline, "never seen running"
        time.sleep(0.1)
        now = backend().get_result(result.id)
    assert now.started_at is not None and now.enqueued_at <= now.started_at <= timezone.now()
    assert now.worker_ids == [cluster.cluster_id] and now.last_attempted_at == now.started_at
    # no row (no database write) for a start
    assert not Task.objects.using(db_alias).filter(pk=result.id).exists()
    [seen] = running(result.id)
    assert seen.consumer.startswith(cluster.cluster_id) and seen.attempt == 1
    assert fetch(result.id) is None
    # the same attempt (a status published in between moves only its seen_at)
    again = fetch(result.id, include_running=True)
    assert again is not None and replace(again, seen_at=seen.seen_at) == seen
    out = StringIO()
    call_command("qinfo", stdout=out)
    assert result.id in out.getvalue() and "Running tasks" in out.getvalue()
    page = superuser_client.get(reverse("admin:qdjango_queuestatus_changelist"))
    assert result.id.encode() in page.content
    _finished(result)
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 6


def test_each_coroutine_a_worker_awaits_is_seen_running(
    db_alias: str, settings: Any, q_cluster: dict[str, Any], superuser_client: Any
) -> None:
    from io import StringIO

    from django.core.management import call_command
    from django.urls import reverse

    from qdjango.cluster import build_cluster, close_connections

    settings.Q_CLUSTER = {**q_cluster, "async_concurrency": 5}
    own = build_cluster()
    close_connections()
    own.start(wait=120)
    try:
        results = [djtasks.async_nap.enqueue(6.0) for _ in range(3)]
        deadline = time.monotonic() + 15
        while True:
            now = [backend().get_result(result.id) for result in results]
            if all(r.status == TaskResultStatus.RUNNING for r in now):
                break
            assert all(r.status in (TaskResultStatus.READY, TaskResultStatus.RUNNING) for r in now)
            assert time.monotonic() < deadline, "not all seen running"
            time.sleep(0.1)
        assert all(r.started_at is not None and r.worker_ids == [own.cluster_id] for r in now)
        seen = {task.task_id: task for task in running() if task.cluster_id == own.cluster_id}
        assert set(seen) == {result.id for result in results}
        # All three in one worker (one consumer), each with its own start.
        assert len({task.consumer for task in seen.values()}) == 1
        for result in results:
            again = fetch(result.id, include_running=True)
            assert again is not None and again.task_id == result.id and again.attempt == 1
            assert again.func == "packages.qdjango.tests.djtasks.async_nap"
        out = StringIO()
        call_command("qinfo", stdout=out)
        assert all(result.id in out.getvalue() for result in results)
        page = superuser_client.get(reverse("admin:qdjango_queuestatus_changelist"))
        assert all(result.id.encode() in page.content for result in results)
        spans = [_finished(result).return_value for result in results]
    finally:
        assert own.stop(timeout=30) == 0
    assert max(begun for begun, _ in spans) < min(ended for _, ended in spans)


def test_each_task_object_sends_its_own_options(db_alias: str, q_cluster: Any) -> None:
    """The backend keeps what a task object sends (path, options) by the object: the same task
    again, and a copy with another priority, each send their own; the READY result returned is
    Django's frozen TaskResult with the call's arguments."""
    from dataclasses import FrozenInstanceError

    from qdjango.conf import task_codec
    from qdjango.tasks_api import TaskResult

    urgent = djtasks.add.using(priority=7)
    sent = [
        djtasks.add.enqueue(1, 1),
        urgent.enqueue(2, 2),
        djtasks.add.enqueue(3, 3),
        djtasks.add.using(priority=7).enqueue(4, 4),
        urgent.enqueue(5, 5),
    ]
    transport = connection.transport()
    taken = transport.fetch("djt-test", count=5, timeout=1)
    messages = {d.task_id: task_codec().decode_message(d.payload) for d in taken}
    transport.ack(taken)
    assert [messages[r.id].options.priority for r in sent] == [None, 7, None, 7, 7]
    assert [messages[r.id].args for r in sent] == [(i, i) for i in range(1, 6)]
    assert {messages[r.id].func for r in sent} == {f"{PATH}.add"}
    first = sent[0]
    assert type(first) is TaskResult
    assert (first.status, first.args, first.kwargs) == (TaskResultStatus.READY, [1, 1], {})
    assert first.enqueued_at is not None and first.enqueued_at.tzinfo is not None
    with pytest.raises(FrozenInstanceError):
        first.id = "another"  # type: ignore[misc]


def test_priorities_are_q_priorities(db_alias: str, q_cluster: Any) -> None:
    from qdjango.conf import task_codec

    low = djtasks.add.using(priority=-5).enqueue(1, 1)
    plain = djtasks.add.enqueue(2, 2)
    high = djtasks.add.using(priority=100).enqueue(3, 3)
    transport = connection.transport()
    taken = transport.fetch("djt-test", count=3, timeout=1)
    assert [d.task_id for d in taken] == [high.id, plain.id, low.id]  # higher first
    priorities = [task_codec().decode_message(d.payload).options.priority for d in taken]
    assert priorities == [100, None, -5]
    transport.ack(taken)
