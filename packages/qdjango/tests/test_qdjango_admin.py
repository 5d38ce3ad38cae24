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


def _pages(ok: Task, bad: Task, plan: Any, queue: str) -> dict[str, list[str]]:
    """Every page of Q's admin, with what each must show."""

    def url(name: str, *args: Any) -> str:
        return reverse(f"admin:qdjango_{name}", args=args)

    add, fail = "packages.qdjango.tests.jobs.add", "packages.qdjango.tests.jobs.fail"
    models = ["All tasks", "Successful tasks", "Failed tasks", "Queue", "Queued tasks"]
    return {
        reverse("admin:index"): [*models, "Scheduled tasks"],
        reverse("admin:app_list", args=["qdjango"]): [*models, "Scheduled tasks"],
        url("task_changelist"): [ok.name, bad.name, add, fail],
        url("task_changelist") + "?success__exact=0": [bad.name],
        url("task_change", ok.pk): [ok.name, add],
        url("success_changelist"): [ok.name, add],
        url("success_changelist") + "?q=add": [ok.name],
        url("success_changelist") + "?group=admin": [ok.name],
        url("success_change", ok.pk): [ok.name, add, "admin"],
        url("success_delete", ok.pk): ["Are you sure", ok.name],
        url("success_history", ok.pk): ["Change history", ok.name],
        url("failure_changelist"): [bad.name, "shown in the admin"],
        url("failure_changelist") + "?q=fail": [bad.name],
        url("failure_change", bad.pk): [bad.name, fail, "shown in the admin"],
        url("failure_history", bad.pk): ["Change history", bad.name],
        url("schedule_changelist"): [plan.name, add],
        url("schedule_add"): ["Add scheduled task", 'name="func"'],
        url("schedule_change", plan.pk): [plan.name, add],
        url("queuestatus_changelist"): [f"Queue <code>{queue}</code>", "Clusters", "Last hour"],
        url("queuestatus_changelist") + "?live=1": ['id="q-sizes"', "Dead letters"],
        url("queuestatus_chart", "throughput"): ["<svg", "</svg>"],
        url("queuestatus_chart", "run-time"): ["<svg", "</svg>"],
        url("queuedtask_changelist"): [f"Ready on <code>{queue}</code>", "Next schedules"],
    }


# Every admin page answers 200 for a superuser with the contents it exists for (issue 16).
def test_every_admin_page_answers(db_alias: str, cluster: Any, superuser_client: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from qdjango import schedule

    ok = async_task(jobs.add, 1, 2, group="admin")
    bad = async_task(jobs.fail, "shown in the admin", group="admin")
    assert result(ok, wait=WAIT) == 3 and fetch(bad, wait=WAIT) is not None
    later = timezone.now() + timedelta(days=1)  # never fires during the test
    plan = schedule(jobs.add, 2, 2, name=f"admin-pages-{uuid.uuid4().hex[:6]}", next_run=later)
    pages = _pages(Task.objects.get(pk=ok), Task.objects.get(pk=bad), plan, cluster.config.queue)
    try:
        for page, expected in pages.items():
            response = superuser_client.get(page)
            assert response.status_code == 200, page
            body = b"".join(response) if response.streaming else response.content
            text = body.decode()
            missing = [e for e in expected if e not in text]
            assert not missing, (page, missing)
    finally:
        plan.delete()
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
