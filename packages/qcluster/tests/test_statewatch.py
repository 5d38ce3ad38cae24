"""Which changes of the workers' states the beacon publishes at once: those that held."""

from __future__ import annotations

from qcluster.states import WorkerState
from qcluster.statewatch import Glance, StateWatch

IDLE, RUNNING, SAVING = int(WorkerState.IDLE), int(WorkerState.RUNNING), int(WorkerState.SAVING)


class Slots:
    def __init__(self) -> None:
        self.now = [Glance((0, 100), IDLE, b"", 0)]

    def __call__(self) -> list[Glance]:
        return list(self.now)


def test_a_change_that_holds_for_one_glance_is_published_once() -> None:
    slots = Slots()
    watch = StateWatch(slots)
    assert not watch.look()  # the first glance: nothing to compare with
    assert watch.look()  # idle held, never published
    watch.published()
    assert not watch.look()
    slots.now = [Glance((0, 100), RUNNING, b"a" * 32, 0)]  # a long task starts
    assert not watch.look()  # seen once
    assert watch.look()  # held: publish
    watch.published()
    assert not watch.look() and not watch.look()
    slots.now = [Glance((0, 100), IDLE, b"", 1)]  # it ended
    assert not watch.look() and watch.look()
    watch.published()
    slots.now = [Glance((0, 101), IDLE, b"", 0)]  # the worker was replaced
    assert not watch.look() and watch.look()


def test_a_flood_of_short_tasks_is_published_when_it_starts_and_when_it_ends() -> None:
    slots = Slots()
    watch = StateWatch(slots)
    watch.look()
    watch.look()
    watch.published()
    answers = []
    for n in range(1, 41):  # a different task (or a fetch between two) at every glance
        state = (RUNNING, SAVING, IDLE)[n % 3]
        slots.now = [Glance((0, 100), state, f"{n:032x}".encode(), n * 7)]
        changed = watch.look()
        answers.append(changed)
        if changed:
            watch.published()
    assert answers.count(True) == 1 and answers.index(True) == 1  # active, once it held
    slots.now = [Glance((0, 100), IDLE, b"", 280)]  # the queue is empty: idle from now on
    assert not watch.look()  # idle, seen once (and active: the count moved since)
    assert watch.look()  # idle held
