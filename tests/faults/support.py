"""Helpers of the fault suite: side-effect counters, exactly-once checks, a cluster in a
subprocess whose every log line (sentinel and workers) is captured."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from tests.cluster.support import Bench

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Effects:
    """The side-effect counter the fault tasks increment (a hash on the test's Redis)."""

    url: str
    key: str = field(default_factory=lambda: f"fx:{uuid.uuid4().hex[:10]}")

    def __post_init__(self) -> None:
        self.client = redis.Redis.from_url(self.url)

    def args(self, tag: str) -> tuple[str, str, str]:
        """The first three arguments of a counted task."""
        return (self.url, self.key, tag)

    def count(self, tag: str) -> int:
        return int(self.client.hget(self.key, tag) or 0)

    def counts(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.client.hgetall(self.key).items()}

    def wait_started(self, timeout: float = 20) -> int:
        """The pid of the next task that announced it is running (BLPOP: no polling)."""
        got = self.client.blpop([f"{self.key}:started"], timeout=timeout)
        assert got is not None, f"no task announced its start within {timeout} s"
        return int(got[1])

    def close(self) -> None:
        self.client.close()


def assert_exactly_once(bench: Bench, fx: Effects, ids: dict[str, str]) -> None:
    """Each task (``tag -> id``) saved once, run once, and nothing left in the queue."""
    saves = bench.store.counts()
    runs = fx.counts()
    assert {tag: saves.get(i, 0) for tag, i in ids.items()} == dict.fromkeys(ids, 1)
    assert {tag: runs.get(tag, 0) for tag in ids} == dict.fromkeys(ids, 1)
    assert_drained(bench)


def assert_at_least_once(bench: Bench, fx: Effects, ids: dict[str, str]) -> None:
    """Each task has its one record (saving is an upsert), a success, and ran at least once."""
    records = {tag: bench.store.get(i) for tag, i in ids.items()}
    missing = [tag for tag, r in records.items() if r is None]
    assert not missing, f"{len(missing)} task(s) have no record, e.g. {missing[:3]}"
    failed = [r.result for r in records.values() if r is not None and not r.success]
    assert not failed, f"{len(failed)} task(s) failed, e.g. {failed[:1]}"
    runs = fx.counts()
    never = [tag for tag in ids if runs.get(tag, 0) < 1]
    assert not never, f"{len(never)} task(s) never ran, e.g. {never[:3]}"
    assert_drained(bench)


def assert_drained(bench: Bench) -> None:
    transport = bench.transport
    assert (transport.queue_size(), transport.inflight_size(), transport.delayed_size()) == (
        0,
        0,
        0,
    )
    assert transport.dead_size() == 0


def enqueue_counted(
    bench: Bench, fx: Effects, func: Any, tags: Iterable[str], *extra: Any
) -> dict[str, str]:
    """Bulk-enqueue ``func(url, key, tag, *extra)`` per tag; returns ``tag -> task id``."""
    tags = list(tags)
    ids = bench.producer.enqueue_many(func, [(*fx.args(t), *extra) for t in tags])
    return dict(zip(tags, ids))


def wait_for_count(what: Any, target: int, timeout: float = 30) -> None:
    """Poll ``what()`` until it reaches ``target`` (for progress no event announces)."""
    deadline = time.monotonic() + timeout
    while (value := what()) < target:
        if time.monotonic() > deadline:
            raise AssertionError(f"reached {value} of {target} within {timeout} s")
        time.sleep(0.02)


def wait_drained(bench: Bench, n: int, timeout: float = 60) -> None:
    """Until ``n`` tasks were saved and none is queued or held: all acked (after saving)."""
    transport = bench.transport

    def progress() -> int:
        saved = int(bench.client.hlen(bench.store.count_key))
        idle = transport.queue_size() == transport.inflight_size() == transport.delayed_size() == 0
        return saved if idle else min(saved, n - 1)

    wait_for_count(progress, n, timeout)


class ClusterProcess:
    """``qcluster run`` in a subprocess, its stdout and stderr (the sentinel's and every
    worker's, which inherit them) captured to a file."""

    def __init__(self, args: Sequence[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._out = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "qcluster.cli", "run", *args],
            cwd=ROOT,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, needle: str, timeout: float = 60) -> None:
        """Until ``needle`` shows in the log (a file: polled with a deadline)."""
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if self.process.poll() is not None:
                code = self.process.returncode
                raise AssertionError(f"the cluster exited ({code}):\n{self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not logged within {timeout} s:\n{self.text()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 30) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._out.close()
        return self.process.returncode, self.text()
