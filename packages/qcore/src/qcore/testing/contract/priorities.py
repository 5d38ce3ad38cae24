"""The part of the transport contract about order: priority levels, due delayed tasks, and
what keeps a task's level (a delay, a retry, a release, a dead letter's requeue).

Strict between levels (higher first), FIFO within one. Within a level, tasks given back by a
consumer and delayed tasks whose time came run before the tasks waiting in the level's queue
(issue 11, item 12: a due task is never starved by what was queued after its time).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from qcore.errors import ConfigError
from qcore.protocols import Transport

__all__ = ["PriorityContract"]


def _ids(transport: Transport, count: int = 100) -> list[str]:
    return [d.task_id for d in transport.fetch("c1", count=count)]


def _drain_one_by_one(transport: Transport) -> list[str]:
    out: list[str] = []
    while batch := transport.fetch("c1"):
        out += [d.task_id for d in batch]
    return out


class PriorityContract:
    """Priorities and the place of due tasks (mixed into ``TransportContract``).

    A transport whose order holds within parts of the queue only (the shards of a sharded
    queue) overrides :meth:`order_group`: the order is then checked among the tasks of each
    group, and the tests whose steps depend on which task a single fetch takes use ids of one
    group (:meth:`together`).
    """

    def order_group(self, transport: Transport, task_id: str) -> object:
        """The part of the queue whose order ``task_id`` follows (one part: total order)."""
        return 0

    def assert_order(self, transport: Transport, got: list[str], expected: list[str]) -> None:
        """``got`` is ``expected`` in every order group."""
        groups = {self.order_group(transport, i) for i in expected}
        if len(groups) <= 1:
            assert got == expected
            return
        assert sorted(got) == sorted(expected)
        for g in groups:
            assert [i for i in got if self.order_group(transport, i) == g] == [
                i for i in expected if self.order_group(transport, i) == g
            ], f"order group {g!r}"

    def together(self, transport: Transport, *names: str) -> dict[str, str]:
        """Ids for ``names``, all of the first one's order group (the names themselves for a
        transport of one group)."""
        home = self.order_group(transport, names[0])
        out = {}
        for name in names:
            candidate, k = name, 0
            while self.order_group(transport, candidate) != home:
                k += 1
                candidate = f"{name}.{k}"
            out[name] = candidate
        return out

    def test_higher_priority_first_and_fifo_within_a_level(self, transport: Transport) -> None:
        levels = [0, -100, 5, 100, 5, 0, -3, 100, 0, -100, 7, -3]
        sent = []
        for n, level in enumerate(levels):
            task_id = f"t{n:02d}"
            transport.enqueue(task_id, b"x", priority=level)
            sent.append((-level, n, task_id))
        expected = [task_id for _, _, task_id in sorted(sent)]
        assert transport.queue_size() == len(levels)
        self.assert_order(transport, _drain_one_by_one(transport), expected)

    def test_one_batch_crosses_levels_in_order(self, transport: Transport) -> None:
        transport.enqueue_many([("low1", b"x"), ("low2", b"x")], priority=-1)
        transport.enqueue_many([("mid1", b"x"), ("mid2", b"x")])
        transport.enqueue("high", b"x", priority=50)
        got = _ids(transport, 4)
        assert len(got) == 4
        expected = ["high", "mid1", "mid2", "low1", "low2"]
        self.assert_order(transport, got + _ids(transport), expected)

    def test_a_higher_level_queued_later_passes_a_backlog(self, transport: Transport) -> None:
        t = self.together(transport, "urgent", *(f"{x}{i:03d}" for x in "bn" for i in range(300)))
        transport.enqueue_many([(t[f"b{i:03d}"], b"x") for i in range(300)], priority=-10)
        transport.enqueue_many([(t[f"n{i:03d}"], b"x") for i in range(300)])
        transport.fetch("c1", count=5)
        transport.enqueue(t["urgent"], b"x", priority=10)
        assert _ids(transport, 1) == [t["urgent"]]
        assert _ids(transport, 1) == [t["n005"]]

    def test_bad_priorities_are_refused_and_nothing_is_queued(self, transport: Transport) -> None:
        for bad in (101, -101, 1.5, True, "5", None):
            with pytest.raises(ConfigError, match="priority"):
                transport.enqueue("bad", b"x", priority=bad)  # type: ignore[arg-type]
            with pytest.raises(ConfigError, match="priority"):
                transport.enqueue_many([("bad", b"x")], priority=bad)  # type: ignore[arg-type]
        assert transport.queue_size() == 0 and transport.delayed_size() == 0
        assert transport.payload("bad") is None  # type: ignore[attr-defined]

    def test_a_due_delayed_task_runs_before_tasks_queued_after_its_time(
        self, transport: Transport
    ) -> None:
        transport.enqueue_many([(f"old{i}", b"x") for i in range(3)])
        transport.enqueue("late", b"x", delay=0.2)
        time.sleep(0.3)  # its time came
        transport.enqueue_many([(f"new{i}", b"x") for i in range(3)])
        got = _ids(transport, 2)
        assert len(got) == 2
        expected = ["late", "old0", "old1", "old2", "new0", "new1", "new2"]
        self.assert_order(transport, got + _ids(transport), expected)

    def test_due_tasks_keep_their_due_order_and_their_level(self, transport: Transport) -> None:
        transport.enqueue("d-low", b"x", delay=0.1, priority=-5)
        transport.enqueue_many([(f"d{i:04d}", b"x") for i in range(1500)], delay=0.15)
        transport.enqueue("d-high", b"x", delay=0.2, priority=5)
        transport.enqueue("ready-low", b"x", priority=-5)
        transport.enqueue("ready", b"x")
        transport.enqueue("ready-top", b"x", priority=9)
        time.sleep(0.3)
        expected = ["ready-top", "d-high", *(f"d{i:04d}" for i in range(1500))]
        expected += ["ready", "d-low", "ready-low"]
        self.assert_order(transport, _drain_one_by_one(transport), expected)

    def test_a_delayed_task_keeps_its_priority(self, transport: Transport) -> None:
        transport.enqueue("later-high", b"x", delay=0.2, priority=3)
        transport.enqueue_many([("b1", b"x"), ("b2", b"x")], delay=0.2, priority=-3)
        transport.enqueue("now", b"x")
        time.sleep(0.3)
        self.assert_order(
            transport, _drain_one_by_one(transport), ["later-high", "now", "b1", "b2"]
        )

    def test_a_released_task_keeps_its_level_ahead_of_its_level(self, transport: Transport) -> None:
        t = self.together(transport, "p5", "p5-next", "p0", "p9")
        transport.enqueue(t["p5"], b"x", priority=5)
        transport.enqueue(t["p5-next"], b"x", priority=5)
        transport.enqueue(t["p0"], b"x")
        [held] = transport.fetch("c9")
        assert held.task_id == t["p5"]
        transport.enqueue(t["p9"], b"x", priority=9)
        assert transport.release("c9").requeued == 1
        assert _drain_one_by_one(transport) == [t["p9"], t["p5"], t["p5-next"], t["p0"]]

    def test_a_retried_task_keeps_its_priority(self, transport: Transport) -> None:
        t = self.together(transport, "hi", "hi2", "zero", "zero2")
        transport.enqueue(t["hi"], b"x", priority=4)
        transport.enqueue(t["hi2"], b"x", priority=4)
        [d] = transport.fetch("c1")
        transport.enqueue(t["zero"], b"x")
        assert transport.retry_later(d, 0) is True
        assert _ids(transport, 1) == [t["hi2"]]
        [again] = transport.fetch("c1")
        assert (again.task_id, again.attempt) == (t["hi"], 2)
        assert transport.retry_later(again, 0.1) is True
        transport.enqueue(t["zero2"], b"x")
        time.sleep(0.2)
        assert _drain_one_by_one(transport) == [t["hi"], t["zero"], t["zero2"]]

    def test_a_requeued_dead_letter_keeps_its_priority(self, transport: Transport) -> None:
        transport.enqueue("doomed", b"x", priority=-7)
        [d] = transport.fetch("c1")
        transport.dead_letter(d, "boom")
        transport.enqueue("zero", b"x")
        transport.enqueue("minus9", b"x", priority=-9)
        assert transport.requeue_dead() == 1
        self.assert_order(transport, _drain_one_by_one(transport), ["zero", "doomed", "minus9"])

    def test_a_cancelled_tasks_twin_runs_before_every_waiting_task(
        self, transport: Transport
    ) -> None:
        # The twin runs no code (its record says Cancelled): it never waits behind a backlog.
        t = self.together(transport, "low", "high", "zero")
        transport.enqueue(t["high"], b"h", priority=50)
        transport.enqueue(t["zero"], b"z")
        transport.enqueue(t["low"], b"l", priority=-50)
        assert transport.cancel(t["low"], b"twin-".__add__) == "queued"
        assert _drain_one_by_one(transport) == [t["low"], t["high"], t["zero"]]

    def test_an_acked_task_leaves_nothing_of_its_level(
        self, make_transport: Callable[..., Transport]
    ) -> None:
        # no replay window: the id may be queued again once acked (see ReplayContract)
        transport = make_transport(replay_window=0)
        transport.enqueue("a", b"x", priority=42)
        [d] = transport.fetch("c1")
        assert transport.ack([d]) == [True]
        transport.enqueue("a", b"again")  # the same id, now at the default level
        transport.enqueue("b", b"x", priority=1)
        self.assert_order(transport, _drain_one_by_one(transport), ["b", "a"])
