"""Lifeline: a worker asks the kernel to kill it when its sentinel dies."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import ctypes, signal
from qcluster.lifeline import set_parent_death_signal
assert set_parent_death_signal(signal.SIGKILL)
value = ctypes.c_int()
ctypes.CDLL(None).prctl(2, ctypes.byref(value))  # PR_GET_PDEATHSIG
print(value.value)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_parent_death_signal_is_set() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert int(out.stdout) == 9
