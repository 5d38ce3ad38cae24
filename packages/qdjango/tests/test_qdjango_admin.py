"""The admin: every page answers for a superuser, the retry action re-enqueues failures that
then succeed, and the Queue page shows Redis and acts on dead letters."""

from __future__ import annotations

import uuid
from typing import Any

from django.urls import reverse
from packages.qdjango.tests import jobs

from qcore import TaskMessage
from qdjango import async_task, fetch, result
from qdjango.models import Failure, Success, Task

WAIT = 20_000


def _pages(task_ids: dict[str, str]) -> list[str]:
    return [
        reverse("admin:index"),
        reverse("admin:app_list", args=["qdjango"]),
        reverse("admin:qdjango_success_changelist"),
        reverse("admin:qdjango_success_changelist") + "?q=add",
        reverse("admin:qdjango_success_changelist") + "?group=admin",
        reverse("admin:qdjango_success_change", args=[task_ids["success"]]),
        reverse("admin:qdjango_success_delete", args=[task_ids["success"]]),
        reverse("admin:qdjango_failure_changelist"),
        reverse("admin:qdjango_failure_changelist") + "?q=fail",
        reverse("admin:qdjango_failure_change", args=[task_ids["failure"]]),
        reverse("admin:qdjango_failure_history", args=[task_ids["failure"]]),
        reverse("admin:qdjango_queuestatus_changelist"),
    ]


def test_every_admin_page_answers(db_alias: str, cluster: Any, superuser_client: Any) -> None:
    ok = async_task(jobs.add, 1, 2, group="admin")
    bad = async_task(jobs.fail, "shown in the admin", group="admin")
    assert result(ok, wait=WAIT) == 3 and fetch(bad, wait=WAIT) is not None
    for url in _pages({"success": ok, "failure": bad}):
        response = superuser_client.get(url)
        assert response.status_code == 200, url
    failures = superuser_client.get(reverse("admin:qdjango_failure_changelist")).content
    assert b"shown in the admin" in failures
    index = superuser_client.get(reverse("admin:index")).content
    assert reverse("admin:qdjango_queuestatus_changelist").encode() in index
    # Records are written by clusters: no add page, no edit form.
    assert superuser_client.get("/admin/qdjango/success/add/").status_code in (403, 404)
    response = superuser_client.post(
        reverse("admin:qdjango_success_change", args=[ok]), {"func": "os.system"}
    )
    assert response.status_code == 403
    assert Task.objects.get(pk=ok).func == "packages.qdjango.tests.jobs.add"


def _retry(client: Any, task_id: str) -> Any:
    return client.post(
        reverse("admin:qdjango_failure_changelist"),
        {"action": "retry", "_selected_action": [task_id]},
        follow=True,
    )


def test_a_retry_sends_the_task_as_it_was_sent_and_the_two_are_linked(
    db_alias: str, cluster: Any, superuser_client: Any, cluster_redis: Any
) -> None:
    # The task takes a keyword argument named timeout; Q's own options go in q_options.
    flag = f"flag-{db_alias}-{uuid.uuid4().hex[:8]}"
    failed = async_task(
        jobs.fails_until_flag_then_echo,
        cluster_redis.url,
        flag,
        timeout=7,
        group="retry",
        q_options={"timeout": 30, "max_attempts": 2},
    )
    original = fetch(failed, wait=WAIT)
    assert not original.success and "is not set yet" in original.result
    assert original.kwargs == {"timeout": 7}
    assert original.options == {"timeout": 30, "max_attempts": 2}
    client = cluster_redis.client()
    client.set(flag, "1")
    client.close()

    response = _retry(superuser_client, failed)
    assert response.status_code == 200 and b"queued again" in response.content
    from qdjango import result_group

    # The new run got timeout=7 as its own argument, and the task's options back.
    assert result_group("retry", count=1, wait=WAIT) == [{"timeout": 7}]
    retried = Success.objects.get(group="retry")
    assert retried.pk != failed and retried.retried_from == failed
    assert retried.func == "packages.qdjango.tests.jobs.fails_until_flag_then_echo"
    assert retried.args == (cluster_redis.url, flag) and retried.kwargs == {"timeout": 7}
    assert retried.options == {"timeout": 30, "max_attempts": 2, "retried_from": failed}
    assert Failure.objects.filter(pk=failed).exists()  # kept: the retry links back to it

    retry_page = superuser_client.get(reverse("admin:qdjango_success_change", args=[retried.pk]))
    failure_url = reverse("admin:qdjango_failure_change", args=[failed])
    assert f'href="{failure_url}"'.encode() in retry_page.content
    failure_page = superuser_client.get(failure_url)
    retry_url = reverse("admin:qdjango_success_change", args=[retried.pk])
    assert f'href="{retry_url}"'.encode() in failure_page.content


def test_queue_page_requeues_and_purges_dead_letters(
    db_alias: str, q_cluster: dict[str, Any], superuser_client: Any
) -> None:
    from qdjango import connection
    from qdjango.conf import task_codec

    transport = connection.transport()
    messages = [TaskMessage.new(jobs.add, (i, i)) for i in range(3)]
    for message in messages:
        transport.enqueue(message.id, task_codec().encode_message(message))
    deliveries = transport.fetch("admin-test-consumer", count=3)
    for delivery in deliveries:
        assert transport.dead_letter(delivery, "dead for the admin test")
    assert transport.dead_size() == 3

    url = reverse("admin:qdjango_queuestatus_changelist")
    page = superuser_client.get(url)
    assert page.status_code == 200
    assert b"dead for the admin test" in page.content
    assert b"packages.qdjango.tests.jobs.add" in page.content  # the payload, verified and described

    first, second, third = (m.id for m in messages)
    response = superuser_client.post(url, {"action": "requeue", "task_id": [first]}, follow=True)
    assert b"1 dead letter(s) queued again" in response.content
    assert transport.dead_size() == 2 and transport.queue_size() == 1
    response = superuser_client.post(url, {"action": "purge", "task_id": [second]}, follow=True)
    assert b"1 dead letter(s) deleted" in response.content
    assert transport.dead_size() == 1
    superuser_client.post(url, {"action": "purge", "scope": "all"})
    assert transport.dead_size() == 0 and transport.queue_size() == 1
    assert third not in superuser_client.get(url).content.decode()


def test_queue_page_says_when_redis_is_down(
    db_alias: str, superuser_client: Any, settings: Any, q_cluster: dict[str, Any]
) -> None:
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    from tests.support.servers import free_port

    nowhere = {"host": "127.0.0.1", "port": free_port(), "retry": Retry(NoBackoff(), 0)}
    settings.Q_CLUSTER = {**q_cluster, "redis": nowhere}
    page = superuser_client.get(reverse("admin:qdjango_queuestatus_changelist"))
    assert page.status_code == 200
    assert b"Redis could not be read" in page.content
