"""Fixtures for qdjango's tests.

A test that asks for ``db_alias`` runs twice: on SQLite and on PostgreSQL (skipped locally
when PostgreSQL does not answer, failed under CI). ``q_cluster`` points ``Q_CLUSTER`` at the
private Redis, a queue of its own and that database. ``cluster`` gives a real qcluster with
the Django store on it: one per database backend and test process, started on first use and
shared by the tests after it (starting worker processes that import Django takes seconds).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.servers import RedisServer, service_missing

BACKENDS = {"sqlite": "default", "postgres": "postgres"}


def _has_postgres() -> bool:
    from django.conf import settings

    return "postgres" in settings.DATABASES


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_alias" not in metafunc.fixturenames:
        return
    params = []
    for backend in BACKENDS:
        databases = ["default"]
        if backend == "postgres" and _has_postgres():
            databases.append("postgres")
        mark = pytest.mark.django_db(transaction=True, databases=databases)
        params.append(pytest.param(backend, id=backend, marks=[mark]))
    metafunc.parametrize("db_alias", params, indirect=True)


@pytest.fixture
def db_alias(request: pytest.FixtureRequest) -> str:
    """The database alias Q's tables are used on in this test."""
    backend = request.param
    if backend == "postgres" and not _has_postgres():
        service_missing("PostgreSQL is not answering on 127.0.0.1:5432")
    return BACKENDS[backend]


def q_cluster_value(redis_url: str, queue: str, alias: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": queue,
        "workers": 1,
        "redis": redis_url,
        "database": alias,
        "save_limit": 0,
        "retry": 20,
        "timeout": 15,
        "heartbeat": 1,
        "grace": 5,
        "status_interval": 1,
        **extra,
    }


@pytest.fixture
def q_cluster(settings: Any, redis_url: str, queue_name: str, db_alias: str) -> dict[str, Any]:
    """``Q_CLUSTER`` for this test: changing it resets qdjango's cached codecs and transports."""
    value = q_cluster_value(redis_url, queue_name, db_alias)
    settings.Q_CLUSTER = value
    return value


@pytest.fixture(scope="session")
def cluster_redis(redis_binary: str) -> Iterator[RedisServer]:
    """The shared clusters' own redis-server: never flushed by ``redis_url`` between tests
    (that would wipe a running cluster's consumers and status)."""
    server = RedisServer(redis_binary)
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def _clusters(
    django_db_setup: None, cluster_redis: RedisServer
) -> Iterator[Callable[[str], tuple[Any, dict[str, Any]]]]:
    from django.test import override_settings

    from qdjango.cluster import build_cluster, close_connections

    running: dict[str, tuple[Any, dict[str, Any]]] = {}

    def get(alias: str) -> tuple[Any, dict[str, Any]]:
        if alias not in running:
            cluster_redis.start()
            value = q_cluster_value(cluster_redis.url, f"qd-{uuid.uuid4().hex[:8]}", alias)
            with override_settings(Q_CLUSTER=value):
                cluster = build_cluster()
            close_connections()
            cluster.start(wait=120)
            running[alias] = (cluster, value)
        return running[alias]

    yield get
    codes = {alias: cluster.stop(timeout=30) for alias, (cluster, _) in running.items()}
    assert all(code == 0 for code in codes.values()), f"cluster exit codes: {codes}"


@pytest.fixture
def cluster(
    db_alias: str, settings: Any, _clusters: Callable[[str], tuple[Any, dict[str, Any]]]
) -> Iterator[Any]:
    """A running cluster on ``db_alias``; ``Q_CLUSTER`` in this process points at it."""
    running, value = _clusters(db_alias)
    assert running.is_running, "the shared cluster died in an earlier test"
    settings.Q_CLUSTER = value
    yield running
    # Give back any pool a test opened through the cluster's objects in this process (the
    # cluster's own processes have theirs): other tests count this process's pools.
    for obj in (running.transport, running.store, running.status_board):
        obj.close()


@pytest.fixture
def superuser_client(client: Any, db_alias: str) -> Any:
    from django.contrib.auth.models import User

    user = User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests")
    client.force_login(user)
    return client


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None,
) -> Iterator[None]:
    """pytest-django's hook before the test databases are made: the SQLite folder first."""
    from django.conf import settings

    settings.TEST_DIR.mkdir(exist_ok=True)
    yield
    # The database file is gone by now; SQLite may leave its WAL files beside it.
    name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    for suffix in ("-wal", "-shm"):
        if name:
            Path(f"{name}{suffix}").unlink(missing_ok=True)
    try:
        # Empty only once every test process sharing it has destroyed its databases.
        settings.TEST_DIR.rmdir()
    except OSError:
        pass
