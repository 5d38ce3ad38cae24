"""The events guide's sample runs: its subscribers hear of each task join() runs."""

from __future__ import annotations

import pytest
from packages.qcluster.tests.events_sample import bus

from qcluster import join
from qcore import Codec, Signer, enqueue
from qcore.testing import MemoryResultStore, MemoryTransport


def divide(a: float, b: float) -> float:
    return a / b


def test_the_subscribers_hear_of_each_task(capsys: pytest.CaptureFixture[str]) -> None:
    transport, store = MemoryTransport(), MemoryResultStore()
    codec = Codec(Signer(b"the events guide's secret, 32 bytes"))
    enqueue(transport, codec, divide, (1, 2))
    enqueue(transport, codec, divide, (1, 0))
    join(transport, store, codec=codec, events=bus)
    out = [line for line in capsys.readouterr().out.splitlines() if "task.failed" not in line]
    name = f"{__name__}.divide"
    assert out[0].startswith(f"{name} ran in ") and out[0].endswith(" ms")
    assert out[1] == f"{name} failed on attempt 1: ZeroDivisionError: division by zero"
    assert len(out) == 2
