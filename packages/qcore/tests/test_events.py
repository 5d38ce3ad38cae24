"""The event bus: who is called for what, in which order, and what a failing subscriber costs."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from structlog.testing import capture_logs

from qcore import ConfigError, TaskMessage, TaskResult
from qcore.events import (
    Event,
    EventBus,
    HookFailed,
    TaskEvent,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    WorkerEvent,
    WorkerStarted,
)

SEEN: list[Event] = []


def remember(event: Event) -> None:
    """A module-level subscriber: what a cluster's bus holds must pickle."""
    SEEN.append(event)


def _message() -> TaskMessage:
    return TaskMessage.new("math.floor", (1.5,))


def _started(message: TaskMessage | None = None) -> TaskStarted:
    message = message or _message()
    return TaskStarted(message.id, message, 1, "c.0.1")


def _succeeded(message: TaskMessage) -> TaskSucceeded:
    record = TaskResult.from_message(message, result=1, success=True)
    return TaskSucceeded(message.id, record, 0.001, "c.0.1")


def test_a_subscriber_sees_its_type_and_its_subclasses_only() -> None:
    bus = EventBus()
    tasks: list[Event] = []
    workers: list[Event] = []
    everything: list[Event] = []
    bus.subscribe(TaskEvent, tasks.append)
    bus.subscribe(WorkerEvent, workers.append)
    bus.subscribe(Event, everything.append)
    message = _message()
    events = [_started(message), WorkerStarted("c.0.1", 42), _succeeded(message)]
    for event in events:
        bus.emit(event)
    assert tasks == [events[0], events[2]]
    assert workers == [events[1]]
    assert everything == events


def test_subscribers_run_in_the_order_they_subscribed() -> None:
    bus = EventBus()
    calls: list[str] = []
    bus.subscribe(Event, lambda e: calls.append("all"))
    bus.subscribe(TaskStarted, lambda e: calls.append("started"))
    bus.subscribe(TaskEvent, lambda e: calls.append("task"))
    bus.emit(_started())
    assert calls == ["all", "started", "task"]


def test_wants_says_whether_anyone_listens() -> None:
    bus = EventBus()
    assert not bus.wants(TaskStarted)
    bus.emit(_started())  # nobody listens: nothing happens
    bus.subscribe(TaskFailed, remember)
    assert bus.wants(TaskFailed)
    assert not bus.wants(TaskStarted)
    bus.subscribe(TaskEvent, remember)
    assert bus.wants(TaskStarted)  # a later subscription is seen at once
    bus.unsubscribe(TaskEvent, remember)
    assert not bus.wants(TaskStarted)


def test_a_subscriber_that_raises_is_logged_and_the_others_still_run() -> None:
    bus = EventBus()
    after: list[Event] = []

    card = "4929-1234"

    def broken(event: Event) -> None:
        raise ValueError(f"card {card} was declined")  # a message that repeats task data

    bus.subscribe(TaskStarted, broken)
    bus.subscribe(TaskStarted, after.append)
    event = _started()
    with capture_logs() as logs:
        bus.emit(event)  # does not raise
    assert after == [event]
    [entry] = logs
    assert entry["event"] == "events.subscriber_failed"
    assert entry["log_level"] == "error"
    assert entry["event_type"] == "TaskStarted" and entry["error"] == "ValueError"
    assert "broken" in entry["subscriber"] and "broken" in entry["traceback"]
    assert "4929" not in repr(entry)  # the type and the frames, never the message


def test_a_bus_pickles_with_its_subscribers() -> None:
    SEEN.clear()
    bus = EventBus()
    bus.subscribe(TaskEvent, remember)
    assert bus.wants(TaskEvent)  # a route is cached; the copy must not depend on it
    clone = pickle.loads(pickle.dumps(bus))
    event = _started()
    clone.emit(event)
    assert SEEN[:] == [event]


def test_copy_and_extend_are_independent_of_the_original() -> None:
    first: list[Event] = []
    second: list[Event] = []
    bus = EventBus()
    bus.subscribe(Event, first.append)
    copy = bus.copy()
    copy.subscribe(Event, second.append)
    bus.emit(_started())
    assert (len(first), len(second)) == (1, 0)
    other = EventBus()
    other.extend(copy)
    other.emit(_started())
    assert (len(first), len(second)) == (2, 1)


@pytest.mark.parametrize(
    ("event_type", "handler"),
    [(dict, remember), ("TaskFailed", remember), (TaskFailed, "not callable")],
)
def test_subscribing_to_something_that_is_not_an_event_is_refused(
    event_type: Any, handler: Any
) -> None:
    with pytest.raises(ConfigError, match=r"subscribe to a qcore\.events\.Event|callable"):
        EventBus().subscribe(event_type, handler)


def test_events_are_frozen() -> None:
    message = _message()
    record = TaskResult.from_message(message, result="boom", success=False)
    event = HookFailed(message.id, record, "hooks.done", RuntimeError("x"))
    with pytest.raises(AttributeError):
        event.task_id = "other"  # type: ignore[misc]
