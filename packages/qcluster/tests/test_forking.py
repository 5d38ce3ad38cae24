"""ForkGuard: no fork while a guarded thread is in the middle of its I/O."""

from __future__ import annotations

import gc
import multiprocessing
import threading
import time

from qcluster.forking import ForkGuard


def _child(conn: object) -> None:
    conn.send(time.monotonic())  # type: ignore[attr-defined]


def test_a_fork_waits_for_the_guarded_thread_and_freezes_the_heap() -> None:
    guard = ForkGuard()
    ctx = multiprocessing.get_context("fork")
    reader, writer = ctx.Pipe(duplex=False)
    inside, release = threading.Event(), threading.Event()
    left = 0.0

    def io() -> None:
        nonlocal left
        with guard:
            inside.set()
            release.wait(10)
            left = time.monotonic()

    thread = threading.Thread(target=io)
    thread.start()
    inside.wait(10)
    threading.Timer(0.2, release.set).start()
    gc.unfreeze()
    process = ctx.Process(target=_child, args=(writer,))
    guard.start(process, freeze=True)
    assert gc.get_freeze_count() > 0
    gc.unfreeze()
    forked = reader.recv()
    process.join(10)
    thread.join(10)
    assert process.exitcode == 0
    assert forked >= left > 0  # the child was forked only after the thread let go


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_garbage_made_between_forks_is_collected_not_frozen() -> None:
    import weakref

    guard = ForkGuard()
    ctx = multiprocessing.get_context("fork")
    gc.freeze()  # as after a first worker
    gc.disable()  # only the guard may collect here
    try:
        node = _Node()
        alive = weakref.ref(node)
        del node
        process = ctx.Process(target=time.sleep, args=(0,))
        guard.start(process, freeze=True)
        process.join(10)
        assert alive() is None
    finally:
        gc.enable()
        gc.unfreeze()
