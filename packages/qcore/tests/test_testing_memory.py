"""The in-memory transport and result store pass the contracts the Redis ones pass."""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Callable

import pytest

from qcore import ConfigError
from qcore.testing import MemoryResultStore, MemoryTransport
from qcore.testing.contract import ResultStoreContract, TransportContract, record


class TestMemoryTransportContract(TransportContract):
    @pytest.fixture
    def make_transport(self) -> Callable[..., MemoryTransport]:
        space = uuid.uuid4().hex

        def make(max_attempts: int = 3, replay_window: float = 3600.0) -> MemoryTransport:
            return MemoryTransport(
                "contract", space=space, max_attempts=max_attempts, replay_window=replay_window
            )

        return make

    @pytest.fixture
    def transport(self, make_transport: Callable[..., MemoryTransport]) -> MemoryTransport:
        return make_transport()


class TestMemoryResultStoreContract(ResultStoreContract):
    @pytest.fixture
    def store(self) -> MemoryResultStore:
        return MemoryResultStore()


def test_each_transport_has_its_own_space_unless_named() -> None:
    a, b = MemoryTransport(), MemoryTransport()
    a.enqueue("x", b"1")
    assert (a.queue_size(), b.queue_size()) == (1, 0)
    shared = MemoryTransport(space=a.space)
    assert shared.queue_size() == 1
    assert MemoryTransport("other", space=a.space).queue_size() == 0  # a space holds queues


def test_make_due_runs_delayed_tasks_now() -> None:
    transport = MemoryTransport()
    transport.enqueue("later", b"x", delay=3600)
    assert transport.fetch("c1") == []
    assert transport.next_due() is not None and transport.next_due() > 3000  # type: ignore[operator]
    assert transport.make_due() == 1
    [delivery] = transport.fetch("c1")
    assert delivery.task_id == "later"
    assert transport.next_due() is None


def test_the_payload_of_a_held_task_is_readable() -> None:
    transport = MemoryTransport()
    transport.enqueue("t", b"payload")
    [delivery] = transport.fetch("c1")
    assert transport.payload("t") == b"payload"
    transport.ack([delivery])
    assert transport.payload("t") is None


def test_a_store_keeps_records_pickled_and_lists_them() -> None:
    store = MemoryResultStore()
    rec = record(result=[1, 2])
    store.save_many([rec])
    got = store.get(rec.id)
    assert got == rec and got is not rec
    assert store.records() == [rec]
    clone = pickle.loads(pickle.dumps(store))
    assert clone.records() == [rec]


@pytest.mark.parametrize("kwargs", [{"queue": ""}, {"max_attempts": 0}])
def test_bad_parameters_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        MemoryTransport(**kwargs)  # type: ignore[arg-type]
