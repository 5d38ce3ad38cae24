"""Making child processes die with their parent.

A worker must not outlive its sentinel: nobody would heartbeat its consumer, enforce its
timeouts or replace it. Three layers, because each one alone has a gap: Linux's
``PR_SET_PDEATHSIG`` (the kernel kills the child when the parent thread that forked it dies),
a daemon thread blocked on the parent's process sentinel (portable; under ``fork`` a sibling
can hold the pipe open), and a ``getppid()`` check that the worker makes between fetches.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from collections.abc import Callable

__all__ = ["parent_alive", "set_parent_death_signal", "watch_parent"]

_PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies. False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        # The process's own symbols, libc's among them: ctypes.util.find_library would run
        # ldconfig in a subprocess at every worker start (milliseconds, and a megabyte of
        # memory no longer shared with the sentinel).
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def parent_alive(original_ppid: int) -> bool:
    """False once this process was re-parented (its parent died)."""
    return os.getppid() == original_ppid


def watch_parent(on_gone: Callable[[], None]) -> threading.Thread | None:
    """Call ``on_gone`` from a daemon thread when the multiprocessing parent exits."""
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return None
    sentinel = parent.sentinel

    def wait() -> None:
        multiprocessing.connection.wait([sentinel])
        on_gone()

    thread = threading.Thread(target=wait, name="q-parent-watch", daemon=True)
    thread.start()
    return thread
