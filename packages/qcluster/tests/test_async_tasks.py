"""``async def`` tasks run through the worker's own code (``join()``): awaited in one event loop
per processor, one at a time by default, side by side with ``async_concurrency``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from qcluster import ClusterConfig, join
from qcluster.eventloop import TaskLoop
from qcore import Codec, ConfigError, EventBus, Signer, TaskMessage, TaskOptions, TaskResult
from qcore.events import Event, TaskFailed, TaskRetried, TaskStarted, TaskSucceeded, TaskTimedOut
from qcore.testing import MemoryResultStore, MemoryTransport

CODEC = Codec(Signer(b"async-tests-key-0123456789abcdef"))
HOOKED: list[TaskResult] = []
LOOPS: set[int] = set()


async def double(x: int) -> int:
    await asyncio.sleep(0)
    LOOPS.add(id(asyncio.get_running_loop()))
    return 2 * x


async def nap(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


async def fails(reason: str) -> None:
    await asyncio.sleep(0)
    raise ValueError(f"async boom: {reason}")


def returns_awaitable(x: int) -> Any:
    """A sync function returning an awaitable: awaited like an ``async def``'s coroutine."""
    return double(x)


def remember(record: TaskResult) -> None:
    HOOKED.append(record)


def sync_add(a: int, b: int) -> int:
    return a + b


def send(transport: MemoryTransport, func: Any, *args: Any, **options: Any) -> TaskMessage:
    hook = options.pop("hook", None)
    message = TaskMessage.new(func, args, hook=hook, options=TaskOptions(**options))
    transport.enqueue(message.id, CODEC.encode_message(message))
    return message


def run(transport: MemoryTransport, store: MemoryResultStore, **config: Any) -> list[Event]:
    seen: list[Event] = []
    bus = EventBus()
    for kind in (TaskStarted, TaskSucceeded, TaskFailed, TaskTimedOut, TaskRetried):
        bus.subscribe(kind, seen.append)
    join(transport, store, codec=CODEC, events=bus, config=ClusterConfig(**config))
    return seen


@pytest.fixture
def queue() -> tuple[MemoryTransport, MemoryResultStore]:
    HOOKED.clear()
    LOOPS.clear()
    return MemoryTransport(), MemoryResultStore()


@pytest.mark.parametrize("concurrency", [1, 8])
def test_a_coroutine_task_is_awaited_with_its_record_hook_and_events(
    queue: tuple[MemoryTransport, MemoryResultStore], concurrency: int
) -> None:
    transport, store = queue
    ok = send(transport, double, 21, hook=remember)
    bad = send(transport, fails, "x", hook=remember)
    indirect = send(transport, returns_awaitable, 4)
    seen = run(transport, store, async_concurrency=concurrency)

    assert store.get(ok.id).result == 42 and store.get(ok.id).success
    assert store.get(indirect.id).result == 8
    failed = store.get(bad.id)
    assert not failed.success and failed.result.startswith("ValueError: async boom: x")
    assert "_settle" not in failed.result and "base_events" not in failed.result
    assert "raise ValueError" in failed.result  # the task's own frame is in the traceback
    assert store.get(ok.id).run_time is not None
    assert sorted(r.id for r in HOOKED) == sorted([ok.id, bad.id])
    kinds = [type(e).__name__ for e in seen]
    assert kinds.count("TaskStarted") == 3
    assert kinds.count("TaskSucceeded") == 2 and kinds.count("TaskFailed") == 1
    assert len(LOOPS) == 1  # one event loop for the whole run, not one per task


def test_a_failing_coroutine_is_retried_like_a_sync_task(
    queue: tuple[MemoryTransport, MemoryResultStore],
) -> None:
    transport, store = queue
    message = send(transport, fails, "again", retries=1, retry_backoff=0.0)
    seen = run(transport, store, async_concurrency=4)
    assert [type(e) for e in seen].count(TaskRetried) == 1
    record = store.get(message.id)
    assert not record.success and record.attempt_count == 2


def test_coroutines_overlap_with_async_concurrency(
    queue: tuple[MemoryTransport, MemoryResultStore],
) -> None:
    transport, store = queue
    ids = [send(transport, nap, 0.3).id for _ in range(20)]
    send(transport, sync_add, 1, 2)  # a sync task in between runs as ever
    begun = time.monotonic()
    run(transport, store, async_concurrency=20)
    took = time.monotonic() - begun
    assert all(store.get(i).success for i in ids)
    assert took < 3.0, f"20 overlapping 0.3 s naps took {took:.2f} s"  # in sequence: 6 s


def test_with_concurrency_1_coroutines_run_one_at_a_time(
    queue: tuple[MemoryTransport, MemoryResultStore],
) -> None:
    transport, store = queue
    ids = [send(transport, nap, 0.1).id for _ in range(5)]
    begun = time.monotonic()
    run(transport, store)
    assert time.monotonic() - begun >= 0.5
    assert all(store.get(i).success for i in ids)


def test_a_coroutine_past_its_timeout_is_cancelled_in_the_loop_the_others_unaffected(
    queue: tuple[MemoryTransport, MemoryResultStore],
) -> None:
    transport, store = queue
    slow = send(transport, nap, 30.0, timeout=0.3, hook=remember)
    quick = [send(transport, nap, 0.5, timeout=5.0, hook=remember).id for _ in range(3)]
    begun = time.monotonic()
    seen = run(transport, store, async_concurrency=4)
    assert time.monotonic() - begun < 10.0
    record = store.get(slow.id)
    assert not record.success
    assert record.result.startswith("TimeoutError: the task timed out after 0.3 s")
    assert all(store.get(i).success for i in quick)
    timeouts = [e for e in seen if isinstance(e, TaskTimedOut)]
    assert [e.task_id for e in timeouts] == [slow.id] and timeouts[0].saved
    assert not [e for e in seen if isinstance(e, TaskFailed)]
    assert sorted(r.id for r in HOOKED) == sorted([slow.id, *quick])  # one hook each


def test_join_from_a_running_event_loop_awaits_in_a_thread(
    queue: tuple[MemoryTransport, MemoryResultStore],
) -> None:
    transport, store = queue
    message = send(transport, double, 5)

    async def inside() -> None:
        join(transport, store, codec=CODEC)

    asyncio.run(inside())
    assert store.get(message.id).result == 10


def test_async_concurrency_must_be_an_integer_of_at_least_1() -> None:
    for bad in (0, -3, 1.5, "4", True):
        with pytest.raises(ConfigError, match="async_concurrency must be an integer >= 1"):
            ClusterConfig(async_concurrency=bad)
    assert ClusterConfig.from_env({"Q_ASYNC_CONCURRENCY": "50"}).async_concurrency == 50
    with pytest.raises(ConfigError, match="async_concurrency must be a number"):
        ClusterConfig.from_env({"Q_ASYNC_CONCURRENCY": "many"})


def test_the_task_loop_is_made_once_and_closed() -> None:
    loop = TaskLoop()
    first = loop.run(double(1))
    made = loop.loop
    second = loop.run(double(2))
    assert (first.value, second.value) == (2, 4) and loop.loop is made
    loop.close()
    assert made.is_closed()
