"""Fixtures for qredis tests: brokers on the session's private redis-server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from qredis import RedisBroker


@pytest.fixture
def make_broker(redis_url: str, queue_name: str) -> Iterator[Callable[..., RedisBroker]]:
    """Brokers on the private server (queue ``queue_name`` unless told), closed afterwards."""
    made: list[RedisBroker] = []

    def make(queue: str | None = None, **kwargs: Any) -> RedisBroker:
        kwargs.setdefault("url", redis_url)
        broker = RedisBroker(queue or queue_name, **kwargs)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.close()


@pytest.fixture
def broker(make_broker: Callable[..., RedisBroker]) -> RedisBroker:
    return make_broker()
