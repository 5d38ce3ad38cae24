"""Calling a task's hook in the calling process, under an alarm of ``hook_timeout`` seconds
(a worker's main thread: SIGALRM is Q's there); what a hook raises never escapes."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from qcluster.execution import run_hook
from qcluster.tasklog import TaskLog
from qcore import EventBus, HookRunner, TaskMessage, TaskResult
from qcore.events import HookFailed

__all__ = ["HookInterrupted", "call_hook"]


class HookInterrupted(BaseException):
    """Raised into a hook past its alarm (a BaseException: a hook's ``except Exception``
    does not swallow it)."""


@contextmanager
def _alarm(seconds: float | None) -> Iterator[None]:
    if seconds is None:
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise HookInterrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def call_hook(
    message: TaskMessage,
    record: TaskResult,
    runner: HookRunner | None = None,
    *,
    events: EventBus | None = None,
    log_args: bool = False,
    timeout: float | None = None,
) -> bool:
    """Resolve and run the message's hook through ``runner``; never raise.

    A hook that raises is a :class:`~qcore.events.HookFailed` on ``events`` (whose task log
    writes ``hook.failed``); without a bus it is logged all the same. ``timeout``: seconds
    before SIGALRM interrupts the hook (the main thread of a process whose SIGALRM Q owns: a
    worker), a ``HookFailed`` with a ``TimeoutError``. Returns True when there was no hook or
    it ran without raising.
    """
    try:
        with _alarm(timeout):
            error = run_hook(message, record, runner)
    except HookInterrupted:
        error = TimeoutError(f"the hook ran past hook_timeout ({timeout:g} s): interrupted")
    if error is None:
        return True
    bus = events if events is not None else TaskLog(log_args=log_args).subscribe(EventBus())
    bus.emit(HookFailed(message.id, record, message.hook_path or "", error))
    return False
