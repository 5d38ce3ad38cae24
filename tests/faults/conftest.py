"""Fixtures of the fault suite: a test bench on the session's private Redis (or on a server
of the test's own, for tests that restart, stall or fill Redis) and a side-effect counter."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from packages.qdjango.tests.conftest import django_db_modify_db_settings

from tests.cluster.support import Bench
from tests.faults.support import Effects
from tests.support.servers import RedisServer

__all__ = ["django_db_modify_db_settings"]  # qdjango's: makes the SQLite folder first


@pytest.fixture
def bench(redis_url: str, queue_name: str) -> Iterator[Bench]:
    b = Bench(redis_url, queue_name)
    yield b
    b.close()


@pytest.fixture
def fx(redis_url: str) -> Iterator[Effects]:
    effects = Effects(redis_url)
    yield effects
    effects.close()


@pytest.fixture
def own_redis(redis_factory: Callable[..., RedisServer]) -> RedisServer:
    """A server of this test's own (appendonly, DEBUG allowed): it may be killed or stalled."""
    return redis_factory(debug=True)


@pytest.fixture
def own_bench(own_redis: RedisServer, queue_name: str) -> Iterator[Bench]:
    b = Bench(own_redis.url, queue_name)
    yield b
    b.close()


@pytest.fixture
def own_fx(own_redis: RedisServer) -> Iterator[Effects]:
    effects = Effects(own_redis.url)
    yield effects
    effects.close()
