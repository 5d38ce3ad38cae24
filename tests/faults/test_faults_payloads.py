"""Payloads not signed by us are never unpickled, and key rotation works.

Every bad payload below carries a trap: a pickle that creates a file when it is loaded (the
first test shows the trap is live). A payload is rejected before unpickling if the file is
never created; it must then be in the dead-letter set with the reason, with the worker that
saw it still alive and serving.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from qcore import Codec, Signer, TaskMessage
from qredis import Producer, RedisResultStore
from tests.cluster.support import Bench, eventually
from tests.faults import tasks
from tests.faults.support import Effects

OTHER_SECRET = "another-application-secret-0123456789"
PADDING = "A" * 64


def _trap_message(trace: Path) -> TaskMessage:
    args = ("u", "k", "trap", (tasks.Trap(str(trace)), PADDING))
    return TaskMessage.new(tasks.takes_anything, args)


def _tampered(codec: Codec, trace: Path) -> tuple[str, bytes]:
    message = _trap_message(trace)
    payload = bytearray(codec.encode_message(message))
    at = payload.index(PADDING.encode())
    payload[at] ^= 0x01  # one flipped bit in the body: the trap itself is intact
    return message.id, bytes(payload)


def _other_key(codec: Codec, trace: Path) -> tuple[str, bytes]:
    message = _trap_message(trace)
    return message.id, Codec(Signer.from_secret(OTHER_SECRET)).encode_message(message)


def _unsigned(codec: Codec, trace: Path) -> tuple[str, bytes]:
    message = _trap_message(trace)
    return message.id, pickle.dumps(message.to_wire())


def _empty(codec: Codec, trace: Path) -> tuple[str, bytes]:
    return "e" * 32, b""


def _truncated(codec: Codec, trace: Path) -> tuple[str, bytes]:
    message = _trap_message(trace)
    return message.id, codec.encode_message(message)[:-33]  # the MAC cut off, and one byte more


def _truncated_header(codec: Codec, trace: Path) -> tuple[str, bytes]:
    message = _trap_message(trace)
    return message.id, codec.encode_message(message)[:20]


def _garbage(codec: Codec, trace: Path) -> tuple[str, bytes]:
    return "g" * 32, bytes(range(7, 256)) * 3


BAD = {
    "tampered": (_tampered, "BadSignature"),
    "other-key": (_other_key, "UnknownKey"),
    "unsigned-pickle": (_unsigned, "BadMagic"),
    "empty": (_empty, "GarbagePayload"),
    "truncated": (_truncated, "BadSignature"),
    "truncated-header": (_truncated_header, "TruncatedPayload"),
    "garbage": (_garbage, "BadMagic"),
}


def test_the_trap_is_live(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    pickle.loads(pickle.dumps(tasks.Trap(str(trace))))
    assert trace.read_text() == "unpickled!"


@pytest.mark.parametrize("kind", list(BAD))
def test_a_bad_payload_is_dead_lettered_unopened_and_the_worker_carries_on(
    bench: Bench, fx: Effects, tmp_path: Path, kind: str
) -> None:
    make, error = BAD[kind]
    trace = tmp_path / "trace"
    task_id, payload = make(bench.producer.codec, trace)
    assert payload != b"" or kind == "empty"
    bench.transport.enqueue(task_id, payload)
    after = bench.producer.enqueue(tasks.counted, *fx.args("after"), "ok")
    with bench.cluster(workers=1, start_method="fork"):
        assert bench.wait_all([after])[after].result == "ok"
        status = eventually(lambda: (s := bench.status()) and s["processed"] >= 1 and s)
    assert not trace.exists(), "the payload was unpickled"
    [letter] = bench.transport.dead_letters()
    assert letter.task_id == task_id
    assert letter.reason.startswith(f"{error}: "), letter.reason
    assert letter.payload == payload  # kept as it came, for inspection
    assert bench.store.get(task_id) is None
    assert status["replaced"] == 0 and status["lost"] == 0  # the worker was not harmed
    assert bench.transport.queue_size() == bench.transport.inflight_size() == 0


def test_key_rotation_old_key_runs_while_a_fallback_and_is_refused_once_dropped(
    bench: Bench, fx: Effects, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = "the-old-application-secret-0123456789", "the-new-application-secret-9876543210"
    old_codec = Codec(Signer.from_secret(old))

    def send(tag: str) -> str:
        message = TaskMessage.new(tasks.counted, (*fx.args(tag), tag))
        bench.transport.enqueue(message.id, old_codec.encode_message(message))
        return message.id

    # The cluster is configured the way an operator rotates: a new secret, the old as fallback.
    monkeypatch.setenv("Q_SECRET_KEY", new)
    monkeypatch.setenv("Q_SECRET_KEY_FALLBACKS", old)
    store = RedisResultStore(bench.url, namespace=bench.queue)  # reads what the cluster signs
    during = send("during")
    with bench.cluster(workers=1, start_method="fork", name="rotating"):
        record = store.wait(during, 20)
    store.close()
    assert record is not None and record.success and record.result == "during"

    monkeypatch.delenv("Q_SECRET_KEY_FALLBACKS")
    after = send("after")
    with bench.cluster(workers=1, start_method="fork", name="rotated"):
        [letter] = eventually(bench.transport.dead_letters, what="the dead letter")
    assert letter.task_id == after and letter.reason.startswith("UnknownKey: ")
    assert fx.counts() == {"during": 1}


def test_results_saved_before_a_key_rotation_stay_readable_while_the_old_key_is_a_fallback(
    bench: Bench, fx: Effects, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = "the-old-application-secret-0123456789", "the-new-application-secret-9876543210"
    monkeypatch.setenv("Q_SECRET_KEY", old)
    with Producer(bench.url, bench.queue, namespace=bench.queue) as producer:
        task_id = producer.enqueue(tasks.counted, *fx.args("before"), "saved with the old key")
        with bench.cluster(workers=1, start_method="fork"):
            assert producer.fetch(task_id, wait=20) is not None
    monkeypatch.setenv("Q_SECRET_KEY", new)
    monkeypatch.setenv("Q_SECRET_KEY_FALLBACKS", old)
    store = RedisResultStore(bench.url, namespace=bench.queue)
    try:
        record = store.get(task_id)
    finally:
        store.close()
    assert record is not None and record.result == "saved with the old key"
