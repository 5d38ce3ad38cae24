"""The contract every ``qcore.Transport`` implementation must pass (Redis and memory alike).

Subclass :class:`TransportContract` in a ``test_*.py`` file and provide two fixtures:
``transport`` (a fresh transport on an empty queue, ``max_attempts=3``) and
``make_transport`` (a factory ``make_transport(max_attempts=..., replay_window=...)`` for
the same queue).
Only the protocol is used here; backend-specific behaviour is tested beside the backend.
"""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from qcore.protocols import Delivery, InFlight, Transport
from qcore.testing.contract.dead_letters import DeadLetterContract
from qcore.testing.contract.losses import LossContract
from qcore.testing.contract.priorities import PriorityContract
from qcore.testing.contract.replays import ReplayContract
from qcore.testing.contract.support import fill, wait_until

__all__ = ["TransportContract", "fill", "wait_until"]


class TransportContract(LossContract, DeadLetterContract, PriorityContract, ReplayContract):
    """At-least-once delivery with acks, fencing tokens, redelivery and dead letters
    (:class:`~qcore.testing.contract.dead_letters.DeadLetterContract`); lost workers
    (:class:`~qcore.testing.contract.losses.LossContract`); the order of
    :class:`~qcore.testing.contract.priorities.PriorityContract`; the replays refused of
    :class:`~qcore.testing.contract.replays.ReplayContract`."""

    @pytest.fixture
    def transport(self) -> Transport:
        raise NotImplementedError("provide a `transport` fixture")

    @pytest.fixture
    def make_transport(self) -> Callable[..., Transport]:
        raise NotImplementedError("provide a `make_transport` fixture")

    # -- enqueue and fetch ------------------------------------------------------------------

    def test_is_a_transport(self, transport: Transport) -> None:
        assert isinstance(transport, Transport)
        assert isinstance(transport.queue, str) and transport.queue
        assert transport.ping() is True

    def test_enqueued_task_is_delivered_with_its_payload(self, transport: Transport) -> None:
        transport.enqueue("a1", b"hello")
        assert transport.queue_size() == 1
        [d] = transport.fetch("c1")
        assert isinstance(d, Delivery)
        assert (d.task_id, d.payload, d.attempt, d.consumer) == ("a1", b"hello", 1, "c1")
        assert d.max_attempts == 3
        assert transport.queue_size() == 0
        assert transport.inflight_size() == 1

    def test_enqueue_is_idempotent_per_id(self, transport: Transport) -> None:
        transport.enqueue("same", b"first")
        transport.enqueue("same", b"second")
        assert transport.queue_size() == 1
        [d] = transport.fetch("c1", count=5)
        assert d.payload == b"first"

    def test_fetch_takes_up_to_count_in_fifo_order(self, transport: Transport) -> None:
        ids = fill(transport, 5)
        got = transport.fetch("c1", count=3)
        assert len(got) == 3
        got += transport.fetch("c1", count=10)
        self.assert_order(transport, [d.task_id for d in got], ids)
        assert transport.fetch("c1", count=10) == []

    def test_tokens_are_distinct_and_increasing(self, transport: Transport) -> None:
        fill(transport, 4)
        got = transport.fetch("c1", count=2) + transport.fetch("c2", count=2)
        groups: dict[object, list[int]] = {}
        for d in got:
            groups.setdefault(self.order_group(transport, d.task_id), []).append(d.token)
        for tokens in groups.values():  # a sharded queue counts its tokens per shard
            assert tokens == sorted(set(tokens))

    def test_fetch_without_timeout_returns_at_once(self, transport: Transport) -> None:
        start = time.monotonic()
        assert transport.fetch("c1", count=1, timeout=0) == []
        assert time.monotonic() - start < 0.5

    def test_blocking_fetch_times_out_empty(self, transport: Transport) -> None:
        start = time.monotonic()
        assert transport.fetch("c1", count=1, timeout=0.3) == []
        assert 0.25 <= time.monotonic() - start < 2.0

    def test_blocking_fetch_wakes_on_enqueue(self, transport: Transport) -> None:
        got: list[Delivery] = []
        fetcher = threading.Thread(target=lambda: got.extend(transport.fetch("c1", 4, 10.0)))
        fetcher.start()
        time.sleep(0.1)  # let the fetcher block first; the wake-up is what is under test
        start = time.monotonic()
        transport.enqueue("wake", b"up")
        fetcher.join(5)
        assert not fetcher.is_alive()
        assert [d.task_id for d in got] == ["wake"]
        assert time.monotonic() - start < 1.0

    def test_enqueue_many_queues_every_item_once(self, transport: Transport) -> None:
        items = [(f"m{i}", b"x" * (i % 7)) for i in range(2500)]
        assert transport.enqueue_many(items) == 2500
        seen: list[str] = []
        while batch := transport.fetch("c1", count=700):
            seen += [d.task_id for d in batch]
            assert all(transport.ack(batch))
        assert sorted(seen) == sorted(i for i, _ in items)
        assert transport.queue_size() == transport.inflight_size() == 0

    def test_a_live_task_enqueued_again_is_delivered_once(self, transport: Transport) -> None:
        transport.enqueue("dup", b"first")
        transport.enqueue("dup", b"second")
        transport.enqueue_many([("dup", b"third"), ("other", b"x")])
        got = transport.fetch("c1", count=10)
        assert [(d.task_id, d.payload) for d in got if d.task_id == "dup"] == [("dup", b"first")]
        assert transport.fetch("c1", count=10) == []
        assert all(transport.ack(got))

    def test_enqueue_many_with_a_delay_and_attempt_limit(self, transport: Transport) -> None:
        enqueue_many: Any = transport.enqueue_many
        try:
            enqueue_many([("a", b"1"), ("b", b"2")], delay=0.3, max_attempts=5)
        except TypeError:
            pytest.skip("this transport's enqueue_many takes no max_attempts")
        assert transport.delayed_size() == 2
        got = transport.fetch("c1", count=5, timeout=3)
        if len(got) == 1:  # a sharded queue's two shards may each give one
            got += transport.fetch("c1", count=5, timeout=3)
        assert sorted((d.task_id, d.max_attempts) for d in got) == [("a", 5), ("b", 5)]

    def test_enqueue_many_attempt_limit_travels_inline(self, transport: Transport) -> None:
        enqueue_many: Any = transport.enqueue_many
        try:
            enqueue_many([("a", b"1")], max_attempts=1)
        except TypeError:
            pytest.skip("this transport's enqueue_many takes no max_attempts")
        [d] = transport.fetch("c1")
        assert d.max_attempts == 1
        transport.release("c1", started=["a"])
        assert transport.dead_size() == 1

    # -- ack and fencing --------------------------------------------------------------------

    def test_ack_forgets_the_task(self, transport: Transport) -> None:
        fill(transport, 3)
        batch = transport.fetch("c1", count=3)
        assert transport.ack(batch) == [True, True, True]
        assert transport.inflight_size() == 0
        # The same batch sent again (its reply lost, the client gave up) answers as the first
        # call did; any other ack of those deliveries is refused.
        assert transport.ack(batch) == [True, True, True]
        assert transport.ack(batch[1:]) == [False, False]
        assert transport.ack([]) == []

    def test_stale_token_is_refused_and_changes_nothing(self, transport: Transport) -> None:
        transport.enqueue("z", b"zombie")
        [old] = transport.fetch("c1")
        transport.release("c1", started=["z"])
        [new] = transport.fetch("c2")
        assert new.task_id == "z" and new.token > old.token and new.attempt == 2
        assert transport.ack([old]) == [False]
        assert transport.retry_later(old, 0) is False
        assert transport.dead_letter(old, "late") is False
        assert transport.inflight_size() == 1
        assert transport.ack([new]) == [True]

    def test_ack_of_a_mixed_batch(self, transport: Transport) -> None:
        fill(transport, 2)
        a, b = transport.fetch("c1", count=2)
        transport.release("c1", started=[])
        a2, b2 = transport.fetch("c1", count=2)
        assert transport.ack([a, b2, b, a2]) == [False, True, False, True]

    # -- retry, dead letters ----------------------------------------------------------------

    def test_retry_later_redelivers_after_the_delay(self, transport: Transport) -> None:
        transport.enqueue("r", b"retry")
        [d] = transport.fetch("c1")
        start = time.monotonic()
        assert transport.retry_later(d, 0.4) is True
        assert transport.inflight_size() == 0
        assert transport.delayed_size() == 1
        assert transport.fetch("c1") == []
        [again] = transport.fetch("c1", timeout=3)
        assert time.monotonic() - start >= 0.39
        assert again.task_id == "r" and again.attempt == 2

    def test_retry_later_without_delay_requeues_now(self, transport: Transport) -> None:
        transport.enqueue("r", b"retry")
        [d] = transport.fetch("c1")
        assert transport.retry_later(d, 0) is True
        [again] = transport.fetch("c1")
        assert again.attempt == 2

    def test_retry_later_with_a_payload_replaces_it_and_restarts_the_count(
        self, transport: Transport
    ) -> None:
        transport.enqueue("r", b"first attempt", max_attempts=2)
        [d] = transport.fetch("c1")
        transport.release("c1", started=["r"])  # a worker lost mid-run: delivery 1 counted
        [d] = transport.fetch("c1")
        assert d.attempt == 2
        assert transport.retry_later(d, 0.05, b"second attempt") is True
        assert transport.delayed_size() == 1
        [again] = transport.fetch("c1", timeout=3)
        assert (again.payload, again.attempt, again.max_attempts) == (b"second attempt", 1, 2)
        assert transport.retry_later(d, 0, b"stale") is False  # its token is gone
        assert transport.ack([again]) == [True]

    def test_cancel_swaps_a_queued_or_delayed_task_for_its_twin_due_at_once(
        self, transport: Transport
    ) -> None:
        transport.enqueue("q", b"queued")
        transport.enqueue("d", b"delayed", delay=3600)
        transport.enqueue_many([("b", b"bulk")], max_attempts=2)
        transport.enqueue("kept", b"kept")
        twin = b"twin of ".__add__
        assert transport.cancel("q", twin) == "queued"
        assert transport.cancel("d", twin) == "delayed"
        assert transport.cancel("b", twin) == "queued"
        got = {d.task_id: d for d in transport.fetch("c1", count=10)}
        assert {i: d.payload for i, d in got.items()} == {
            "q": b"twin of queued",
            "d": b"twin of delayed",
            "b": b"twin of bulk",
            "kept": b"kept",
        }
        assert got["b"].max_attempts == 2
        assert transport.delayed_size() == transport.queue_size() == 0

    def test_cancel_of_a_held_task_needs_terminate_and_is_then_noted(
        self, transport: Transport
    ) -> None:
        from qcore.errors import TaskRunning, UnknownTask

        transport.enqueue("r", b"running")
        [d] = transport.fetch("c1")
        with pytest.raises(TaskRunning):
            transport.cancel("r", bytes)
        assert transport.terminations(["r", "other"]) == set()
        assert transport.cancel("r", bytes, terminate=True) == "terminating"
        assert transport.terminations(["r", "other"]) == {"r"}
        with pytest.raises(UnknownTask):
            transport.cancel("nothing", bytes)
        assert transport.dead_letter(d, "gone")
        with pytest.raises(UnknownTask):
            transport.cancel("r", bytes)

    # -- delayed tasks ----------------------------------------------------------------------

    def test_delayed_task_is_not_delivered_before_its_time(self, transport: Transport) -> None:
        start = time.monotonic()
        transport.enqueue("later", b"x", delay=0.5)
        assert transport.delayed_size() == 1 and transport.queue_size() == 0
        assert transport.fetch("c1") == []
        [d] = transport.fetch("c1", timeout=3)
        assert time.monotonic() - start >= 0.49
        assert d.task_id == "later" and d.attempt == 1
        assert transport.delayed_size() == 0
        assert transport.fetch("c1", timeout=0.2) == []

    def test_reap_moves_due_delayed_tasks(self, transport: Transport) -> None:
        transport.enqueue_many([("d1", b"1"), ("d2", b"2")], delay=0.2)
        wait_until(lambda: transport.reap() is not None and transport.queue_size() == 2)
        assert transport.delayed_size() == 0

    # -- inspection -------------------------------------------------------------------------

    def test_inflight_lists_held_tasks(self, transport: Transport) -> None:
        fill(transport, 5)
        transport.fetch("c1", count=2)
        transport.fetch("c2", count=3)
        assert transport.inflight_size() == 5
        listed = transport.inflight(limit=100)
        assert all(isinstance(x, InFlight) for x in listed)
        assert sorted((x.consumer, x.attempt) for x in listed) == [("c1", 1)] * 2 + [("c2", 1)] * 3
        assert len(transport.inflight(limit=3)) == 3

    def test_is_picklable(self, transport: Transport) -> None:
        transport.enqueue("p", b"pickled")
        clone = pickle.loads(pickle.dumps(transport))
        assert clone.queue == transport.queue
        [d] = clone.fetch("c1")
        assert d.payload == b"pickled"
        assert transport.ack([d]) == [True]
        clone.close()
