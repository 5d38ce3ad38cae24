"""RedisTransport against the transport contract, on the session's private redis-server."""

from __future__ import annotations

from collections.abc import Callable

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
