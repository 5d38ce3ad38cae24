"""join(): what a transport holds, run in this process through the worker's own code."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from qcluster import ClusterConfig, join
from qcore import Codec, EventBus, Signer, TaskMessage, TaskOptions, TaskResult
from qcore.events import (
    Event,
    HookFailed,
    TaskDeadLettered,
    TaskEvent,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
)
from qcore.testing import MemoryResultStore, MemoryTransport

CODEC = Codec(Signer(b"join-tests-key-0123456789abcdef!"))
SEEN: list[Any] = []


def add(a: int, b: int) -> int:
    return a + b


def explode(reason: str) -> None:
    raise ValueError(f"boom: {reason}")


def fan_out(n: int) -> int:
    """A task that queues tasks: they run in the same join()."""
    transport = MemoryTransport(space=SPACE)
    for i in range(n):
        message = TaskMessage.new(add, (i, i))
        transport.enqueue(message.id, CODEC.encode_message(message))
    return n


def remember_store_has_it(record: TaskResult) -> None:
    SEEN.append((record.id, STORE.get(record.id) == record))


def broken_hook(record: TaskResult) -> None:
    raise RuntimeError("hook broke")


SPACE = "join-tests"
STORE = MemoryResultStore()


def send(transport: MemoryTransport, func: Any, *args: Any, **options: Any) -> TaskMessage:
    hook = options.pop("hook", None)
    message = TaskMessage.new(func, args, hook=hook, options=TaskOptions(**options))
    delay = 3600.0 if options.get("eta") else 0.0
    transport.enqueue(message.id, CODEC.encode_message(message), delay=delay)
    return message


def bus_into(events: list[Event]) -> EventBus:
    bus = EventBus()
    bus.subscribe(TaskEvent, events.append)
    return bus


def test_join_saves_acks_then_calls_the_hook_with_the_saved_record() -> None:
    SEEN.clear()
    transport = MemoryTransport()
    message = send(transport, add, 3, 4, hook=remember_store_has_it)
    assert join(transport, STORE, codec=CODEC) == 1
    record = STORE.get(message.id)
    assert record is not None and record.success and record.result == 7
    assert [(message.id, True)] == SEEN  # the hook ran after the save
    assert transport.queue_size() == transport.inflight_size() == 0  # acked


def test_tasks_queued_by_tasks_run_in_the_same_join_without_threads() -> None:
    transport = MemoryTransport(space=SPACE)
    store = MemoryResultStore()
    threads = threading.active_count()
    send(transport, fan_out, 5)
    assert join(transport, store, codec=CODEC) == 6
    assert threading.active_count() == threads
    assert sorted(r.result for r in store.records()) == [0, 2, 4, 5, 6, 8]


def test_events_come_in_order_and_a_failing_hook_is_an_event() -> None:
    transport = MemoryTransport()
    events: list[Event] = []
    ok = send(transport, add, 1, 2)
    bad = send(transport, explode, "x", hook=broken_hook)
    join(transport, MemoryResultStore(), codec=CODEC, events=bus_into(events))
    kinds = [(type(e), e.task_id) for e in events if isinstance(e, TaskEvent)]
    assert kinds == [
        (TaskStarted, ok.id),
        (TaskStarted, bad.id),
        (TaskSucceeded, ok.id),
        (TaskFailed, bad.id),
        (HookFailed, bad.id),
    ]
    failed = events[3]
    assert isinstance(failed, TaskFailed) and failed.record.result.startswith("ValueError: boom")
    hook_failed = events[4]
    assert isinstance(hook_failed, HookFailed) and isinstance(hook_failed.error, RuntimeError)


def test_a_payload_signed_with_another_key_is_dead_lettered_unopened() -> None:
    transport = MemoryTransport()
    events: list[Event] = []
    message = TaskMessage.new(add, (1, 1))
    other = Codec(Signer(b"another-key-0123456789abcdef!!!!"))
    transport.enqueue(message.id, other.encode_message(message))
    assert join(transport, MemoryResultStore(), codec=CODEC, events=bus_into(events)) == 0
    [letter] = transport.dead_letters()
    assert letter.task_id == message.id and letter.reason.startswith("UnknownKey")
    assert [type(e) for e in events] == [TaskDeadLettered]


def test_save_options_decide_what_is_saved() -> None:
    transport = MemoryTransport()
    store = MemoryResultStore()
    quiet = send(transport, add, 1, 2, save=False)
    loud = send(transport, add, 1, 3)
    failed = send(transport, explode, "z", save=False)  # failures are always saved
    join(transport, store, codec=CODEC, config=ClusterConfig(save=False))
    assert store.get(quiet.id) is None and store.get(loud.id) is None
    assert store.get(failed.id) is not None


def test_delayed_tasks_wait_unless_run_delayed() -> None:
    transport = MemoryTransport()
    store = MemoryResultStore()
    later = send(transport, add, 2, 2, eta=1e12)
    assert join(transport, store, codec=CODEC) == 0
    assert transport.delayed_size() == 1
    assert join(transport, store, codec=CODEC, run_delayed=True) == 1
    assert store.get(later.id).result == 4  # type: ignore[union-attr]


def test_reraise_raises_the_tasks_exception_after_saving_and_hooking() -> None:
    SEEN.clear()
    transport = MemoryTransport()
    message = send(transport, explode, "y", hook=remember_store_has_it)
    with pytest.raises(ValueError, match="boom: y"):
        join(transport, STORE, codec=CODEC, reraise=True)
    assert [(message.id, True)] == SEEN
    assert transport.queue_size() == transport.inflight_size() == 0


class DownStore(MemoryResultStore):
    def save_many(self, results: Any, **options: Any) -> None:
        raise ConnectionError("the store is down")


def test_a_store_error_is_raised_at_once_and_the_task_goes_back() -> None:
    transport = MemoryTransport()
    send(transport, add, 1, 1)
    with pytest.raises(ConnectionError):
        join(transport, DownStore(), codec=CODEC)
    assert transport.queue_size() == 1 and transport.inflight_size() == 0
