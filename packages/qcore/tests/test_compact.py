"""The compact record layout (qcore.compact): the same record back, smaller, signed."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qcore import (
    BadSignature,
    Codec,
    Signer,
    TaskMessage,
    TaskOptions,
    TaskResult,
    UndecodablePayload,
)
from qcore.signing import FLAG_COMPACT

CODEC = Codec(Signer("compact-tests-key-0123456789abcdef"))


def _record(**changes: object) -> TaskResult:
    message = TaskMessage.new("tools.bench.peers.tasks.common.add", (1, 2))
    rec = TaskResult.from_message(message, result=3, success=True, cluster="bench-0123456789")
    return replace(rec, **changes) if changes else rec  # type: ignore[arg-type]


def test_a_no_op_record_is_a_quarter_smaller_and_reads_back_equal() -> None:
    rec = _record()
    compact, full = CODEC.encode_compact(rec), CODEC.encode(rec)
    assert len(compact) <= 0.8 * len(full)
    assert CODEC.decode_result(compact) == rec


@given(
    success=st.booleans(),
    name=st.one_of(st.none(), st.text(max_size=40)),
    result=st.one_of(st.integers(), st.text(), st.none(), st.binary()),
    attempts=st.integers(min_value=0, max_value=2**32 - 1),
    cluster=st.one_of(st.none(), st.text(min_size=1, max_size=30)),
    hook=st.one_of(st.none(), st.just("mod.hook")),
    group=st.one_of(st.none(), st.text(max_size=10)),
    started=st.floats(allow_nan=False),
)
def test_every_field_survives(
    success: bool,
    name: str | None,
    result: object,
    attempts: int,
    cluster: str | None,
    hook: str | None,
    group: str | None,
    started: float,
) -> None:
    rec = _record(
        success=success,
        result=result,
        attempt_count=attempts,
        cluster=cluster,
        hook=hook,
        group=group,
        started=started,
        **({} if name is None else {"name": name}),
    )
    assert CODEC.decode_result(CODEC.encode_compact(rec)) == rec


def test_options_and_an_explicit_name_survive() -> None:
    options = TaskOptions(timeout=5, save=True)
    message = TaskMessage.new("m.f", (), {"x": 1}, name="nightly", options=options)
    rec = TaskResult.from_message(message, result=None, success=False)
    assert CODEC.decode_result(CODEC.encode_compact(rec)) == rec


def test_what_the_layout_cannot_carry_is_encoded_as_before() -> None:
    rec = _record(id="not-a-hex-id", func="f" * 300)
    data = CODEC.encode_compact(rec)
    assert data == CODEC.encode(rec) and CODEC.decode_result(data) == rec
    pinned = Codec(CODEC.signer, write_version=1)
    assert not CODEC.signer.verify(pinned.encode_compact(_record()), max_size=1 << 20)[0] & (
        FLAG_COMPACT
    )


def test_a_tampered_compact_record_is_refused_before_it_is_read() -> None:
    data = bytearray(CODEC.encode_compact(_record()))
    data[20] ^= 1
    with pytest.raises(BadSignature):
        CODEC.decode_result(bytes(data))


def test_a_signed_compact_payload_that_is_not_a_record_is_refused() -> None:
    data = CODEC.signer.sign(b"\x09garbage", FLAG_COMPACT)
    with pytest.raises(UndecodablePayload):
        CODEC.decode(data)


def test_a_run_time_travels_and_a_reader_before_it_ignores_it() -> None:
    from qcore.compact import _HEAD
    from qcore.serialization import loads

    options = TaskOptions(timeout=5)
    for rec in (_record(run_time=0.00042), _record(run_time=2.5, options=options)):
        data = CODEC.encode_compact(rec)
        read = CODEC.decode_result(data)
        assert read.run_time == rec.run_time and read.version == (2, 1)
        assert replace(read, version=rec.version) == rec
        # The pickled tail: a reader written before run times takes its first six fields
        # (options None when there are none) and ignores the seventh.
        _, body = CODEC.signer.verify(data, max_size=1 << 20)
        at = _HEAD.size
        for _ in range(2):  # func and cluster (the name is the derived one: not stored)
            at += 1 + body[at]
        tail = loads(body[at:])
        assert len(tail) == 7 and tail[6] == rec.run_time
    without = _record()
    assert CODEC.decode_result(CODEC.encode_compact(without)).run_time is None
    assert (
        len(CODEC.encode_compact(_record(run_time=0.1))) <= len(CODEC.encode_compact(without)) + 12
    )  # a run time costs a pickled float and a None
