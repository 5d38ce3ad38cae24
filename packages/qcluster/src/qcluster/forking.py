"""Starting worker processes from the sentinel, which has a thread, safely under ``fork``.

``fork`` copies only the forking thread, but every lock as it is at that instant: a lock the
beacon thread holds then (redis-py's pool, a log writer's) stays held forever in the child.
So the beacon does its I/O only while holding a :class:`ForkGuard`, and the sentinel starts a
worker only while holding it too: no lock of the beacon's is ever copied held. Under
``forkserver`` and ``spawn`` nothing is copied, and holding the guard costs nothing.

Before a fork the heap is frozen (``gc.freeze``): the collector then never walks the objects
the child inherited, so it never writes to their pages and they stay shared copy-on-write.
"""

from __future__ import annotations

import gc
import threading
import warnings
from multiprocessing.process import BaseProcess
from types import TracebackType

__all__ = ["ForkGuard"]


class ForkGuard:
    """A lock held by a thread around its I/O and by the sentinel around each fork."""

    __slots__ = ("_frozen", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frozen = False

    def __enter__(self) -> ForkGuard:
        self._lock.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()

    def start(self, process: BaseProcess, *, freeze: bool) -> None:
        """Start ``process`` while no guarded thread is in the middle of its I/O."""
        with self, warnings.catch_warnings():
            # Python 3.12+ warns on every fork of a process with threads, because a lock held
            # by another thread could be copied held. The guard excludes exactly that for the
            # one other thread the sentinel runs, so the warning is silenced here, for this
            # fork only, and nowhere else.
            warnings.filterwarnings(
                "ignore", message=r".*multi-threaded.*fork", category=DeprecationWarning
            )
            if freeze:
                # A replacement worker: without a collection, the garbage made since the last
                # fork would be frozen for good. Cheap: frozen objects are not walked. But
                # gc.get_freeze_count() walks every one of them: asked once, not at each fork
                # (it cost a recycling sentinel more than the fork: tools/bench, 'R50').
                if self._frozen or gc.get_freeze_count():
                    gc.collect()
                gc.freeze()
                self._frozen = True
            process.start()
