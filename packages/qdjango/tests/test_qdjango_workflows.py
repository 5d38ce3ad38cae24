"""Workflows under Django: cancel from the API and from the admin's Queue page."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.urls import reverse
from packages.qdjango.tests import jobs

from qcore import UnknownTask
from qdjango import async_task, cancel, fetch

WAIT = 20_000


def test_cancel_a_delayed_task_from_the_api_and_a_queued_one_from_the_admin(
    db_alias: str, cluster: Any, superuser_client: Any
) -> None:
    later = async_task(jobs.add, 1, 2, q_options={"countdown": 3600})
    assert cancel(later) == "delayed"
    task = fetch(later, wait=WAIT)
    assert task is not None and not task.success
    assert str(task.result).startswith("Cancelled: the task was cancelled before it ran")
    with pytest.raises(UnknownTask, match="was cancelled already"):
        cancel(later)

    page = reverse("admin:qdjango_queuestatus_changelist")
    assert b"Cancel a task" in superuser_client.get(page).content
    other = async_task(jobs.add, 2, 3, q_options={"countdown": 3600})
    response = superuser_client.post(page, {"action": "cancel", "cancel_id": other}, follow=True)
    assert f"Task {other} (delayed) is cancelled".encode() in response.content
    task = fetch(other, wait=WAIT)
    assert task is not None and not task.success
    response = superuser_client.post(
        page, {"action": "cancel", "cancel_id": "no-such-task"}, follow=True
    )
    assert b"is queued, delayed or running" in response.content, response.content.decode()[-3000:]


def test_the_admin_says_what_terminating_a_running_task_does(
    db_alias: str, cluster: Any, superuser_client: Any
) -> None:
    from qdjango import running

    page = reverse("admin:qdjango_queuestatus_changelist")
    html = superuser_client.get(page).content.decode()
    # The form no longer says "its worker is killed" of every task: an async def task awaited
    # beside others is cancelled in its worker's event loop.
    assert "its worker is killed" not in html
    assert 'id="q-terminate-help"' in html and "cancelled in its worker's event loop" in html
    task_id = async_task(jobs.sleep, 60)
    deadline = time.monotonic() + 20
    while not running(task_id):
        assert time.monotonic() < deadline, "the task was never seen running"
        time.sleep(0.05)
    response = superuser_client.post(
        page, {"action": "cancel", "cancel_id": task_id, "terminate": "1"}, follow=True
    )
    text = response.content.decode()
    assert f"Task {task_id} is running: its cluster stops it" in text, text[-3000:]
    assert "killing its worker process, which is replaced" in text
    task = fetch(task_id, wait=WAIT)
    assert task is not None and not task.success
    # What the page said happened: this sync task's worker was killed.
    assert str(task.result).startswith(
        "Cancelled: the task was terminated while running (its worker was killed)"
    )


def test_cancel_needs_the_change_permission(db_alias: str, cluster: Any, client: Any) -> None:
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("viewer", password="pw-for-tests", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_queuestatus"))
    client.force_login(user)
    later = async_task(jobs.add, 1, 2, q_options={"countdown": 3600})
    page = reverse("admin:qdjango_queuestatus_changelist")
    assert b"Cancel a task" not in client.get(page).content
    response = client.post(page, {"action": "cancel", "cancel_id": later})
    assert response.status_code == 403
    assert cancel(later) == "delayed"  # it was still there


def test_chain_and_async_chain_as_in_django_q2(db_alias: str, cluster: Any) -> None:
    from qdjango import Chain, async_chain, result_group

    chain = Chain()
    chain.append(jobs.add, 1, 2)
    chain.append("packages.qdjango.tests.jobs.add", 3, 4)
    assert chain.append(jobs.echo, "x", q_options={"timeout": 30}) == 3
    assert chain.result() is None and chain.current() is None
    group = chain.run()
    assert chain.result(wait=WAIT) == [3, 7, (("x",), {})]
    # The last link's record is readable a moment before the step that acks it advances the
    # chain's state: wait for that step rather than race it.
    deadline = time.monotonic() + WAIT / 1000
    while chain.current() != 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (chain.current(), chain.length()) == (3, 3)
    assert chain.state() is not None and chain.state().state == "done"  # type: ignore[union-attr]
    assert sorted(t.func for t in chain.fetch()) == [
        "packages.qdjango.tests.jobs.add",
        "packages.qdjango.tests.jobs.add",
        "packages.qdjango.tests.jobs.echo",
    ]
    assert chain.run() != group  # run again: a new group
    other = async_chain([(jobs.add, (5, 6)), jobs.nothing], group=f"g-{db_alias}-{group[:6]}")
    assert result_group(other, failures=True, wait=WAIT, count=2) == [11, None]


def test_a_sync_chain_runs_here_link_after_link(db_alias: str, q_cluster: Any) -> None:
    from qdjango import async_chain, result_group

    group = async_chain([(jobs.add, (1, 1)), (jobs.add, (2, 2))], sync=True)
    assert result_group(group) == [2, 4]


def test_a_bad_chain_is_a_clear_error(db_alias: str, q_cluster: Any) -> None:
    from qcore import ConfigError
    from qdjango import async_chain

    with pytest.raises(ConfigError, match="a chain needs at least one link"):
        async_chain([])
    with pytest.raises(ConfigError, match="link 2 of the chain is 3"):
        async_chain([jobs.add, 3])


def test_iter_async_iter_and_async_task_as_in_django_q2(db_alias: str, cluster: Any) -> None:
    from qdjango import AsyncTask, Iter, async_iter, result

    iter_id = async_iter(jobs.add, [(1, 2), (3, 4), (5, 6)], q_options={"timeout": 30})
    assert result(iter_id, wait=WAIT) == [3, 7, 11]
    it = Iter(jobs.add)
    assert it.append(1, 1) == 1 and it.append(2, 2) == 2
    assert it.result() is None
    it.run()
    assert it.result(wait=WAIT) == [2, 4] and it.fetch().success  # type: ignore[union-attr]
    it.append(3, 3)
    assert it.result() is None  # changed since the run
    task = AsyncTask(jobs.add, 2, 3, group=f"at-{db_alias}")
    task.save = True
    assert task.result() is None
    task.run()
    assert task.result(wait=WAIT) == 5 and task.fetch().success  # type: ignore[union-attr]
    assert task.result_group(wait=WAIT, count=1) == [5]
    task.hook = None
    assert task.result() is None  # changed: not started again yet


def test_a_sync_iteration_runs_here(db_alias: str, q_cluster: Any) -> None:
    from qdjango import async_iter, result

    assert result(async_iter(jobs.add, [(1, 1), (2, 2)], sync=True)) == [2, 4]
