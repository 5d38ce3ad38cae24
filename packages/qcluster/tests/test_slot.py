"""The worker slot: a seqlock record in shared memory."""

from __future__ import annotations

import multiprocessing
import time

from qcluster.slot import Slot
from qcluster.states import WorkerState


def test_a_fresh_slot_reads_as_starting_with_zero_counts() -> None:
    slot = Slot()
    slot.reset(1234)
    view = slot.read()
    assert view.state is WorkerState.STARTING and view.pid == 1234
    assert (view.processed, view.failed, view.running, view.torn) == (0, 0, None, False)


def test_begin_and_end_describe_the_running_task() -> None:
    slot = Slot()
    slot.reset(1)
    before = time.monotonic()
    slot.begin(
        "ab" * 16,
        "four-word-name-here",
        "pkg.mod.func",
        attempt=2,
        max_attempts=3,
        token=77,
        timeout=1.5,
        due=1234.5,
    )
    view = slot.read()
    assert view.running == "ab" * 16 and view.name == "four-word-name-here"
    assert view.due == 1234.5  # the sentinel counts the wait of a run its worker never saved
    assert view.func == "pkg.mod.func" and (view.attempt, view.max_attempts) == (2, 3)
    assert view.token == 77 and view.timeout == 1.5
    assert before + 1.5 <= view.deadline <= time.monotonic() + 1.5
    slot.end(success=False)
    view = slot.read()
    assert view.state is WorkerState.SAVING and view.running is None and view.deadline == 0
    assert (view.processed, view.failed) == (1, 1)


def test_no_deadline_without_a_timeout() -> None:
    slot = Slot()
    slot.begin("x", "n", "f", attempt=1, max_attempts=1, token=1, timeout=None)
    assert slot.read().deadline == 0.0


def test_a_write_interrupted_midway_reads_as_torn() -> None:
    slot = Slot()
    slot.begin("task", "n", "f", attempt=1, max_attempts=3, token=5, timeout=None)
    slot._raw.seq += 1  # as if the writer died inside a write
    view = slot.read(tries=3)
    assert view.torn and view.running is None


def _writer(slot: Slot, rounds: int) -> None:
    for i in range(rounds):
        slot.begin(
            f"{i:032x}", f"name{i}", f"func{i}", attempt=i, max_attempts=i, token=i, timeout=None
        )
        slot.end(True)


def test_reads_are_consistent_while_another_process_writes() -> None:
    ctx = multiprocessing.get_context("fork")
    slot = Slot(ctx)
    slot.reset(0)
    writer = ctx.Process(target=_writer, args=(slot, 20000))
    writer.start()
    checked = 0
    while writer.is_alive() or checked == 0:
        view = slot.read()
        if view.running is not None:
            i = int(view.task_id, 16)
            assert (view.name, view.func, view.attempt, view.token) == (
                f"name{i}",
                f"func{i}",
                i,
                i,
            )
        checked += 1
    writer.join()
    assert writer.exitcode == 0 and slot.read().processed == 20000


def test_awaiting_entries_list_the_coroutine_tasks_until_they_end_or_the_slot_resets() -> None:
    slot = Slot(awaiting=3)
    slot.awaiting_start(0, "a" * 32, 1, 3)
    slot.awaiting_start(2, "c" * 100, 2, 3)
    slot.awaiting_start(7, "ignored", 1, 1)  # no such entry: nothing written
    listed = {(t.task_id, t.attempt, t.max_attempts) for t in slot.awaiting()}
    assert listed == {("a" * 32, 1, 3), ("c" * 100, 2, 3)}
    slot.awaiting_end(0)
    assert [t.task_id for t in slot.awaiting()] == ["c" * 100]
    slot.reset(2)
    assert slot.awaiting() == [] and Slot().awaiting() == []


def test_awaiting_entries_carry_what_running_shows_and_the_sentinels_cancel_mark() -> None:
    slot = Slot(awaiting=2)
    slot.awaiting_start(
        1, "t1", 2, 3, token=41, started=1700000000.5, name="nap", func="pkg.mod.nap"
    )
    [task] = slot.awaiting(live=True)
    assert (task.task_id, task.attempt, task.max_attempts, task.token) == ("t1", 2, 3, 41)
    assert (task.started, task.name, task.func, task.index) == (
        1700000000.5,
        "nap",
        "pkg.mod.nap",
        1,
    )
    assert slot.cancel_asked(1) == 0
    slot.ask_cancel(1, 41)
    assert slot.cancel_asked(1) == 41 and slot.cancel_asked(0) == 0 and slot.cancel_asked(9) == 0
    # An entry being written (its counter odd) is skipped by a live read, not by a dead one's.
    raw = slot._awaiting[1]
    raw.seq += 1
    assert slot.awaiting(live=True) == [] and [t.task_id for t in slot.awaiting()] == ["t1"]
