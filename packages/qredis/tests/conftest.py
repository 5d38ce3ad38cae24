"""Fixtures for qredis tests: transports on the session's private redis-server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from qredis import RedisTransport


@pytest.fixture
def make_transport(redis_url: str, queue_name: str) -> Iterator[Callable[..., RedisTransport]]:
    """Transports on the private server (queue ``queue_name`` unless told), closed afterwards."""
    made: list[RedisTransport] = []

    def make(queue: str | None = None, **kwargs: Any) -> RedisTransport:
        kwargs.setdefault("url", redis_url)
        transport = RedisTransport(queue or queue_name, **kwargs)
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close()


@pytest.fixture
def transport(make_transport: Callable[..., RedisTransport]) -> RedisTransport:
    return make_transport()
