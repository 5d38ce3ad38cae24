"""The worker's event loop: where the awaitables that ``async def`` tasks return are awaited.

One :class:`TaskLoop` per :class:`~qcluster.processing.Processor`, so one per worker process
(and one per ``join()``); its asyncio loop is made on the first awaitable and reused for every
one after it, never one per task. A worker that only meets sync tasks never makes one.

With ``async_concurrency`` = 1 a task's awaitable is awaited to its end before the next task
starts (:meth:`TaskLoop.run`), exactly where a sync function would run: its timeout is the
sentinel's, as for any task. With more, :meth:`TaskLoop.start` schedules it beside the others
and :meth:`TaskLoop.wait` runs the loop until some end; each carries its own timeout, enforced
here (the task is cancelled), the sentinel's kill staying the backstop for a loop that sync
code blocks.

Nothing here raises what a task raised: each awaitable ends as a :class:`Settled`, whose
``error`` keeps the traceback from the awaited code down (no asyncio frames above it).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable
from typing import Any, NamedTuple

__all__ = ["Settled", "TaskLoop"]


class Settled(NamedTuple):
    """How one awaitable ended."""

    value: Any
    error: BaseException | None
    """What it raised (None: it returned ``value``)."""
    timed_out: bool
    """It ran past its timeout and was cancelled (``error`` is the ``TimeoutError``)."""
    ended: float
    """``time.perf_counter()`` when it ended."""


async def _settle(awaitable: Awaitable[Any], timeout: float | None) -> Settled:
    """Await ``awaitable`` (for ``timeout`` seconds at most); never raises."""
    expired = False
    try:
        if timeout is None:
            value = await awaitable
        else:
            scope = asyncio.timeout(timeout)
            try:
                async with scope:
                    value = await awaitable
            finally:
                expired = scope.expired()
    except BaseException as exc:  # a task calling sys.exit() fails, as a sync one does
        return Settled(None, exc, expired and isinstance(exc, TimeoutError), time.perf_counter())
    return Settled(value, None, False, time.perf_counter())


def _outcome(task: asyncio.Task[Settled]) -> Settled:
    if task.cancelled():  # cancelled before its first step: the awaitable never ran
        return Settled(None, asyncio.CancelledError(), False, time.perf_counter())
    return task.result()


class TaskLoop:
    """An asyncio loop kept for a worker's life, running the awaitables of its tasks."""

    __slots__ = ("_loop", "_pending")

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[asyncio.Task[Settled], int] = {}

    def __len__(self) -> int:
        """Awaitables started and not yet collected by :meth:`wait`."""
        return len(self._pending)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop

    def run(self, awaitable: Awaitable[Any]) -> Settled:
        """Await one awaitable to its end, nothing else running beside it."""
        settled: Settled = self._run_until_complete(_settle(awaitable, None))
        return settled

    def start(self, key: int, awaitable: Awaitable[Any], timeout: float | None) -> None:
        """Schedule ``awaitable`` beside the others (it runs while :meth:`wait` does)."""
        self._pending[self.loop.create_task(_settle(awaitable, timeout))] = key

    def cancel(self, key: int) -> bool:
        """Cancel the awaitable started with ``key`` (it ends, as cancelled, while :meth:`wait`
        runs the loop); False when no such one is pending."""
        for task, started in self._pending.items():
            if started == key:
                return task.cancel()
        return False

    def wait(self, timeout: float | None = None) -> list[tuple[int, Settled]]:
        """Run the loop until at least one started awaitable ended (or ``timeout`` seconds
        passed); what ended, with the key it was started with, in the order they ended."""
        if not self._pending:
            return []
        waiting = asyncio.wait(self._pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        done, _ = self._run_until_complete(waiting)
        ended = [(self._pending.pop(task), _outcome(task)) for task in done]
        ended.sort(key=lambda pair: pair[1].ended)
        return ended

    def close(self) -> None:
        """Close the loop (what is still pending is cancelled first)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for task in self._pending:
            task.cancel()
        if self._pending:
            self._run_until_complete(asyncio.wait(self._pending))
        self._pending.clear()
        self._run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        self._loop = None

    def _run_until_complete(self, awaitable: Awaitable[Any]) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self.loop.run_until_complete(awaitable)
        # join() called from async code: this thread's loop is busy; ours runs in a thread.
        out: list[Any] = []
        failed: list[BaseException] = []

        def target() -> None:
            try:
                out.append(self.loop.run_until_complete(awaitable))
            except BaseException as exc:
                failed.append(exc)

        thread = threading.Thread(target=target, name="q-task-loop")
        thread.start()
        thread.join()
        if failed:
            raise failed[0]
        return out[0]
