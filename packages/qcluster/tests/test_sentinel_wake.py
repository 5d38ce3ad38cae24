"""The sentinel's wake-up pipe: a wake-up after the sentinel closed it writes nowhere.

A thread of the sentinel (the lifeline, hook calls, the termination watch) or a caller of
``request_stop`` may wake it after it stopped. Writing to the pipe's old descriptor then wrote
into whatever file the process opened next under that number: once, a test process's Redis
connection, whose next command Redis read as ``!*1...`` (an unknown command), and every later
test of that process failed.
"""

from __future__ import annotations

import os

from qcluster import Cluster
from qcluster.sentinel import Sentinel
from qcore.testing import MemoryResultStore, MemoryTransport


def test_a_wake_up_after_the_close_writes_into_no_other_file() -> None:
    os.environ.setdefault("Q_SECRET_KEY", "sentinel-wake-test-secret-0123456789abcdef")
    cluster = Cluster(transport=MemoryTransport(), store=MemoryResultStore())
    sentinel = Sentinel(cluster._spec(), status_board=None, jobs=cluster._jobs())
    sentinel.request_stop()  # while open: a wake-up is written
    sentinel._close_wake()
    reader, writer = os.pipe()  # the lowest free descriptors: the ones just closed
    try:
        sentinel.request_stop()
        sentinel.request_stop(now=True)
        os.set_blocking(reader, False)
        try:
            leaked = os.read(reader, 64)
        except BlockingIOError:
            leaked = b""
        assert leaked == b""
        assert sentinel.stop_requested and sentinel.stop_now
    finally:
        os.close(reader)
        os.close(writer)
    sentinel._close_wake()  # twice is harmless
