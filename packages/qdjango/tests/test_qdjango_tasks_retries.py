"""Retries of ``django.tasks`` tasks (Q's retry options in a ``TASKS`` entry's ``OPTIONS``): each
attempt's error in ``TaskResult.errors``, in ``sync`` mode and on a real cluster."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks
from django.test import override_settings
from packages.qdjango.tests import djtasks

from qdjango import fetch
from qdjango.tasks_api import TaskResultStatus

WAIT = 20_000  # ms
PATH = "packages.qdjango.tests.djtasks"


def _tasks(**options: Any) -> Any:
    return override_settings(
        TASKS={"default": {"BACKEND": "qdjango.backends.QBackend", "OPTIONS": options}}
    )


def _finished(result: Any) -> Any:
    assert fetch(result.id, wait=WAIT) is not None, "the task did not finish"
    result.refresh()
    return result


def _assert_attempt_errors(result: Any, count: int) -> None:
    assert len(result.errors) == count
    for n, error in enumerate(result.errors, 1):
        assert error.exception_class_path == f"{PATH}.TaskBroke"
        assert error.exception_class is djtasks.TaskBroke
        assert f"attempt {n} of a flaky task" in error.traceback
        assert "in flaky" in error.traceback


@pytest.fixture
def sync(settings: Any, q_cluster: dict[str, Any]) -> None:
    settings.Q_CLUSTER = {**q_cluster, "sync": True}


def test_each_retried_attempt_s_error_is_kept_in_sync_mode(db_alias: str, sync: None) -> None:
    with _tasks(retries=2, retry_backoff=0):
        ok = djtasks.flaky.enqueue(2)
        assert ok.status == TaskResultStatus.SUCCESSFUL
        # the third attempt ran, and its RUNNING result already held the first two errors
        assert ok.return_value == {"attempt": 3, "errors": 2}
        assert ok.attempts == 3
        _assert_attempt_errors(ok, 2)
        out = djtasks.flaky.enqueue(5)
    assert out.status == TaskResultStatus.FAILED and out.attempts == 3
    _assert_attempt_errors(out, 3)


def test_each_retried_attempt_s_error_is_kept_on_a_cluster(db_alias: str, cluster: Any) -> None:
    with _tasks(retries=2, retry_backoff=0, retry_on=[f"{PATH}.TaskBroke"]):
        ok = _finished(djtasks.flaky.enqueue(1))
        out = _finished(djtasks.flaky.enqueue(9))
        plain = _finished(djtasks.fail.enqueue())  # ValueError: not in retry_on
    assert ok.status == TaskResultStatus.SUCCESSFUL and ok.attempts == 2
    assert ok.return_value == {"attempt": 2, "errors": 1}
    _assert_attempt_errors(ok, 1)
    assert ok.worker_ids == [cluster.cluster_id] * 2
    assert out.status == TaskResultStatus.FAILED and out.attempts == 3
    _assert_attempt_errors(out, 3)
    assert plain.status == TaskResultStatus.FAILED and plain.attempts == 1
    assert [e.exception_class_path for e in plain.errors] == ["builtins.ValueError"]
    # Q's own record of the last run keeps the earlier runs' failures with its options
    row = fetch(out.id)
    assert (
        len(row.options["failures"]) == 2
        and "attempt 1 of a flaky task" in (row.options["failures"][0])
    )


def test_retry_options_are_checked(db_alias: str) -> None:
    from qdjango.tasks_api import InvalidTask

    with _tasks(retries=-1, retry_on=["no.such.Error"]):
        errors = [m for m in checks.run_checks() if m.id == "qdjango.E101"]
        text = " ".join(m.msg for m in errors)
        assert "retries must be an integer >= 0" in text and "no.such.Error" in text
        with pytest.raises(InvalidTask, match="misconfigured"):
            djtasks.add.enqueue(1, 2)
