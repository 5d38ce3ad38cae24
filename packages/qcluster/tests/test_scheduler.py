"""The scheduler job on a real Redis: pinning to a cluster name, what it reports, when it wakes."""

from __future__ import annotations

import time

from qcluster import ScheduleFired, Scheduler
from qcore import EventBus, ScheduleSpec, codec_for, firing_id
from qcore.events import TaskEnqueued
from qredis import RedisTransport

NOW = (int(time.time()) // 60 + 24 * 60) * 60_000  # a day ahead, on a minute (ms)


def test_a_schedule_pinned_to_a_cluster_name_fires_only_there(
    redis_url: str, queue_name: str, secret: str
) -> None:
    transport = RedisTransport(queue_name, url=redis_url)
    store = transport.schedules(codec_for(secret))
    store.add(ScheduleSpec(id="pinned", func="math.floor", args=(1.5,), cluster="alpha",
                           next_run=NOW / 1000))  # fmt: skip
    fired: list[ScheduleFired] = []

    def clock() -> float:
        return NOW / 1000

    beta = Scheduler(store, cluster="beta", clock=clock, on_fired=fired.append)
    beta.run()
    assert fired == [] and transport.queue_size() == 0
    bus = EventBus()
    enqueued: list[TaskEnqueued] = []
    bus.subscribe(TaskEnqueued, enqueued.append)
    alpha = Scheduler(store, cluster="alpha", clock=clock, on_fired=fired.append, events=bus)
    alpha.run()
    (event,) = enqueued  # as a producer's bus would see it
    assert event.queue == queue_name and event.message.options.schedule == "pinned"
    assert [(f.schedule_id, f.due_ms, f.queued, f.next_ms) for f in fired] == [
        ("pinned", NOW, True, None)
    ]
    assert fired[0].task_id == firing_id("pinned", NOW) and transport.queue_size() == 1


def test_the_next_pass_is_at_the_next_due_time_and_never_later_than_poll(
    redis_url: str, queue_name: str, secret: str
) -> None:
    store = RedisTransport(queue_name, url=redis_url).schedules(codec_for(secret))
    now = NOW / 1000
    scheduler = Scheduler(store, cluster="c", clock=lambda: now, poll=0.5)
    assert scheduler.run() == 0.5  # nothing scheduled
    store.add(ScheduleSpec(id="soon", func="math.floor", args=(1.5,), next_run=now + 0.2))
    assert abs(scheduler.run() - 0.2) < 1e-9
    # Catching up: a Minutes schedule ten minutes behind asks to run again at once.
    store.add(ScheduleSpec(id="behind", func="math.floor", args=(1.5,), schedule_type="I",
                           minutes=1, next_run=now - 600), due_ms=NOW - 600_000)  # fmt: skip
    assert scheduler.run() == 0.0
    assert scheduler.fired == 1
