"""The part of the transport contract about replays (issue 11, item 4): a copy of a completed
task pushed back is refused (dead-lettered as ``"replayed"``, reported to the fetch's caller),
never delivered, for the transport's replay window.

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
