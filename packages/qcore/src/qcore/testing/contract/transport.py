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

from qcore.protocols import DeadLetter, Delivery, InFlight, Reaped, Transport
from qcore.testing.contract.priorities import PriorityContract
from qcore.testing.contract.replays import ReplayContract

__all__ = ["TransportContract", "fill", "wait_until"]

# Short heartbeat TTLs keep the suite fast; waits poll with a deadline only where the
# protocol offers no event to wait on (a heartbeat expiring is the absence of an event).
TTL = 0.3


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def fill(transport: Transport, n: int, prefix: str = "t") -> list[str]:
    ids = [f"{prefix}{i:05d}" for i in range(n)]
    for i in ids:
        transport.enqueue(i, f"payload-{i}".encode())
    return ids


class TransportContract(PriorityContract, ReplayContract):
    """At-least-once delivery with acks, fencing tokens, redelivery and dead letters; the
    order of :class:`~qcore.testing.contract.priorities.PriorityContract`; the replays refused
    of :class:`~qcore.testing.contract.replays.ReplayContract`."""

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

    def test_dead_letter_keeps_payload_and_reason(self, transport: Transport) -> None:
        fill(transport, 2)
        a, b = transport.fetch("c1", count=2)
        assert transport.dead_letter(a, "bad signature") is True
        assert transport.dead_letter(b, "no such function") is True
        assert transport.inflight_size() == 0
        assert transport.dead_size() == 2
        letters = transport.dead_letters()
        assert all(isinstance(x, DeadLetter) for x in letters)
        assert {x.task_id: x.reason for x in letters} == {
            a.task_id: "bad signature",
            b.task_id: "no such function",
        }
        assert letters[0].failed_at >= letters[1].failed_at  # newest first
        assert {x.payload for x in letters} == {a.payload, b.payload}
        assert all(x.attempts == 1 for x in letters)

    def test_requeue_dead_gives_a_fresh_attempt_count(self, transport: Transport) -> None:
        fill(transport, 3)
        batch = transport.fetch("c1", count=3)
        for d in batch:
            transport.dead_letter(d, "boom")
        assert transport.requeue_dead([batch[0].task_id, "not-dead"]) == 1
        assert transport.dead_size() == 2
        [d] = transport.fetch("c2")
        assert d.task_id == batch[0].task_id and d.attempt == 1
        assert transport.requeue_dead() == 2
        assert transport.dead_size() == 0
        assert {d.task_id for d in transport.fetch("c2", count=5)} == {
            batch[1].task_id,
            batch[2].task_id,
        }

    def test_purge_dead_deletes_for_good(self, transport: Transport) -> None:
        fill(transport, 3)
        batch = transport.fetch("c1", count=3)
        for d in batch:
            transport.dead_letter(d, "boom")
        assert transport.purge_dead([batch[0].task_id]) == 1
        assert transport.purge_dead() == 2
        assert transport.dead_size() == 0
        assert transport.requeue_dead() == 0
        assert transport.fetch("c1", count=5) == []

    # -- release, heartbeat, reap -----------------------------------------------------------

    def test_release_puts_unstarted_tasks_at_the_head_uncounted(self, transport: Transport) -> None:
        ids = fill(transport, 4)
        held = transport.fetch("c1", count=2)
        reaped = transport.release("c1")
        assert isinstance(reaped, Reaped) and reaped.requeued == 2
        again = transport.fetch("c2", count=4)
        # the released ones run next, in order
        self.assert_order(transport, [d.task_id for d in again], ids)
        assert [d.attempt for d in again] == [1, 1, 1, 1]
        assert {d.task_id for d in held} == set(ids[:2])

    def test_release_keeps_the_count_of_started_tasks(self, transport: Transport) -> None:
        fill(transport, 2)
        a, b = transport.fetch("c1", count=2)
        transport.release("c1", started=[a.task_id])
        got = {d.task_id: d.attempt for d in transport.fetch("c2", count=2)}
        assert got == {a.task_id: 2, b.task_id: 1}

    def test_release_dead_letters_a_started_task_out_of_attempts(
        self, make_transport: Callable[..., Transport]
    ) -> None:
        transport = make_transport(max_attempts=2)
        transport.enqueue("crash", b"kills its worker")
        for attempt in (1, 2):
            [d] = transport.fetch("c1")
            assert d.attempt == attempt
            reaped = transport.release("c1", started=["crash"])
        assert reaped.dead_lettered == 1 and reaped.requeued == 0
        assert transport.fetch("c1") == []
        [letter] = transport.dead_letters()
        assert letter.task_id == "crash" and letter.attempts == 2
        assert "worker lost" in letter.reason and "out of attempts" in letter.reason

    def test_per_task_max_attempts(self, transport: Transport) -> None:
        transport.enqueue("once", b"x", max_attempts=1)
        [d] = transport.fetch("c1")
        assert d.max_attempts == 1
        transport.release("c1", started=["once"])
        assert transport.dead_size() == 1

    def test_reap_returns_the_work_of_a_silent_consumer(self, transport: Transport) -> None:
        fill(transport, 3)
        transport.heartbeat(["alive", "silent"], TTL)
        transport.fetch("silent", count=2)
        transport.fetch("alive", count=1)
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(TTL / 3):
                transport.heartbeat(["alive"], TTL)

        beater = threading.Thread(target=beat)
        beater.start()
        try:
            reaped = wait_until(lambda: transport.reap().consumers and True, timeout=5)
            assert reaped
            assert transport.queue_size() == 2
            assert transport.inflight_size() == 1  # the live consumer keeps its task
            assert {i.consumer for i in transport.inflight()} == {"alive"}
            again = transport.fetch("other", count=5)
            assert [d.attempt for d in again] == [2, 2]  # reaped tasks had started
        finally:
            stop.set()
            beater.join()

    def test_reap_dead_letters_past_max_attempts(self, transport: Transport) -> None:
        transport.enqueue("poison", b"x", max_attempts=1)
        transport.heartbeat(["doomed"], TTL)
        transport.fetch("doomed")
        wait_until(lambda: transport.reap().dead_lettered == 1)
        [letter] = transport.dead_letters()
        assert letter.task_id == "poison" and "doomed" in letter.reason
        assert "out of attempts" in letter.reason

    def test_a_worker_loss_dead_letters_owe_their_record_until_recorded(
        self, transport: Transport
    ) -> None:
        t = self.together(transport, "reaped", "released", "poisoned")  # taken in this order
        transport.enqueue(t["reaped"], b"r", max_attempts=1)
        transport.enqueue(t["released"], b"s", max_attempts=1)
        transport.enqueue(t["poisoned"], b"p")
        transport.heartbeat(["doomed"], TTL)
        transport.fetch("doomed")
        wait_until(lambda: transport.reap().dead_lettered == 1)
        [d] = transport.fetch("c1")
        transport.release("c1", started=[d.task_id], reason="TimeoutError: too slow")
        [p] = transport.fetch("c2")
        transport.dead_letter(p, "BadSignature: not ours")  # refused unopened: no record owed
        owed = transport.unrecorded()
        assert [(o.task_id, o.payload, o.attempts) for o in owed] == [
            (t["reaped"], b"r", 1),
            (t["released"], b"s", 1),
        ]
        assert "doomed" in owed[0].reason and "out of attempts" in owed[0].reason
        assert owed[1].reason == "TimeoutError: too slow (attempt 1 of 1)"
        transport.recorded([t["reaped"]])
        assert [o.task_id for o in transport.unrecorded()] == [t["released"]]
        transport.purge_dead([t["released"]])  # purged: no longer owed a record
        assert transport.unrecorded() == []

    def test_trim_dead_drops_the_expired_then_the_oldest_beyond_the_cap(
        self, transport: Transport
    ) -> None:
        for i in range(5):
            transport.enqueue(f"d{i}", b"x")
            [d] = transport.fetch("c1")
            transport.dead_letter(d, "bad")
            time.sleep(0.01)  # distinct times of death
        assert transport.trim_dead(3600, 3) == 2  # the two oldest go
        assert sorted(x.task_id for x in transport.dead_letters()) == ["d2", "d3", "d4"]
        assert transport.requeue_dead(["d0"]) == 0  # gone with their payloads
        assert transport.trim_dead(3600, 3) == 0
        time.sleep(0.05)
        assert transport.trim_dead(0.02, 100) == 3  # all older than 20 ms
        assert transport.dead_size() == 0 and transport.queue_size() == 0

    def test_dead_reasons_count_the_newest_dead_letters_by_kind(self, transport: Transport) -> None:
        assert transport.dead_reasons() == {}
        reasons = [
            "UnknownKey: the payload was signed with key id 0a0b0c0d, ...",
            "BadSignature: the payload's signature does not match",
            "UnknownKey: the payload was signed with key id 01020304, ...",
            "the worker was lost (worker lost): out of attempts",
        ]
        for i, reason in enumerate(reasons):
            transport.enqueue(f"r{i}", b"x")
            [d] = transport.fetch("c1")
            transport.dead_letter(d, reason)
            time.sleep(0.01)  # distinct times of death
        assert transport.dead_reasons() == {"UnknownKey": 2, "BadSignature": 1, "WorkerLost": 1}
        assert list(transport.dead_reasons()) == ["UnknownKey", "BadSignature", "WorkerLost"]
        assert transport.dead_reasons(limit=2) == {"UnknownKey": 1, "WorkerLost": 1}
        assert transport.dead_reasons(limit=0) == {}

    def test_reap_with_nothing_to_do(self, transport: Transport) -> None:
        assert transport.reap() == Reaped()
        transport.heartbeat(["c1"], 60)
        fill(transport, 1)
        transport.fetch("c1")
        assert transport.reap() == Reaped()
        assert transport.inflight_size() == 1

    def test_forget_an_idle_consumer(self, transport: Transport) -> None:
        transport.heartbeat(["c1"], 60)
        transport.forget(["c1"])
        transport.forget([])
        assert transport.inflight() == []

    def test_forget_never_orphans_held_tasks(self, transport: Transport) -> None:
        fill(transport, 1)
        transport.heartbeat(["c1"], 60)
        transport.fetch("c1")
        transport.forget(["c1"])
        wait_until(lambda: transport.reap().requeued == 1)
        assert transport.queue_size() == 1

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
