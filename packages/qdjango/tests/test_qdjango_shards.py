"""A Django site whose queue is sharded (``Q_CLUSTER["shards"]``): async_task spreads tasks over
the shards, and ``qinfo``, the admin's Queued tasks and Queue pages see every shard."""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

from django.core.management import call_command
from django.urls import reverse
from packages.qdjango.tests import jobs
from packages.qdjango.tests.conftest import q_cluster_value

from qdjango import async_task, connection
from qredis import ShardedQueue


def test_a_sharded_site_spreads_its_tasks_and_its_views_see_every_shard(
    db_alias: str, settings: Any, redis_url: str, queue_name: str, superuser_client: Any
) -> None:
    settings.Q_CLUSTER = q_cluster_value(redis_url, queue_name, db_alias, shards=3)
    ids = [async_task(jobs.add, i, 1) for i in range(30)]
    later = async_task(jobs.add, 5, 5, q_options={"countdown": 3600})
    transport = connection.transport()
    assert isinstance(transport, ShardedQueue)
    spread = Counter(transport.shard(i).queue for i in ids)
    assert len(spread) == 3, spread
    assert transport.queue_size() == 30 and transport.delayed_size() == 1

    out = io.StringIO()
    call_command("qinfo", stdout=out)
    assert "30" in out.getvalue(), out.getvalue()

    page = superuser_client.get(reverse("admin:qdjango_queuedtask_changelist"))
    html = page.content.decode()
    assert page.status_code == 200
    assert all(i in html for i in ids) and later in html
    response = superuser_client.post(
        reverse("admin:qdjango_queuedtask_changelist"),
        {"task_id": [f"{queue_name} {i}" for i in ids[:6]]},
        follow=True,
    )
    assert "6 waiting task(s) deleted" in response.content.decode()
    assert transport.queue_size() == 24
    queue_page = superuser_client.get(reverse("admin:qdjango_queuestatus_changelist"))
    assert queue_page.status_code == 200


def test_qdjango_aio_spreads_over_the_shards_too(
    db_alias: str, settings: Any, redis_url: str, queue_name: str
) -> None:
    import asyncio

    from qdjango import aio

    settings.Q_CLUSTER = q_cluster_value(redis_url, queue_name, db_alias, shards=3)

    async def main() -> list[str]:
        return list(await asyncio.gather(*(aio.async_task(jobs.add, i, 1) for i in range(30))))

    ids = asyncio.run(main())
    transport = connection.transport()
    assert isinstance(transport, ShardedQueue)
    assert sum(t.queue_size() for t in transport.transports) == 30
    assert all(t.queue_size() for t in transport.transports)
    assert {transport.shard(i).queue for i in ids} == {t.queue for t in transport.transports}


def test_every_queue_of_a_sharded_site_is_spread_over_its_shards(
    db_alias: str, settings: Any, redis_url: str, queue_name: str
) -> None:
    import asyncio

    from qdjango import aio

    other = f"{queue_name}-b"
    settings.Q_CLUSTER = q_cluster_value(
        redis_url, queue_name, db_alias, queues=[queue_name, other], shards=3
    )
    ids = [async_task(jobs.add, i, 1, q_options={"queue": other}) for i in range(30)]

    async def main() -> list[str]:
        return await aio.enqueue_many(jobs.add, [(i, 1) for i in range(30)], queue=other)

    ids += asyncio.run(main())
    transport = connection.queue_transport(other)
    assert isinstance(transport, ShardedQueue) and transport.queue == other
    spread = Counter(transport.shard(i).queue for i in ids)
    assert len(spread) == 3, spread
    assert transport.queue_size() == 60 and connection.transport().queue_size() == 0
