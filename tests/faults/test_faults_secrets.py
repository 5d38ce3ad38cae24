"""Secrets are never shown: Redis passwords in any form of URL or keyword argument, and task
keyword arguments named like secrets, in logs (at any level, with ``log_args`` too), errors,
the admin and ``qinfo``."""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from qredis import Producer, RedisTransport, TransportConnectionError
from tests.faults import tasks
from tests.faults.support import ClusterProcess
from tests.support.servers import RedisServer, free_port

PASSWORD = "query-pw-5e2b9d"
API_KEY = "sk_live_4f7a0c"
CARD_TOKEN = "tok_visa_91b2"
IBAN = "DE89370400440532013000"


@pytest.fixture
def locked_redis(redis_factory: Callable[..., RedisServer]) -> RedisServer:
    server = redis_factory()
    client = server.client()
    client.config_set("requirepass", PASSWORD)
    client.close()
    return server


# Guarantee (issue 11, item 9): a password given as ?password= in the URL never reaches the
# logs, and keyword arguments named like secrets (plus the names of secret_names) are masked
# even with log_args at the debug level, while the rest of the arguments are shown.
def test_a_query_password_and_secret_keyword_arguments_never_reach_the_logs(
    locked_redis: RedisServer, queue_name: str, tmp_path: Path
) -> None:
    url = f"redis://127.0.0.1:{locked_redis.port}/0?password={PASSWORD}"
    cluster = ClusterProcess(
        [
            "--redis-url",
            url,
            "--queue",
            queue_name,
            "--result-namespace",
            queue_name,
            "--workers",
            "1",
            "--log-level",
            "debug",
            "--log-args",
            "--json-logs",
        ],
        tmp_path / "cluster.log",
        env={"Q_SECRET_NAMES": "iban"},
    )
    try:
        cluster.wait_for('"cluster.started"')
        with Producer(url, queue_name, namespace=queue_name) as producer:
            task_id = producer.enqueue(
                tasks.charge, 4242, api_key=API_KEY, card_token=CARD_TOKEN, iban=IBAN
            )
            assert producer.result(task_id, wait=30) == 4242
        cluster.wait_for('"task.finished"')
    finally:
        code, text = cluster.stop()
    assert code == 0, text
    assert "4242" in text  # log_args is on: the arguments that are not secret are logged
    for secret in (PASSWORD, API_KEY, CARD_TOKEN, IBAN, os.environ["Q_SECRET_KEY"]):
        assert secret not in text, secret
    assert "?password=***" in text  # the URL, logged masked


# Guarantee (issue 11, item 9): errors name the server with its password masked, whether the
# password came in user:pass@, ?password= or a redis-py keyword argument; so do reprs.
def test_errors_and_reprs_mask_the_password_in_every_form(queue_name: str) -> None:
    port = free_port()  # nothing listens: every call fails
    forms: list[dict[str, Any]] = [
        {"url": f"redis://user:{PASSWORD}@127.0.0.1:{port}/0"},
        {"url": f"redis://127.0.0.1:{port}/0?password={PASSWORD}"},
        {"host": "127.0.0.1", "port": port, "password": PASSWORD},
    ]
    for form in forms:
        producer = Producer(queue=queue_name, retry_for=0.1, socket_timeout=0.5, **form)
        with pytest.raises(TransportConnectionError) as caught:
            producer.enqueue(tasks.noop, 1)
        shown = "".join(traceback.format_exception(caught.value))
        shown += repr(producer.transport) + repr(producer.transport._conn.spec)
        assert PASSWORD not in shown, (form, shown)
        assert "127.0.0.1" in shown
        producer.close()
    transport = RedisTransport(queue_name, host="127.0.0.1", port=port, password=PASSWORD)
    assert PASSWORD not in repr(transport) + transport.url
    transport.close()


# Guarantee (issue 11, item 9): the admin shows a task's secret keyword arguments masked (the
# task's page and a dead letter's line on the Queue page), and qinfo --config masks the Redis
# password of Q_CLUSTER["redis"], as a URL and as keyword arguments.
@pytest.mark.django_db
def test_the_admin_and_qinfo_mask_secrets(
    settings: Any, admin_client: Any, redis_server: RedisServer, queue_name: str
) -> None:
    from io import StringIO

    from django.core.management import call_command
    from django.urls import reverse

    from qcore import TaskMessage, TaskResult
    from qdjango import connection
    from qdjango.conf import task_codec
    from qdjango.store import DjangoResultStore

    settings.Q_CLUSTER = {
        "name": queue_name,
        "redis": redis_server.url,
        "secret_names": ["iban"],
    }
    kwargs = {"api_key": API_KEY, "card_token": CARD_TOKEN, "iban": IBAN, "amount": 4242}
    message = TaskMessage.new(tasks.charge, (), kwargs)
    record = TaskResult.from_message(message, result=4242, success=True)
    DjangoResultStore(using="default", save_limit=0).save_many([record])
    task_page = admin_client.get(
        reverse("admin:qdjango_success_change", args=[message.id])
    ).content.decode()
    transport = connection.transport()
    transport.enqueue(message.id, task_codec().encode_message(message))
    [delivery] = transport.fetch("admin-test", 1)
    transport.dead_letter(delivery, "for the admin")
    queue_page = admin_client.get(reverse("admin:qdjango_queuestatus_changelist")).content.decode()
    for page in (task_page, queue_page):
        assert "amount" in page and "4242" in page
        for secret in (API_KEY, CARD_TOKEN, IBAN):
            assert secret not in page, secret

    for redis in (
        f"redis://127.0.0.1:{redis_server.port}/0?password={PASSWORD}",
        {"host": "127.0.0.1", "port": redis_server.port, "password": PASSWORD},
    ):
        settings.Q_CLUSTER = {"name": queue_name, "redis": redis}
        out = StringIO()
        call_command("qinfo", "--config", stdout=out)
        text = out.getvalue()
        assert "redis" in text and "***" in text and PASSWORD not in text, text
