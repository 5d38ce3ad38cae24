"""Deadlines: a task past its timeout, or a hook stuck past ``hook_timeout`` (and the worker's
own alarm), costs its worker (and so does a task whose termination was asked:
``cancel(..., terminate=True)``).

The sentinel reads each worker's slot: a RUNNING slot carries the task's deadline, a HOOK slot
the moment its hook began. Past either, the worker is SIGKILLed (a task that ignores SIGTERM or
is stuck in a system call still dies) and the handle remembers why and what the slot said, so
the exit is handled as a timeout and not as a loss. Between events the sentinel sleeps until
the nearest deadline, and no longer than ``guard_cycle``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable

from qcluster.config import ClusterConfig
from qcluster.slot import SlotView
from qcluster.spawning import WorkerHandle
from qcluster.states import KillReason, WorkerState

__all__ = ["HOOK_BACKSTOP", "enforce", "hook_deadline", "kill", "next_deadline"]

_MIN_WAIT = 0.005


HOOK_BACKSTOP = 5.0
"""Seconds past ``hook_timeout`` before the sentinel kills a worker still in a hook: the
worker's own alarm interrupts a hook at ``hook_timeout`` (and its other hooks still run);
the kill is for a hook stuck where the alarm cannot reach it."""


def hook_deadline(config: ClusterConfig) -> float:
    """Seconds a worker may stay in one hook before it is killed."""
    return config.hook_timeout + HOOK_BACKSTOP


def next_deadline(
    handles: Iterable[WorkerHandle], config: ClusterConfig, also: float | None = None
) -> float:
    """Seconds the sentinel may sleep: until the nearest deadline (or ``also``), at most
    ``guard_cycle``."""
    wake = config.guard_cycle if also is None else min(config.guard_cycle, also)
    now = time.monotonic()
    for handle in handles:
        if handle.kill is not None:
            continue
        view = handle.slot.read()
        if view.state is WorkerState.RUNNING and view.deadline:
            wake = min(wake, view.deadline - now)
        elif view.state is WorkerState.HOOK:
            wake = min(wake, view.since + hook_deadline(config) - now)
    return max(wake, _MIN_WAIT)


def enforce(handles: Iterable[WorkerHandle], config: ClusterConfig) -> None:
    """Kill every worker whose task or hook is past its deadline."""
    now = time.monotonic()
    for handle in handles:
        if handle.kill is not None:
            continue
        view = handle.slot.read()
        if view.torn:
            continue
        # A task whose termination was asked: the one it runs, or a coroutine it awaits that
        # its loop did not cancel in time (sync code blocks it).
        running = view.state is WorkerState.RUNNING
        if handle.terminate_awaited is not None or (running and view.token == handle.terminate):
            kill(handle, KillReason.CANCELLED, view)
        elif view.state is WorkerState.RUNNING and view.deadline and now >= view.deadline:
            kill(handle, KillReason.TIMEOUT, view)
        elif view.state is WorkerState.HOOK and now - view.since >= hook_deadline(config):
            kill(handle, KillReason.HOOK_TIMEOUT, view)


def kill(handle: WorkerHandle, reason: KillReason, view: SlotView | None = None) -> None:
    """SIGKILL the worker, remembering why and what its slot said."""
    handle.kill = reason
    handle.kill_view = view
    pid = handle.process.pid
    if pid is not None and handle.process.exitcode is None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
