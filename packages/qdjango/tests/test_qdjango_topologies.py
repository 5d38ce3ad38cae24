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

from qdjango import async_task, result

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
