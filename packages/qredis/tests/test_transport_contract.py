"""RedisTransport against the transport contract: on the session's private redis-server, on
its local Redis Cluster (3 masters, 3 replicas) and through its Sentinel group."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from qcore.testing.contract import TransportContract
from qredis import RedisTransport


class TestRedisTransportContract(TransportContract):
    # The contract's placeholders give way to conftest's fixtures of the same names.
    @pytest.fixture
    def transport(self, make_transport: Callable[..., RedisTransport]) -> RedisTransport:
        return make_transport()

    @pytest.fixture
    def make_transport(
        self, make_transport: Callable[..., RedisTransport]
    ) -> Callable[..., RedisTransport]:
        return make_transport


def _maker(url: str, queue_name: str) -> Iterator[Callable[..., RedisTransport]]:
    made: list[RedisTransport] = []

    def make(queue: str | None = None, **kwargs: Any) -> RedisTransport:
        kwargs.setdefault("url", url)
        transport = RedisTransport(queue or queue_name, **kwargs)
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close()


class TestRedisClusterTransportContract(TransportContract):
    """Every script of the transport touches one slot (the queue's hash tag), so the whole
    contract holds on a Redis Cluster through a ``redis+cluster://`` URL."""

    @pytest.fixture
    def make_transport(
        self, redis_cluster_url: str, queue_name: str
    ) -> Iterator[Callable[..., RedisTransport]]:
        yield from _maker(redis_cluster_url, queue_name)

    @pytest.fixture
    def transport(self, make_transport: Callable[..., RedisTransport]) -> RedisTransport:
        return make_transport()


class TestSentinelTransportContract(TransportContract):
    """The contract through a ``redis+sentinel://`` URL (the master the sentinels name)."""

    @pytest.fixture
    def make_transport(
        self, redis_sentinel_url: str, queue_name: str
    ) -> Iterator[Callable[..., RedisTransport]]:
        yield from _maker(redis_sentinel_url, queue_name)

    @pytest.fixture
    def transport(self, make_transport: Callable[..., RedisTransport]) -> RedisTransport:
        return make_transport()
