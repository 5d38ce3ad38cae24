"""The part of the transport contract about lost workers: a consumer's tasks released to
the head of the queue, the reaper taking back the work of a consumer whose heartbeat expired,
the attempts that count, and the dead letters a worker loss leaves owing their record."""

from __future__ import annotations

import threading
from collections.abc import Callable

from qcore.protocols import Reaped, Transport
from qcore.testing.contract.priorities import PriorityContract
from qcore.testing.contract.support import TTL, fill, wait_until

__all__ = ["LossContract"]


class LossContract(PriorityContract):
    """Release, heartbeats and the reaper (mixed into ``TransportContract``; the order its
    release checks is :class:`~qcore.testing.contract.priorities.PriorityContract`'s)."""

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
