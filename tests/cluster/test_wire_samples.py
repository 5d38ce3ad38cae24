"""Messages of every wire version this Q reads run on a real cluster: the checked-in samples
of version 1 (what Q 0.1 queued) and of the current version, a newer minor version with a
field this Q does not know, and an unknown major version, which is dead-lettered with the
reason. Samples: packages/qcore/tests/wire (made with the test secret, which the cluster's
``Q_SECRET_KEY`` is here)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from qcore import TaskMessage, TaskOptions, TaskResult
from qcore.signing import FLAG_MESSAGE
from qredis import ResultKeys
from tests.cluster.support import Bench, eventually

WIRE = Path(__file__).resolve().parents[2] / "packages/qcore/tests/wire"

# Sample -> (its task id, the result the task returns).
RUNS = {
    "message-plain": ("a1" * 16, -2.0),
    "message-options": ("b2" * 16, {"timeout": 5, "save": "the task's own", "x": [1, 2]}),
    "message-callable": ("c3" * 16, 5.0),
    "message-compressed": ("d4" * 16, 100_000),
}


def _sample(version: str, name: str) -> bytes:
    return (WIRE / version / f"{name}.bin").read_bytes()


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_the_checked_in_messages_run_on_this_cluster(bench: Bench, version: str) -> None:
    for name, (task_id, _) in RUNS.items():
        bench.transport.enqueue(task_id, _sample(version, name))
    with bench.cluster(workers=1, start_method="fork"):
        records = bench.wait_all([task_id for task_id, _ in RUNS.values()])
    for name, (task_id, returned) in RUNS.items():
        record = records[task_id]
        assert record.success, (name, record.result)
        assert record.result == returned, name
    options = records["b2" * 16]
    assert options.kwargs["timeout"] == 5  # the task's own keyword, not Q's option
    assert options.options == TaskOptions(
        timeout=30.0, save=True, max_attempts=2, eta=options.started - 60
    )
    assert options.group == f"wire-{version}" and options.hook == "builtins.id"
    assert records["c3" * 16].func == "math.hypot"
    assert set(bench.store.counts().values()) == {1}
    assert bench.transport.dead_size() == 0 and bench.transport.queue_size() == 0


def _signed(bench: Bench, wire: tuple) -> bytes:
    return bench.producer.codec.signer.sign(pickle.dumps(wire, 5), FLAG_MESSAGE)


def test_a_newer_minor_version_runs_and_an_unknown_major_version_is_dead_lettered(
    bench: Bench,
) -> None:
    newer = TaskMessage.new("math.copysign", (4, -1), options=TaskOptions(timeout=9.0))
    major, minor, *fields, options = newer.to_wire()
    bench.transport.enqueue(
        newer.id,
        _signed(bench, (major, minor + 1, *fields, {**options, "colour": 3}, "a new field")),
    )
    future = TaskMessage.new("math.copysign", (5, -1))
    bench.transport.enqueue(future.id, _signed(bench, (major + 1, 0, *future.to_wire()[2:])))
    after = bench.producer.enqueue("math.copysign", 6, -1)
    with bench.cluster(workers=1, start_method="fork"):
        records = bench.wait_all([newer.id, after])
        [letter] = eventually(bench.transport.dead_letters, what="the dead letter")
        status = eventually(lambda: (s := bench.status()) and s["processed"] >= 2 and s)
    assert records[newer.id].result == -4.0 and records[after].result == -6.0
    assert records[newer.id].options == TaskOptions(timeout=9.0)  # "colour" ignored
    assert letter.task_id == future.id
    assert letter.reason.startswith(
        f"UnsupportedVersion: task message wire version {major + 1}.0 is not supported"
    ), letter.reason
    assert bench.store.get(future.id) is None
    assert bench.store.counts() == {newer.id: 1, after: 1}
    assert status["replaced"] == 0 and status["lost"] == 0


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_checked_in_records_read_from_the_redis_result_store(bench: Bench, version: str) -> None:
    client = bench.client
    for name in ("result-success", "result-failure"):
        data = _sample(version, name)
        record = bench.producer.codec.decode_result(data)
        assert isinstance(record, TaskResult)
        # Stored the way RedisResultStore.save_many stores it: a success flag, then the record.
        flag = b"1" if record.success else b"0"
        client.set(ResultKeys.for_namespace(bench.queue).record(record.id), flag + data)
        read = bench.store.get(record.id)
        assert read == record, name
    assert bench.store.get("a1" * 16).result == -2.0
    failure = bench.store.get("e5" * 16)
    assert not failure.success and failure.kwargs == {"timeout": 5}
