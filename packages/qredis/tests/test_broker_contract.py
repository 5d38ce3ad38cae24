"""RedisBroker against the transport contract, on the session's private redis-server."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from packages.qredis.tests.transport_contract import TransportContract

from qredis import RedisBroker


class TestRedisBrokerContract(TransportContract):
    @pytest.fixture
    def transport(self, make_broker: Callable[..., RedisBroker]) -> RedisBroker:
        return make_broker()

    @pytest.fixture
    def make_transport(self, make_broker: Callable[..., RedisBroker]) -> Callable[..., RedisBroker]:
        return make_broker
