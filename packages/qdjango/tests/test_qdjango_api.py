"""The task API against a real cluster and a private Redis, on SQLite and PostgreSQL.

The first tests are the examples of Django Q's "Tasks" page, as written there (with
``async_task`` for ``async``, and ``from math import copysign`` where the page has the
invalid ``import math.copysign``).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from packages.qdjango.tests import jobs

import qdjango
from qdjango import async_task, count_group, delete_group, fetch, fetch_group, result
from qdjango import result_group as result_group_
from qdjango.errors import ConfigError, UnknownOption
from qdjango.models import Failure, Success, Task

WAIT = 20_000  # ms: generous, since a loaded CI machine can be slow; returns on the save


def test_async_is_async_task() -> None:
    assert getattr(qdjango, "async") is async_task
    assert "async" in qdjango.__all__


# -- the seed's Tasks page ------------------------------------------------------------------


def test_seed_async_example(db_alias: str, cluster: Any) -> None:
    # create the task
    async_task("math.copysign", 2, -2)

    # or with import and storing the id
    from math import copysign

    task_id = async_task(copysign, 2, -2)

    # get the result
    task_result = result(task_id, wait=WAIT)
    assert task_result == -2.0

    # hooks.py: print_result(task) prints task.result; here the hook proves it got the row
    hooked = async_task("math.modf", 2.5, hook="packages.qdjango.tests.jobs.mark_saved")
    task = fetch(hooked, wait=WAIT)
    assert task.result == (0.5, 2.0)
    _await_hook(hooked, db_alias)


def test_seed_group_example(db_alias: str, cluster: Any) -> None:
    group = f"modf-{db_alias}"
    for i in range(4):
        async_task("math.modf", i, group=group)

    # after the tasks have finished you can get the group results
    results = result_group_(group, count=4, wait=WAIT)
    assert sorted(results) == [(0.0, 0.0), (0.0, 1.0), (0.0, 2.0), (0.0, 3.0)]

    # count the number of failures
    failure_count = count_group(group, failures=True)
    assert failure_count == 0
    # only use the successes
    successes = fetch_group(group)
    if failure_count:
        successes = successes.exclude(success=False)
    assert sorted(task.result for task in successes) == sorted(results)
    # this is the same as
    successes = fetch_group(group, failures=False)
    assert sorted(task.result for task in successes) == sorted(results)
    # and the same as
    assert sorted(result_group_(group)) == sorted(results)

    assert count_group(group) == 4
    assert delete_group(group) == 4  # only the label, by default
    assert count_group(group) == 0 and Task.objects.count() >= 4


def test_seed_sync_example(db_alias: str, q_cluster: dict[str, Any]) -> None:
    # create a synchronous task
    task_id = async_task("my.buggy.code", sync=True)

    # the task will then be available immediately
    task = fetch(task_id)

    # and can be examined
    assert not task.success
    assert "my.buggy.code" in f"An error occurred: {task.result}"


def test_seed_connection_economy_example(db_alias: str, cluster: Any, cluster_redis: Any) -> None:
    from qdjango.conf import redis_client

    # The cluster's worker opens its connections (fetch, ack, notices) on its first batch:
    # counted before, not as the client's.
    assert _results([async_task("math.modf", 1.5)]) == [(0.5, 1.0)]
    before = _clients(cluster_redis)
    ids = [async_task("math.modf", 2.5, redis=redis_client) for _ in range(50)]
    assert _clients(cluster_redis) - before <= 3
    assert _results(ids) == [(0.5, 2.0)] * 50


# -- results --------------------------------------------------------------------------------


def test_result_is_none_before_and_the_value_after(db_alias: str, cluster: Any) -> None:
    task_id = async_task("packages.qdjango.tests.jobs.sleep", 0.3)
    assert result(task_id) is None
    assert fetch(task_id) is None
    assert result(task_id, wait=WAIT) == 0.3
    task = fetch(task_id)
    assert fetch(task.name).id == task_id  # by humanized name
    assert fetch(task_id).name == task.name
    assert result(task.name) == 0.3
    assert task.time_taken() >= 0.3  # enqueue to finish, queue time included
    assert task.started <= task.stopped
    assert task.func == "packages.qdjango.tests.jobs.sleep" and task.args == (0.3,)
    assert Success.objects.filter(pk=task_id).exists()
    assert not Failure.objects.filter(pk=task_id).exists()
    assert Task.get_result(task_id) == 0.3


def test_wait_is_woken_by_the_save_not_by_polling(db_alias: str, cluster: Any) -> None:
    task_id = async_task("packages.qdjango.tests.jobs.sleep", 1.0)
    with CaptureQueriesContext(connections[db_alias]) as queries:
        value = result(task_id, wait=WAIT)
    returned = time.time()
    assert value == 1.0
    saved = fetch(task_id).stopped.timestamp()
    assert returned - saved < 1.5, "result() returned long after the save"
    # Polling every 10 ms for a second would be ~100 queries; a notice costs ~3.
    assert len(queries) <= 5, [q["sql"] for q in queries]


def test_wait_for_a_falsy_result_returns(db_alias: str, cluster: Any) -> None:
    task_id = async_task(jobs.empty_list)
    assert result(task_id, wait=-1) == []
    none_id = async_task(jobs.nothing)
    task = fetch(none_id, wait=-1)
    assert task.success and task.result is None


def test_wait_times_out_with_none(db_alias: str, q_cluster: dict[str, Any]) -> None:
    begun = time.monotonic()
    assert result("0" * 32, wait=300) is None
    assert fetch("acorn-acre-alpha-amber", wait=200) is None
    assert 0.45 <= time.monotonic() - begun < 5


def test_failure_holds_its_error(db_alias: str, cluster: Any) -> None:
    task_id = async_task(jobs.fail, "boom for the test")
    task = fetch(task_id, wait=WAIT)
    assert not task.success
    assert "ValueError: boom for the test" in task.result
    assert "Traceback" in task.result and "jobs.py" in task.result
    assert Failure.objects.filter(pk=task_id).exists()
    assert not Success.objects.filter(pk=task_id).exists()


def test_missing_dotted_path_is_a_failure_naming_it(db_alias: str, cluster: Any) -> None:
    task_id = async_task("packages.qdjango.tests.jobs.no_such_function", 1)
    assert isinstance(task_id, str) and len(task_id) == 32
    task = fetch(task_id, wait=WAIT)
    assert not task.success
    assert "packages.qdjango.tests.jobs.no_such_function" in task.result
    assert task.func == "packages.qdjango.tests.jobs.no_such_function"


def test_lambdas_objects_and_kwargs_travel(db_alias: str, cluster: Any) -> None:
    lam = async_task(lambda x, y=1: x * 10 + y, 4, y=2)
    obj = async_task(jobs.Flaky(40), 2)
    kw = async_task(jobs.echo, 1, timeout_like="x", q_options={"timeout": 5})
    assert result(lam, wait=WAIT) == 42
    assert result(obj, wait=WAIT) == 42
    assert result(kw, wait=WAIT) == ((1,), {"timeout_like": "x"})


def test_q_options_equal_keywords(db_alias: str, cluster: Any) -> None:
    # The task's own kwargs may use Q's option names when the options go in q_options.
    opts = {
        "hook": "packages.qdjango.tests.jobs.mark_saved",
        "group": f"opts-{db_alias}",
        "timeout": 30,
    }
    by_options = async_task(jobs.echo, timeout=1, group="mine", q_options=opts)
    by_keywords = async_task(
        "math.modf",
        2.5,
        hook="packages.qdjango.tests.jobs.mark_saved",
        group=opts["group"],
        timeout=30,
    )
    assert result(by_options, wait=WAIT) == ((), {"timeout": 1, "group": "mine"})
    assert result(by_keywords, wait=WAIT) == (0.5, 2.0)
    for task_id in (by_options, by_keywords):
        assert fetch(task_id).group == opts["group"]
        _await_hook(task_id, db_alias)
    with pytest.raises(UnknownOption, match="cached"):
        async_task(jobs.echo, q_options={"cached": True})


@pytest.mark.slow
def test_a_timed_out_task_is_a_failure_in_the_database(db_alias: str, cluster: Any) -> None:
    # The sentinel kills the worker and saves the Failure itself, through the Django store.
    task_id = async_task(jobs.sleep, 30, timeout=1)
    task = fetch(task_id, wait=WAIT)
    assert task is not None and not task.success
    assert "timed out" in task.result.lower() and task.func == "packages.qdjango.tests.jobs.sleep"
    assert result(async_task(jobs.add, 2, 2), wait=WAIT * 2) == 4  # a new worker took over


def test_save_false_stores_no_success(db_alias: str, cluster: Any) -> None:
    unsaved = async_task(jobs.add, 1, 2, save=False)
    saved = async_task(jobs.add, 2, 2)
    assert result(saved, wait=WAIT) == 4
    # The unsaved task was queued before the saved one on a single worker: it has run.
    assert cluster.transport.queue_size() == 0
    assert fetch(unsaved) is None


def test_sync_runs_inline_and_reraises(db_alias: str, q_cluster: dict[str, Any]) -> None:
    task_id = async_task(jobs.add, 20, 22, sync=True, hook="packages.qdjango.tests.jobs.mark_saved")
    task = fetch(task_id)
    assert task.result == 42 and task.cluster == f"{jobs.HOOK_MARK}:Task"
    with pytest.raises(ValueError, match="raised inline"):
        async_task(jobs.fail, "raised inline", sync=True)
    failure = Failure.objects.get()
    assert "ValueError: raised inline" in failure.result
    assert "_Catch" not in failure.result  # the traceback shows the task, not our wrapper


def test_hook_of_an_unsaved_task_gets_an_unsaved_task(
    db_alias: str, q_cluster: dict[str, Any]
) -> None:
    task_id = async_task(jobs.add, 1, 1, save=False, sync=True, hook=jobs.save_if_unsaved)
    task = fetch(task_id)
    assert task.result == 2 and task.cluster == "saved-by-hook"
    saved_id = async_task(jobs.add, 1, 2, sync=True, hook=jobs.save_if_unsaved)
    assert fetch(saved_id).cluster is None  # it had a row: the hook left it alone


def test_admin_label_comes_from_q_cluster(settings: Any) -> None:
    from django.apps import apps

    config = apps.get_app_config("qdjango")
    assert config.verbose_name == "Q"
    settings.Q_CLUSTER = {"label": "Background jobs"}
    assert config.verbose_name == "Background jobs"


def test_global_sync_setting(db_alias: str, settings: Any, q_cluster: dict[str, Any]) -> None:
    settings.Q_CLUSTER = {**q_cluster, "sync": True}
    assert result(async_task(jobs.add, 1, 1)) == 2
    assert result(async_task(jobs.add, 1, 1, sync=False), wait=0) is None  # queued instead


def test_signals_of_a_sync_task_and_of_a_queued_one(
    db_alias: str, q_cluster: dict[str, Any]
) -> None:
    from qdjango import signals

    seen: list[tuple[str, Any]] = []

    def receiver(name: str) -> Any:
        def receive(sender: Any, event: Any, **kwargs: Any) -> None:
            seen.append((name, kwargs.get("task")))

        return receive

    receivers = {name: receiver(name) for name in ("pre_enqueue", "pre_execute", "post_execute")}
    for name, receive in receivers.items():
        getattr(signals, name).connect(receive)
    try:
        task_id = async_task(jobs.add, 2, 3, sync=True)
        assert [name for name, _ in seen] == ["pre_execute", "post_execute"]  # as django-q2
        task = seen[1][1]
        assert isinstance(task, Task) and task.pk == task_id and task.result == 5
        assert Task.objects.using(task._state.db).get(pk=task_id).result == 5  # saved
        seen.clear()
        queued = async_task(jobs.add, 1, 1)
        [(name, sent)] = seen
        assert name == "pre_enqueue" and sent["id"] == queued and sent["args"] == (1, 1)
    finally:
        for name, receive in receivers.items():
            getattr(signals, name).disconnect(receive)


def test_a_clusters_bus_carries_only_the_signals_with_receivers() -> None:
    from qcore.events import TaskEnqueued, TasksSettled, TaskStarted, TaskSucceeded, TaskTimedOut
    from qdjango import signals

    def receive(**kwargs: Any) -> None:
        pass

    from django.test import override_settings

    with override_settings(TASKS={}):  # no django.tasks backend of Q's: see below
        assert not signals.signal_bus(connected_only=True).wants(TaskStarted)
        assert signals.signal_bus().wants(TaskStarted)  # a producer's looks at receivers per call
        signals.pre_execute.connect(receive)
        try:
            bus = signals.signal_bus(connected_only=True)
            assert bus.wants(TaskStarted)
            assert not bus.wants(TaskSucceeded) and not bus.wants(TaskEnqueued)
        finally:
            signals.pre_execute.disconnect(receive)
    # With Q's django.tasks backend in TASKS, django.tasks's task_finished is sent (Django
    # itself connects a receiver to it) from the saved records: the bus carries a batch's,
    # and still builds no per-task event for a success.
    bus = signals.signal_bus(connected_only=True)
    assert bus.wants(TasksSettled) and bus.wants(TaskTimedOut)
    assert not bus.wants(TaskSucceeded) and not bus.wants(TaskStarted)


def test_unpicklable_argument_fails_at_the_call(db_alias: str, q_cluster: dict[str, Any]) -> None:
    import threading

    from qcore import SerializationError

    with pytest.raises(SerializationError):
        async_task(jobs.echo, threading.Lock())


def test_redis_client_and_pool_are_reused(db_alias: str, cluster: Any, cluster_redis: Any) -> None:
    import redis

    client = redis.Redis.from_url(cluster_redis.url)
    pool = redis.ConnectionPool.from_url(cluster_redis.url)
    try:
        client.ping()
        before = _clients(cluster_redis)
        ids = [async_task(jobs.add, i, 1, redis=client) for i in range(30)]
        ids += [async_task(jobs.add, i, 2, redis=pool) for i in range(30)]
        # The client keeps its one connection; the pool opens one; nothing per call (60 calls).
        # The shared cluster's own jobs (status, owed records, trims) connect now and then too.
        assert _clients(cluster_redis) - before <= 12
        assert len(client.connection_pool._available_connections) == 1
        assert pool._created_connections == 1
        assert _results(ids) == [i + 1 for i in range(30)] + [i + 2 for i in range(30)]
    finally:
        client.close()
        pool.disconnect()


def test_django_redis_pool_is_used(
    db_alias: str, cluster: Any, settings: Any, cluster_redis: Any
) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "q": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": cluster_redis.url},
    }
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "django_redis": "q"}
    from django_redis import get_redis_connection

    from qdjango.connection import transport

    shared = get_redis_connection("q")
    assert transport().client is shared
    shared.ping()
    before = _clients(cluster_redis)
    ids = [async_task(jobs.add, i, i) for i in range(40)]
    assert _clients(cluster_redis) - before <= 3
    assert _results(ids) == [2 * i for i in range(40)]


def test_queue_size_counts_waiting_tasks(db_alias: str, q_cluster: dict[str, Any]) -> None:
    assert qdjango.queue_size() == 0
    from qdjango.connection import transport

    async_task(jobs.add, 1, 1)
    async_task(jobs.add, 1, 1, q_options={"transport": transport()})
    async_task(jobs.add, 1, 1, q_options={"broker": transport()})  # django-q2's name
    assert qdjango.queue_size() == 3
    assert qdjango.queue_size(transport()) == qdjango.queue_size(broker=transport()) == 3
    with pytest.raises(ConfigError, match="not both"):
        qdjango.queue_size(transport(), broker=object())


def test_countdown_delays_the_task(db_alias: str, cluster: Any) -> None:
    begun = time.time()
    task_id = async_task(jobs.add, 1, 2, q_options={"countdown": 1.0})
    task = fetch(task_id, wait=WAIT)
    assert task.result == 3
    assert task.stopped.timestamp() - begun >= 0.95


def test_bad_group_and_task_name(db_alias: str, q_cluster: dict[str, Any]) -> None:
    from qcore import ConfigError

    with pytest.raises(ConfigError, match="group"):
        async_task(jobs.add, 1, 1, group="g" * 101)
    task_id = async_task(jobs.add, 1, 1, q_options={"task_name": "my-nightly-report"})
    assert isinstance(task_id, str)


def test_result_group_count_not_reached_gives_none(
    db_alias: str, q_cluster: dict[str, Any]
) -> None:
    group = "never-complete"
    async_task(jobs.add, 1, 1, group=group, sync=True)
    assert result_group_(group, count=2, wait=200) is None
    assert result_group_(group, count=1) == [2]
    assert delete_group(group, tasks=True) == 1
    assert result_group_(group) is None and fetch_group(group) is None


# -- helpers --------------------------------------------------------------------------------


def _results(ids: list[str], total_ms: float = WAIT) -> list[Any]:
    """Each task's result, all within one deadline (not WAIT per task)."""
    deadline = time.monotonic() + total_ms / 1000
    out = []
    for task_id in ids:
        left = max(1.0, (deadline - time.monotonic()) * 1000)
        task = fetch(task_id, wait=left)
        assert task is not None, f"task {task_id} had no result within {total_ms} ms"
        out.append(task.result)
    return out


def _clients(server: Any) -> int:
    """Connections the server has accepted so far (minus the probe's own): other processes
    (the cluster) may open one now and then, never one per call."""
    probe = server.client()
    try:
        return int(probe.info("stats")["total_connections_received"]) - 1
    finally:
        probe.close()


def _await_hook(task_id: str, alias: str, timeout: float = 20.0) -> None:
    """The hook marks the row it was given; it runs after the save (there is no event)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = Task.objects.using(alias).get(pk=task_id)
        if row.cluster == f"{jobs.HOOK_MARK}:Task":
            return
        time.sleep(0.05)
    raise AssertionError(f"the hook of {task_id} did not run: cluster={row.cluster!r}")


def test_setting_changes_give_back_the_pools(db_alias: str, q_cluster: dict[str, Any]) -> None:
    from qdjango.conf import reset
    from qredis import connection as qredis_connection

    reset()
    before = qredis_connection.shared_pool_count()
    async_task(jobs.add, 1, 1)
    assert qdjango.queue_size() == 1 and result("0" * 32, wait=10) is None
    assert qredis_connection.shared_pool_count() == before + 1
    reset()
    assert qredis_connection.shared_pool_count() == before


def test_redis_down_at_enqueue_is_a_clear_error(settings: Any, q_cluster: dict[str, Any]) -> None:
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    from tests.support.servers import free_port

    from qredis import TransportConnectionError

    port = free_port()
    settings.Q_CLUSTER = {
        **q_cluster,
        "redis": {"host": "127.0.0.1", "port": port, "retry": Retry(NoBackoff(), 0)},
    }
    with pytest.raises(TransportConnectionError, match=f"127.0.0.1:{port}"):
        async_task(jobs.add, 1, 1)


def test_q_options_priority_orders_the_queue(db_alias: str, q_cluster: dict[str, Any]) -> None:
    from qdjango.connection import transport

    plain = async_task(jobs.add, 1, 1)
    urgent = async_task(jobs.add, 1, 1, q_options={"priority": 50})
    late = async_task(jobs.add, 1, 1, q_options={"priority": -50})
    assert qdjango.queue_size() == 3
    got = [d.task_id for d in transport().fetch("test", count=3)]
    assert got == [urgent, plain, late]
    for bad in (101, "urgent"):
        with pytest.raises(ConfigError, match="priority"):
            async_task(jobs.add, 1, 1, q_options={"priority": bad})
    assert qdjango.queue_size() == 0


def test_q_cluster_queues_and_q_options_queue(
    db_alias: str, settings: Any, redis_url: str, queue_name: str
) -> None:
    from packages.qdjango.tests.conftest import q_cluster_value

    from qdjango.cluster import build_cluster
    from qdjango.connection import queue_transport
    from qredis import RedisQueues

    high, low = f"{queue_name}-high", f"{queue_name}-low"
    settings.Q_CLUSTER = q_cluster_value(redis_url, queue_name, db_alias, queues=[high, low])
    plain = async_task(jobs.add, 1, 1)  # to the first of the queues
    later = async_task(jobs.add, 1, 1, q_options={"queue": low})
    assert [d.task_id for d in queue_transport(high).fetch("c1", count=5)] == [plain]
    assert [d.task_id for d in queue_transport(low).fetch("c1", count=5)] == [later]
    with pytest.raises(ConfigError, match=f"unknown queue 'nowhere': Q_CLUSTER serves {high}"):
        async_task(jobs.add, 1, 1, q_options={"queue": "nowhere"})
    cluster = build_cluster()
    assert isinstance(cluster.transport, RedisQueues)
    assert cluster.transport.queues == (high, low) and cluster.transport.weights is None
    settings.Q_CLUSTER = q_cluster_value(redis_url, queue_name, db_alias, queues={high: 2, low: 1})
    assert build_cluster().transport.weights == (2, 1)  # type: ignore[attr-defined]
