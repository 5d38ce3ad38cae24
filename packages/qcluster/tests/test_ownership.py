"""When a cluster's process is provably gone (qcluster.ownership), on real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from qcluster.ownership import ProcessIdentity, is_gone, start_time

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")


def _here() -> ProcessIdentity:
    here = ProcessIdentity.here()
    assert here is not None
    return here


def _record_of(pid: int) -> dict[str, object]:
    start = start_time(pid)
    assert start is not None
    return {**_here().record(), "pid": pid, "start": start}


def test_a_living_process_is_not_gone_even_when_stopped() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        record = _record_of(child.pid)
        assert not is_gone(record, _here())
        child.send_signal(signal.SIGSTOP)
        assert not is_gone(record, _here())
    finally:
        child.kill()
        child.wait()


def test_a_dead_process_is_gone_as_a_zombie_and_once_waited_for() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    record = _record_of(child.pid)
    child.kill()
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not yet reaped: a zombie
    assert start_time(child.pid) is None
    assert is_gone(record, _here())
    child.wait()
    assert is_gone(record, _here())


def test_a_reused_pid_with_another_start_time_is_gone() -> None:
    record = {**_here().record(), "start": _here().start - 1}  # our pid, an earlier process
    assert is_gone(record, _here())
    assert not is_gone(_here().record(), _here())  # but we are not


def test_another_host_or_an_unreadable_record_is_never_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    record = _record_of(child.pid)
    child.wait()
    assert is_gone(record, _here())
    assert not is_gone({**record, "host": "another-boot/pid:[1]"}, _here())
    assert not is_gone({**record, "pid": str(record["pid"])}, _here())
    assert not is_gone({"host": record["host"]}, _here())
