"""A Django site on a Redis Cluster or a Sentinel group: ``Q_CLUSTER["redis"]`` is a
``redis+cluster://`` or ``redis+sentinel://`` URL, and async_task, result, the cluster,
``qinfo`` and the admin's Queue page work as on one Redis."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import reverse
from packages.qdjango.tests import jobs
from packages.qdjango.tests.conftest import q_cluster_value

from qcore import ConfigError
from qdjango import async_task, result
from qredis import ReplicationTimeout

WAIT = 30_000


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["cluster", "sentinel"])
def test_a_site_on_a_redis_cluster_or_sentinel_group(
    kind: str,
    request: pytest.FixtureRequest,
    db_alias: str,
    settings: Any,
    queue_name: str,
    superuser_client: Any,
) -> None:
    from qdjango.cluster import build_cluster, close_connections

    url = request.getfixturevalue(f"redis_{kind}_url")
    settings.Q_CLUSTER = q_cluster_value(url, queue_name, db_alias)
    cluster = build_cluster()
    close_connections()
    cluster.start(wait=120)
    try:
        assert result(async_task(jobs.add, 2, 3), wait=WAIT) == 5
        out = io.StringIO()
        call_command("qinfo", stdout=out)
        assert cluster.cluster_id in out.getvalue()
        page = superuser_client.get(reverse("admin:qdjango_queuestatus_changelist"))
        assert page.status_code == 200 and queue_name.encode() in page.content
    finally:
        assert cluster.stop(timeout=30) == 0


def test_wait_replicas_makes_async_task_wait_for_the_replica(
    redis_sentinel: Any, redis_sentinel_url: str, settings: Any, queue_name: str, db_alias: str
) -> None:
    from qdjango import connection

    settings.Q_CLUSTER = q_cluster_value(
        redis_sentinel_url, queue_name, db_alias, wait_replicas=1, wait_timeout=1.5
    )
    task_id = async_task(jobs.add, 1, 2)
    master = redis_sentinel.master()
    replica = next(s for s in redis_sentinel.servers if s is not master).client()
    assert replica.hexists(connection.transport().keys.msg, task_id)

    settings.Q_CLUSTER = q_cluster_value(
        redis_sentinel_url, queue_name, db_alias, wait_replicas=2, wait_timeout=0.2
    )
    with pytest.raises(ReplicationTimeout, match="only 1 of wait_replicas=2"):
        async_task(jobs.add, 1, 2)


@pytest.mark.parametrize("value", [-1, "1", 1.5])
def test_a_bad_wait_replicas_is_refused(settings: Any, value: object) -> None:
    from qdjango.conf import get_settings

    settings.Q_CLUSTER = {"wait_replicas": value}
    with pytest.raises(ConfigError, match=r"wait_replicas.*whole number of replicas"):
        get_settings()
