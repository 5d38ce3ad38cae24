"""The part of the transport contract about replays (issue 11, item 4): a copy of a completed
task pushed back is refused (dead-lettered as ``"replayed"``, reported to the fetch's caller),
never delivered, for the transport's replay window; and about the idempotent bulk enqueue
(item 11): ``enqueue_absent`` skips every id the transport knows, completed ones included.

``make_transport`` must accept ``replay_window`` (seconds) besides ``max_attempts``.
"""

from __future__ import annotations

from collections.abc import Callable

from qcore.protocols import Transport

__all__ = ["ReplayContract"]


def _complete(transport: Transport, task_id: str, payload: bytes) -> None:
    transport.enqueue(task_id, payload)
    [delivery] = transport.fetch("c1")
    assert transport.ack([delivery]) == [True]


class ReplayContract:
    """Replays of completed tasks (mixed into ``TransportContract``)."""

    def test_a_completed_task_enqueued_again_is_dead_lettered_as_replayed(
        self, transport: Transport
    ) -> None:
        _complete(transport, "charge1", b"signed envelope")
        transport.enqueue("charge1", b"signed envelope")  # the copy, pushed back
        transport.enqueue("other", b"x")
        replayed: list[str] = []
        got = transport.fetch("c2", count=10, replayed=replayed)
        assert [d.task_id for d in got] == ["other"]
        assert replayed == ["charge1"]
        [letter] = transport.dead_letters()
        assert (letter.task_id, letter.reason, letter.payload) == (
            "charge1",
            "replayed",
            b"signed envelope",
        )
        assert transport.inflight_size() == 1
        assert transport.queue_size() == 0

    def test_a_completed_task_sent_again_in_bulk_is_refused_too(self, transport: Transport) -> None:
        _complete(transport, "bulk1", b"p")
        transport.enqueue_many([("bulk1", b"p"), ("bulk2", b"q")])
        replayed: list[str] = []
        got = transport.fetch("c2", count=10, replayed=replayed)
        assert [d.task_id for d in got] == ["bulk2"]
        assert replayed == ["bulk1"]
        assert [letter.reason for letter in transport.dead_letters()] == ["replayed"]

    def test_a_blocking_fetch_refuses_a_replay_and_waits_on(self, transport: Transport) -> None:
        _complete(transport, "r1", b"p")
        transport.enqueue("r1", b"p")
        replayed: list[str] = []
        assert transport.fetch("c2", count=1, timeout=0.3, replayed=replayed) == []
        assert replayed == ["r1"]

    def test_only_an_ack_completes_a_task(self, transport: Transport) -> None:
        # a task retried, released or dead-lettered and requeued is delivered again as ever
        transport.enqueue("again", b"p")
        [d] = transport.fetch("c1")
        assert transport.retry_later(d, 0)
        [d] = transport.fetch("c1")
        transport.release("c1")
        [d] = transport.fetch("c1")
        assert transport.dead_letter(d, "bad")
        assert transport.requeue_dead(["again"]) == 1
        replayed: list[str] = []
        [d] = transport.fetch("c1", replayed=replayed)
        assert (d.task_id, replayed) == ("again", [])

    def test_a_worker_loss_dead_letter_is_done_and_its_copies_are_replays(
        self, transport: Transport
    ) -> None:
        # out of attempts after a lost worker: one dead letter owing its Failure, and done
        transport.enqueue("lost", b"p", max_attempts=1)
        transport.fetch("c1")
        assert transport.release("c1", started=["lost"]).dead_lettered == 1
        assert [o.task_id for o in transport.unrecorded()] == ["lost"]
        transport.recorded(["lost"])
        assert transport.purge_dead(["lost"]) == 1  # its payload gone with it
        assert transport.enqueue_absent([("lost", b"p")]) == [False]  # sent again: completed
        transport.enqueue("lost", b"p")  # the copy, pushed back
        replayed: list[str] = []
        assert transport.fetch("c2", count=5, replayed=replayed) == []
        assert replayed == ["lost"]
        assert [letter.reason for letter in transport.dead_letters()] == ["replayed"]

    def test_a_requeued_worker_loss_dead_letter_runs_again(self, transport: Transport) -> None:
        transport.enqueue("lost", b"p", max_attempts=1)
        transport.fetch("c1")
        transport.release("c1", started=["lost"])
        assert transport.requeue_dead(["lost"]) == 1  # the operator's call: run it again
        replayed: list[str] = []
        [d] = transport.fetch("c2", replayed=replayed)
        assert (d.task_id, d.attempt, replayed) == ("lost", 1, [])

    def test_a_refused_replay_changes_nothing_of_the_completed_task(
        self, transport: Transport
    ) -> None:
        _complete(transport, "once", b"p")
        for _ in range(3):
            transport.enqueue("once", b"p")
            assert transport.fetch("c2", count=5, replayed=[]) == []
        assert transport.dead_size() == 1
        assert transport.inflight_size() == 0

    def test_with_no_replay_window_a_copy_runs_again(
        self, make_transport: Callable[..., Transport]
    ) -> None:
        transport = make_transport(replay_window=0)
        _complete(transport, "free", b"p")
        transport.enqueue("free", b"p")
        replayed: list[str] = []
        [d] = transport.fetch("c2", replayed=replayed)
        assert (d.task_id, replayed) == ("free", [])

    def test_enqueue_absent_skips_queued_held_dead_and_completed_ids(
        self, transport: Transport
    ) -> None:
        assert transport.enqueue_absent([("a", b"1"), ("b", b"2"), ("c", b"3")]) == [True] * 3
        assert transport.enqueue_absent([("a", b"x"), ("d", b"4")]) == [False, True]  # queued
        held = {d.task_id: d for d in transport.fetch("c1", count=4)}
        assert sorted(held) == ["a", "b", "c", "d"]
        assert transport.enqueue_absent([("a", b"x")]) == [False]  # in flight
        assert transport.ack([held["a"]]) == [True]
        assert transport.dead_letter(held["b"], "bad")
        assert transport.retry_later(held["c"], 30)
        # completed, dead-lettered, delayed: all known
        assert transport.enqueue_absent([(i, b"x") for i in "abc"]) == [False] * 3
        assert transport.queue_size() == 0

    def test_enqueue_absent_of_a_batch_sent_twice_delivers_each_task_once(
        self, transport: Transport
    ) -> None:
        batch = [(f"t{i}", b"p") for i in range(5)]
        assert transport.enqueue_absent(batch[:3]) == [True] * 3  # a send cut short
        first = transport.fetch("c1", count=2)
        assert transport.ack(first) == [True, True]
        assert transport.enqueue_absent(batch) == [False] * 3 + [True] * 2  # sent again
        replayed: list[str] = []
        rest = transport.fetch("c1", count=10, replayed=replayed)
        assert sorted(d.task_id for d in [*first, *rest]) == [i for i, _ in batch]
        assert replayed == []

    def test_enqueue_absent_with_a_delay_and_a_priority(self, transport: Transport) -> None:
        assert transport.enqueue_absent([("late", b"x")], delay=30, priority=5) == [True]
        assert transport.delayed_size() == 1
        assert transport.enqueue_absent([("late", b"x")]) == [False]
        assert transport.fetch("c1") == []
