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
    queue = q_cluster["name"]
    queued = html.split(f'id="q-queued-{queue}"')[1].split("</table>")[0]
    delayed = html.split(f'id="q-delayed-{queue}"')[1].split("</table>")[0]
    assert queued.index(first) < queued.index(second) < queued.index(forged)  # head first
    assert "packages.qdjango.tests.jobs.add" in queued and "(1, 2)" in queued
    assert "&#x27;hello&#x27;" in queued and "flag" in queued
    assert "unreadable" in queued  # the forged payload: listed, never unpickled
    assert later in delayed and "(5, 5)" in delayed
    selected = [f"{queue} {first}", f"{queue} {later}"]
    response = superuser_client.post(reverse(URL), {"task_id": selected}, follow=True)
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
    selected = [f"{q_cluster['name']} {task_id}"]
    assert client.post(reverse(URL), {"task_id": selected}).status_code == 403
    assert [w.task_id for w in connection.transport().waiting(10)] == [task_id]


def test_every_configured_queue_is_listed_with_its_name_and_its_tasks_deleted(
    db_alias: str, settings: Any, q_cluster: dict[str, Any], superuser_client: Any
) -> None:
    main = q_cluster["name"]
    high, low = f"{main}-high", f"{main}-low"
    settings.Q_CLUSTER = {**q_cluster, "queues": [f"{main}=3", f"{high}=2", f"{low}=1"]}
    on_main = async_task(jobs.add, 1, 1)
    on_high = async_task(jobs.add, 2, 2, q_options={"queue": high})
    on_low = async_task(jobs.echo, "low", q_options={"queue": low})
    later_low = async_task(jobs.add, 3, 3, q_options={"queue": low, "countdown": 3600})
    page = superuser_client.get(reverse(URL))
    assert page.status_code == 200
    html = page.content.decode()
    for name, ready in ((main, on_main), (high, on_high), (low, on_low)):
        assert f"Ready on <code>{name}</code>: 1 " in html
        table = html.split(f'id="q-queued-{name}"')[1].split("</table>")[0]
        assert ready in table and f'value="{name} {ready}"' in table
        others = {on_main, on_high, on_low} - {ready}
        assert not any(other in table for other in others)  # each task under its own queue
    delayed = html.split(f'id="q-delayed-{low}"')[1].split("</table>")[0]
    assert later_low in delayed and "(3, 3)" in delayed
    assert f"Delayed on <code>{high}</code>: 0 " in html
    selected = [
        f"{high} {on_high}",
        f"{low} {later_low}",
        f"{low} {on_main}",
        f"elsewhere {on_low}",
    ]
    response = superuser_client.post(reverse(URL), {"task_id": selected}, follow=True)
    text = response.content.decode()
    # A task named under another queue than its own, or under a queue Q_CLUSTER does not name,
    # is left alone.
    assert "2 waiting task(s) deleted; 2 were not waiting there" in text, text
    assert [w.task_id for w in connection.queue_transport(high).waiting(10)] == []
    assert connection.queue_transport(low).delayed_size() == 0
    assert [w.task_id for w in connection.queue_transport(low).waiting(10)] == [on_low]
    assert [w.task_id for w in connection.transport().waiting(10)] == [on_main]
