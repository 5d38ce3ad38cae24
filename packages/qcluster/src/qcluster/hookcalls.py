"""The hooks of the Failure records the sentinel's side saves: a task past its timeout, a worker
lost on the task's last attempt, the reaper's dead letters.

A hook is the task's own code, and the sentinel must keep supervising whatever a hook does, so
it never runs one itself: each call gets a short-lived child process of its own, started from
the sentinel's thread under the fork guard (as workers are) and killed past ``hook_timeout``.
The beacon thread only hands calls over (:meth:`HookCalls.owe`); the sentinel's loop starts
them. A stopping cluster waits for the calls under way and those still owed up to its grace.
"""

from __future__ import annotations

import collections
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from qcluster.forking import ForkGuard
from qcluster.lifeline import set_parent_death_signal
from qcluster.processing import call_hook
from qcluster.worker import WorkerSpec
from qcore import TaskMessage, TaskResult, configure_logging
from qcore.log import is_configured

__all__ = ["HookCalls", "hook_main"]


def hook_main(spec: WorkerSpec, message: TaskMessage, record: TaskResult) -> None:
    """A hook process's entry point: the worker's set-up, then the one hook call."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    set_parent_death_signal()
    config = spec.config
    if not is_configured():
        configure_logging(
            json=config.log_json, level=config.log_level, secret_names=config.secret_names
        )
    if spec.worker_init is not None:
        spec.worker_init()
    call_hook(message, record, spec.hook_runner, events=spec.events, log_args=config.log_args)
    sys.stdout.flush()
    sys.exit(0)


@dataclass
class _Call:
    task_id: str
    process: BaseProcess
    deadline: float
    killed: bool = False


class HookCalls:
    """The sentinel's hook calls: owed (handed over by any thread), running, finished."""

    def __init__(
        self,
        spec: WorkerSpec,
        ctx: BaseContext,
        guard: ForkGuard,
        log: Any,
        wake: Callable[[], None],
    ) -> None:
        self.spec = spec
        self.ctx = ctx
        self.guard = guard
        self.log = log
        self.wake = wake
        self._owed: collections.deque[tuple[TaskMessage, TaskResult]] = collections.deque()
        self._lock = threading.Lock()
        self.running: list[_Call] = []

    def owe(self, message: TaskMessage | None, record: TaskResult) -> None:
        """Call ``message``'s hook with ``record`` (saved) soon; thread-safe, never blocks."""
        if message is None or message.hook is None:
            return
        with self._lock:
            self._owed.append((message, record))
        self.wake()

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._owed or self.running)

    def start_owed(self) -> None:
        """Start a process for each owed call (the sentinel's thread only: it forks)."""
        while True:
            with self._lock:
                if not self._owed:
                    return
                message, record = self._owed.popleft()
            process = self.ctx.Process(  # type: ignore[attr-defined]
                target=hook_main, args=(self.spec, message, record), name="qcluster-hook"
            )
            self.guard.start(process, freeze=False)
            deadline = time.monotonic() + self.spec.config.hook_timeout
            self.running.append(_Call(message.id, process, deadline))

    def waitables(self) -> list[Any]:
        return [call.process.sentinel for call in self.running]

    def seconds_to_deadline(self) -> float | None:
        if not self.running:
            return None
        return max(0.0, min(call.deadline for call in self.running) - time.monotonic())

    def collect(self) -> None:
        """Forget finished calls, kill those past ``hook_timeout``."""
        now = time.monotonic()
        for call in list(self.running):
            if call.process.exitcode is not None:
                call.process.join()
                self.running.remove(call)
                if call.killed:
                    self.log.error(
                        "hook.timed_out",
                        task_id=call.task_id,
                        hook_timeout=self.spec.config.hook_timeout,
                    )
            elif now >= call.deadline and not call.killed:
                call.killed = True
                _kill(call.process)

    def finish(self, until: float) -> None:
        """At a stop: run what is owed and wait for every call until ``until`` (monotonic),
        then kill what still runs."""
        import multiprocessing.connection

        while self.busy and time.monotonic() < until:
            self.start_owed()
            wait = min(until, *(c.deadline for c in self.running)) - time.monotonic()
            if self.running:
                multiprocessing.connection.wait(self.waitables(), timeout=max(0.0, wait))
            self.collect()
        for call in self.running:
            _kill(call.process)
            call.process.join()
        self.running = []


def _kill(process: BaseProcess) -> None:
    if process.pid is not None and process.exitcode is None:
        try:
            os.kill(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
