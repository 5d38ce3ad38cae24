"""The part of the transport contract about dead letters: what one keeps, and how they are
requeued, purged, trimmed to their bounds and counted by reason."""

from __future__ import annotations

import time

from qcore.protocols import DeadLetter, Transport
from qcore.testing.contract.support import fill

__all__ = ["DeadLetterContract"]


class DeadLetterContract:
    """Dead letters (mixed into ``TransportContract``)."""

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
