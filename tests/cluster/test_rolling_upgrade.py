"""A rolling upgrade from Q 0.1 in either order, against Q 0.1's own code (from git history).

Producers first: an upgraded producer pinned to wire version 1 (``Q_WIRE_VERSION=1``) queues
tasks that a Q 0.1 cluster runs, and reads back the version 1 records that cluster saves.
Clusters first: an upgraded cluster pinned to version 1 runs a Q 0.1 producer's tasks and saves
records that producer can read. Without the pin, the old side cannot read the new side: the
tests show that too, so the pin is what makes either order work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qcore import codec_for
from qredis import Producer
from tests.cluster.support import Bench

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
Q01 = "ada346a"
"""The commit Q 0.1 (wire version 1) was released from."""


@pytest.fixture(scope="module")
def q01_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """PYTHONPATH putting Q 0.1's qcore, qredis and qcluster before this checkout's."""
    root = tmp_path_factory.mktemp("q01")
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", Q01, "packages"], capture_output=True, check=False
    )
    assert archive.returncode == 0, (
        f"Q 0.1's code is read from this repository's history (commit {Q01}); a shallow clone "
        f"lacks it: {archive.stderr.decode()}"
    )
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    return os.pathsep.join(
        str(root / "packages" / p / "src") for p in ("qcore", "qredis", "qcluster")
    )


def _env(pythonpath: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "Q_WIRE_VERSION"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, str(REPO)]))
    env.update(extra)
    return env


@pytest.fixture
def old_cluster(bench: Bench, q01_path: str) -> Iterator[subprocess.Popen[bytes]]:
    """Q 0.1's ``qcluster run`` on the bench's queue."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import qcore, sys; assert not hasattr(qcore, 'WIRE_WRITES'), 'not Q 0.1'; "
            "from qcluster.cli import main; sys.exit(main())",
            "run",
            "--redis-url",
            bench.url,
            "--queue",
            bench.queue,
            "--result-namespace",
            bench.queue,
            "--workers",
            "1",
        ],
        env=_env(q01_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    yield proc
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()[-2000:]


def test_producers_first_a_pinned_producer_feeds_a_q01_cluster(
    bench: Bench, old_cluster: subprocess.Popen[bytes]
) -> None:
    pinned = Producer(
        bench.url, bench.queue, namespace=bench.queue, codec=codec_for(write_version=1)
    )
    try:
        ok = pinned.enqueue("math.copysign", 2, -3, timeout=20, max_attempts=2)
        assert pinned.result(ok, wait=60) == -2.0  # a version 1 record, read by this Q
        record = pinned.fetch(ok)
        assert record is not None and record.success and record.version == (1, 0)

        # Unpinned, the same task is one the old cluster cannot read: why the pin exists.
        new = bench.producer.enqueue("math.copysign", 2, -3)
        failed = bench.producer.fetch(new, wait=60)
        assert failed is not None and not failed.success
        assert failed.result.startswith("UndecodablePayload: the payload is not a task message")
    finally:
        pinned.close()


_OLD_PRODUCER = """
import json, sys
from qredis import Producer
url, queue, wait = sys.argv[1], sys.argv[2], float(sys.argv[3])
with Producer(url, queue, namespace=queue) as q:
    task_id = q.enqueue("math.copysign", 2, -3, timeout=20)
    try:
        out = {"result": q.result(task_id, wait=wait)}
    except Exception as exc:
        out = {"error": f"{type(exc).__name__}: {exc}"}
print(json.dumps(out))
"""


def _all_records(bench: Bench) -> list[Any]:
    """The records of the bench's namespace (their keys scanned: a test's own Redis)."""
    prefix = bench.store._keys.prefix
    names = [k.decode().rsplit(":", 1)[1] for k in bench.client.scan_iter(f"{prefix}:r:*")]
    return [r for r in map(bench.store.get, names) if r is not None]


def _old_producer(bench: Bench, q01_path: str, wait: float = 60) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _OLD_PRODUCER, bench.url, bench.queue, str(wait)],
        env=_env(q01_path),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return json.loads(done.stdout.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_clusters_first_a_pinned_cluster_answers_a_q01_producer(
    bench: Bench, q01_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("Q_WIRE_VERSION", "1")  # the cluster builds its codec from the environment
    with bench.cluster(workers=1, start_method="fork"):
        assert _old_producer(bench, q01_path) == {"result": -2.0}


def test_clusters_first_without_the_pin_a_q01_producer_cannot_read_the_records(
    bench: Bench, q01_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("Q_WIRE_VERSION", raising=False)
    with bench.cluster(workers=1, start_method="fork"):
        out = _old_producer(bench, q01_path, wait=10)
        # The task ran and its record was saved, in a layout Q 0.1 does not look for.
        [record] = [r for r in _all_records(bench) if r.func == "math.copysign"]
        assert record.result == -2.0
    assert out == {"result": None}
