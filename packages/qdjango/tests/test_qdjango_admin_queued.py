"""The admin's Queued tasks page: what waits in Redis, decoded and verified, and deleting it."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission, User
from django.urls import reverse
from packages.qdjango.tests import jobs

from qdjango import async_task, connection
from qdjango.models import Task

URL = "admin:qdjango_queuedtask_changelist"


def test_the_page_lists_ready_and_delayed_tasks_and_deletes_the_selected(
    db_alias: str, q_cluster: dict[str, Any], superuser_client: Any
) -> None:
    first = async_task(jobs.add, 1, 2, group="waits")
    second = async_task(jobs.echo, "hello", flag=True)
    later = async_task(jobs.add, 5, 5, q_options={"countdown": 3600})
    forged = "f" * 32
    connection.transport().enqueue(forged, b"not a signed payload")
    page = superuser_client.get(reverse(URL))
    assert page.status_code == 200
    html = page.content.decode()
    queued = html.split('id="q-queued"')[1].split("</table>")[0]
    delayed = html.split('id="q-delayed"')[1].split("</table>")[0]
    assert queued.index(first) < queued.index(second) < queued.index(forged)  # head first
    assert "packages.qdjango.tests.jobs.add" in queued and "(1, 2)" in queued
    assert "&#x27;hello&#x27;" in queued and "flag" in queued
    assert "unreadable" in queued  # the forged payload: listed, never unpickled
    assert later in delayed and "(5, 5)" in delayed
    response = superuser_client.post(reverse(URL), {"task_id": [first, later]}, follow=True)
    assert "2 waiting task(s) deleted" in response.content.decode()
    left = [w.task_id for w in connection.transport().waiting(10)]
    assert left == [second, forged]
    assert connection.transport().delayed_size() == 0
    assert not Task.objects.using(db_alias).filter(pk__in=[first, later]).exists()


def test_deleting_needs_the_delete_permission(
    db_alias: str, q_cluster: dict[str, Any], client: Any
) -> None:
    task_id = async_task(jobs.add, 1, 1)
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_queuedtask"))
    client.force_login(viewer)
    page = client.get(reverse(URL))
    assert page.status_code == 200 and task_id in page.content.decode()
    assert 'name="task_id"' not in page.content.decode()  # no checkbox without the right
    assert client.post(reverse(URL), {"task_id": [task_id]}).status_code == 403
    assert [w.task_id for w in connection.transport().waiting(10)] == [task_id]
