"""qredis's schedules: the signed store, the due-time index and the atomic, once-only firing."""

from __future__ import annotations

import threading
import time

import pytest

from qcore import ConfigError, ScheduleSpec, codec_for, firing_id
from qredis import RedisSchedules, RedisTransport

# A clock the tests move by hand (ms): a day ahead, so schedules added "now" start at NOW.
NOW = (int(time.time()) // 60 + 24 * 60) * 60_000


@pytest.fixture
def transport(redis_url: str, queue_name: str) -> RedisTransport:
    return RedisTransport(queue_name, url=redis_url)


@pytest.fixture
def schedules(transport: RedisTransport, secret: str) -> RedisSchedules:
    return transport.schedules(codec_for(secret))


def every_minute(sid: str = "tick", **kw: object) -> ScheduleSpec:
    fields: dict[str, object] = {
        "func": "math.floor", "args": (1.5,), "schedule_type": "I", "minutes": 1,
        "next_run": NOW / 1000, **kw,
    }  # fmt: skip
    return ScheduleSpec(id=sid, **fields)  # type: ignore[arg-type]


def fire_due(store: RedisSchedules, now: int, *, catch_up: bool = True) -> list[int]:
    batch = store.due(None, now_ms=now)
    loaded = store.load([sid for sid, _ in batch.entries])
    firings = [
        store.plan(loaded[sid], due, batch.now_ms, catch_up=catch_up)
        for sid, due in batch.entries
        if sid in loaded
    ]
    return store.fire(firings)


def test_add_list_get_remove(schedules: RedisSchedules) -> None:
    assert schedules.add(every_minute()) is True
    assert schedules.add(every_minute()) is False  # the same again changes nothing
    assert schedules.add(every_minute("other", repeats=3)) is True
    (state,) = [s for s in schedules.list() if s.spec.id == "tick"]
    assert state.due_ms == NOW and state.repeats == -1 and state.last_task is None
    assert schedules.ids() == ["other", "tick"]
    assert schedules.get("other").repeats == 3  # type: ignore[union-attr]
    assert schedules.remove("tick") is True and schedules.remove("tick") is False
    assert schedules.ids() == ["other"] and schedules.get("tick") is None


def test_the_next_due_is_found_without_being_due(schedules: RedisSchedules) -> None:
    schedules.add(every_minute())
    batch = schedules.due(None, now_ms=NOW - 5)
    assert batch.entries == [] and batch.next_ms == NOW and batch.now_ms == NOW - 5
    assert schedules.due(None, now_ms=NOW).entries == [("tick", NOW)]


def test_a_firing_is_queued_once_and_the_schedule_advances(
    schedules: RedisSchedules, transport: RedisTransport
) -> None:
    schedules.add(every_minute(repeats=2))
    assert fire_due(schedules, NOW) == [1]
    assert fire_due(schedules, NOW) == []  # not due again until the next minute
    state = schedules.get("tick")
    assert state is not None
    assert state.due_ms == NOW + 60_000 and state.repeats == 1
    assert state.last_task == firing_id("tick", NOW) and state.last_due_ms == NOW
    assert transport.queue_size() == 1
    assert fire_due(schedules, NOW + 60_000) == [1]
    state = schedules.get("tick")
    assert state is not None and state.repeats == 0 and state.due_ms is None  # done
    assert transport.queue_size() == 2


def test_racing_clusters_queue_each_firing_once(
    transport: RedisTransport, secret: str, redis_url: str
) -> None:
    # Three "clusters", each with its own connection, all read the same due schedules and
    # all try to fire them at once: each due time gives one task.
    stores = [
        RedisTransport(transport.queue, url=redis_url).schedules(codec_for(secret))
        for _ in range(3)
    ]
    for i in range(50):
        stores[0].add(every_minute(f"s{i}"))
    plans = []
    for store in stores:
        batch = store.due(None, now_ms=NOW)
        loaded = store.load([sid for sid, _ in batch.entries])
        plans.append([store.plan(loaded[s], d, NOW, catch_up=True) for s, d in batch.entries])
    results: list[list[int]] = [[] for _ in stores]
    barrier = threading.Barrier(3)

    def race(i: int) -> None:
        barrier.wait()
        results[i] = stores[i].fire(plans[i])

    threads = [threading.Thread(target=race, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.count(1) for r in results) == 50
    assert sum(len(r) for r in results) == 150
    assert transport.queue_size() == 50


def test_a_due_time_that_fired_never_fires_again_even_after_its_task_is_gone(
    schedules: RedisSchedules, transport: RedisTransport
) -> None:
    schedules.add(every_minute())
    assert fire_due(schedules, NOW) == [1]
    # The task runs and is acked: its payload is deleted, so enqueue-if-absent alone would
    # queue it again. A stale copy (a Django row saved from an old form) sets the fired due
    # time back:
    (delivery,) = transport.fetch("c1", 1)
    assert transport.ack([delivery]) == [True]
    assert transport.payload(delivery.task_id) is None
    assert schedules.add(every_minute(), due_ms=NOW) is True
    assert fire_due(schedules, NOW) == [2]  # only advanced
    assert transport.queue_size() == 0
    assert schedules.get("tick").due_ms == NOW + 60_000  # type: ignore[union-attr]


def test_a_firing_computed_from_an_old_definition_is_refused(
    schedules: RedisSchedules, transport: RedisTransport
) -> None:
    schedules.add(every_minute())
    batch = schedules.due(None, now_ms=NOW)
    loaded = schedules.load(["tick"])
    firing = schedules.plan(loaded["tick"], NOW, NOW, catch_up=True)
    schedules.add(every_minute(args=(2.5,)), due_ms=NOW)  # edited meanwhile
    assert batch.entries == [("tick", NOW)]
    assert schedules.fire([firing]) == [0]
    assert transport.queue_size() == 0
    assert fire_due(schedules, NOW) == [1]  # the new definition fires


def test_catch_up_runs_each_missed_occurrence_or_once_in_all(
    schedules: RedisSchedules, transport: RedisTransport
) -> None:
    schedules.add(every_minute("on"))
    schedules.add(every_minute("off"))
    later = NOW + 5 * 60_000 + 30_000  # five minutes and a half missed
    fired = {"on": 0, "off": 0}
    for _ in range(10):
        batch = schedules.due(None, now_ms=later)
        loaded = schedules.load([s for s, _ in batch.entries])
        firings = [
            schedules.plan(loaded[s], d, later, catch_up=(s == "on")) for s, d in batch.entries
        ]
        for f, r in zip(firings, schedules.fire(firings)):
            fired[f.stored.spec.id] += r == 1
    assert fired == {"on": 6, "off": 1}
    assert schedules.get("on").due_ms == schedules.get("off").due_ms == NOW + 6 * 60_000  # type: ignore[union-attr]


def test_pinned_schedules_are_due_only_for_their_cluster(schedules: RedisSchedules) -> None:
    schedules.add(every_minute("pinned", cluster="alpha"))
    schedules.add(every_minute("free"))
    assert [s for s, _ in schedules.due("beta", now_ms=NOW).entries] == ["free"]
    assert sorted(s for s, _ in schedules.due("alpha", now_ms=NOW).entries) == ["free", "pinned"]
    # Re-pinned: it moves index.
    schedules.add(every_minute("pinned", cluster="beta"))
    assert sorted(s for s, _ in schedules.due("beta", now_ms=NOW).entries) == ["free", "pinned"]
    assert [s for s, _ in schedules.due("alpha", now_ms=NOW).entries] == ["free"]


def test_a_definition_signed_with_another_secret_is_not_fired(
    transport: RedisTransport, schedules: RedisSchedules
) -> None:
    forger = transport.schedules(codec_for("not-the-secret-of-this-cluster-at-all-0123456789"))
    forger.add(every_minute("evil"))
    assert schedules.due(None, now_ms=NOW).entries == [("evil", NOW)]
    assert schedules.load(["evil"]) == {}
    assert schedules.list() == []
    assert transport.queue_size() == 0


def test_keep_preserves_the_state_of_an_unchanged_definition(schedules: RedisSchedules) -> None:
    schedules.add(every_minute(), keep=True)
    fire_due(schedules, NOW)
    assert schedules.add(every_minute(), keep=True, now_ms=NOW + 10 * 60_000) is False
    assert schedules.get("tick").due_ms == NOW + 60_000  # type: ignore[union-attr]
    assert schedules.add(every_minute(minutes=2), keep=True, now_ms=NOW + 1) is True


def test_paused_schedules_are_not_due(schedules: RedisSchedules) -> None:
    schedules.add(every_minute(repeats=0))
    assert schedules.due(None, now_ms=NOW + 10**7).entries == []
    assert schedules.get("tick").due_ms is None  # type: ignore[union-attr]
    schedules.add(every_minute(repeats=-1), due_ms=NOW)
    assert schedules.due(None, now_ms=NOW).entries == [("tick", NOW)]


def test_a_codec_pinned_to_wire_version_1_still_fires_without_the_schedule_options(
    transport: RedisTransport, secret: str
) -> None:
    # During a rolling upgrade (clusters of Q 0.1 still reading), the firing goes out as a v1
    # message: its id names the firing; the options v1 cannot carry are left out.
    pinned = transport.schedules(codec_for(secret, write_version=1))
    pinned.add(every_minute())
    assert fire_due(pinned, NOW) == [1]
    (delivery,) = transport.fetch("c1", 1)
    message = codec_for(secret).decode_message(delivery.payload)
    assert message.id == firing_id("tick", NOW) and message.options.schedule is None


def test_a_schedule_with_a_priority_fires_at_that_priority(
    schedules: RedisSchedules, transport: RedisTransport
) -> None:
    transport.enqueue("waiting", b"x")
    schedules.add(every_minute("urgent", q_options={"priority": 7}))
    schedules.add(every_minute("lazy", q_options={"priority": -7}))
    assert sorted(fire_due(schedules, NOW)) == [1, 1]
    assert transport.level_sizes() == {7: 1, 0: 1, -7: 1}
    got = [d.task_id for d in transport.fetch("c1", count=3)]
    assert got == [firing_id("urgent", NOW), "waiting", firing_id("lazy", NOW)]


def test_a_schedule_with_a_bad_priority_is_refused() -> None:
    for bad in (101, "high", True):
        with pytest.raises(ConfigError, match="priority"):
            every_minute("bad", q_options={"priority": bad})
