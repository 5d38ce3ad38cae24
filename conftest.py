"""Fixtures shared by every test in the workspace: private Redis servers, signing keys."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from tests.support.servers import RedisServer, redis_server_binary, service_missing
from tests.support.topologies import LocalRedisCluster, LocalSentinelGroup, redis_cli_binary

TEST_SECRET = "q-test-secret-key-0123456789abcdef"


@pytest.fixture(scope="session")
def redis_binary() -> str:
    binary = redis_server_binary()
    if binary is None:
        service_missing("redis-server not found on PATH (or at $REDIS_SERVER)")
    assert binary is not None
    return binary


@pytest.fixture(scope="session")
def redis_server(redis_binary: str) -> Iterator[RedisServer]:
    """This test process's own redis-server, shared by its tests (flushed between them)."""
    server = RedisServer(redis_binary, debug=True)
    server.start()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of a private, empty Redis database; restarted first if a test left it down."""
    redis_server.start()
    client = redis_server.client()
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def redis_factory(redis_binary: str) -> Iterator[Callable[..., RedisServer]]:
    """Start extra private servers (for tests that kill, stall or restart Redis)."""
    servers: list[RedisServer] = []

    def make(**kwargs: object) -> RedisServer:
        server = RedisServer(redis_binary, **kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def redis_cluster(redis_binary: str) -> Iterator[LocalRedisCluster]:
    """This test process's own Redis Cluster (3 masters, 3 replicas), shared by its tests."""
    cli = redis_cli_binary()
    if cli is None:
        service_missing("redis-cli not found on PATH (needed to create a Redis Cluster)")
    assert cli is not None
    cluster = LocalRedisCluster(redis_binary, cli)
    try:
        yield cluster.start()
    finally:
        cluster.close()


@pytest.fixture
def redis_cluster_url(redis_cluster: LocalRedisCluster) -> str:
    """``redis+cluster://`` URL of the session's Redis Cluster, every master flushed."""
    redis_cluster.wait_ready()
    redis_cluster.flush()
    return redis_cluster.url


@pytest.fixture(scope="session")
def redis_sentinel(redis_binary: str) -> Iterator[LocalSentinelGroup]:
    """This test process's own Sentinel group (master, replica, 3 sentinels)."""
    group = LocalSentinelGroup(redis_binary)
    try:
        yield group.start()
    finally:
        group.close()


@pytest.fixture
def redis_sentinel_url(redis_sentinel: LocalSentinelGroup) -> str:
    """``redis+sentinel://`` URL of the session's Sentinel group, its master flushed."""
    redis_sentinel.wait_ready()
    redis_sentinel.flush()
    return redis_sentinel.url


@pytest.fixture
def topology_factory(redis_binary: str) -> Iterator[Callable[[str], object]]:
    """A Redis Cluster (``"cluster"``) or Sentinel group (``"sentinel"``) of the test's own,
    for tests that kill its nodes."""
    made: list[LocalRedisCluster | LocalSentinelGroup] = []

    def make(kind: str) -> object:
        if kind == "cluster":
            cli = redis_cli_binary()
            if cli is None:
                service_missing("redis-cli not found on PATH (needed to create a Redis Cluster)")
            assert cli is not None
            made.append(LocalRedisCluster(redis_binary, cli))
        else:
            made.append(LocalSentinelGroup(redis_binary))
        return made[-1].start()

    yield make
    for topology in made:
        topology.close()


@pytest.fixture
def queue_name() -> str:
    """A queue name no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def secret() -> str:
    return TEST_SECRET


@pytest.fixture(autouse=True)
def _q_secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Q_SECRET_KEY for code under test that reads the environment (children inherit it)."""
    if "Q_SECRET_KEY" not in os.environ:
        monkeypatch.setenv("Q_SECRET_KEY", TEST_SECRET)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run ``@pytest.mark.slow`` tests first, so xdist overlaps them with the many short ones
    instead of leaving one long test to finish alone at the end. The sort is stable and the
    same in every xdist worker, which all must collect the same order."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
