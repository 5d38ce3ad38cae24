"""Fixtures for the cluster's end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.support import Bench


@pytest.fixture
def bench(redis_url: str, queue_name: str) -> Iterator[Bench]:
    b = Bench(redis_url, queue_name)
    yield b
    b.close()
