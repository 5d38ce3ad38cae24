"""Signed payloads: every kind of rejection is its own error, raised before unpickling."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qcore import (
    BadMagic,
    BadSignature,
    Codec,
    ConfigError,
    GarbagePayload,
    PayloadError,
    PayloadTooLarge,
    QError,
    Signer,
    TaskMessage,
    TruncatedPayload,
    UnknownKey,
    UnsupportedVersion,
)
from qcore.signing import HEADER_SIZE, MAC_SIZE, OVERHEAD

KEY = "primary-key-0123456789abcdef-abcdefgh"
OLD = "old-key-0123456789abcdef-rotated"


@pytest.fixture
def codec() -> Codec:
    return Codec(Signer(KEY))


def test_round_trip(codec: Codec) -> None:
    assert codec.decode(codec.encode({"a": [1, 2, 3]})) == {"a": [1, 2, 3]}


@settings(max_examples=40, deadline=None)
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_flipping_any_single_bit_is_rejected(position: int, bit: int) -> None:
    codec = Codec(Signer(KEY))
    payload = bytearray(codec.encode(TaskMessage.new("math.copysign", (2, -2))))
    payload[position % len(payload)] ^= 1 << bit
    with pytest.raises(PayloadError):
        codec.decode(bytes(payload))


def test_every_byte_flipped_in_turn_is_rejected(codec: Codec) -> None:
    payload = codec.encode(TaskMessage.new("math.copysign", (2, -2)))
    for position in range(len(payload)):
        tampered = bytearray(payload)
        tampered[position] ^= 0xFF
        with pytest.raises(PayloadError):
            codec.decode(bytes(tampered))


def test_tampered_body_is_a_bad_signature(codec: Codec) -> None:
    payload = bytearray(codec.encode("hello"))
    payload[HEADER_SIZE + 2] ^= 0x01
    with pytest.raises(BadSignature):
        codec.decode(bytes(payload))


def test_payload_signed_with_another_key_is_rejected(codec: Codec) -> None:
    other = Codec(Signer("someone-elses-key-0123456789-abcdefgh"))
    with pytest.raises(UnknownKey):
        codec.decode(other.encode("x"))


def test_fallback_key_is_accepted_and_dropped_key_is_not() -> None:
    old = Codec(Signer(OLD))
    rotated = Codec(Signer(KEY, fallbacks=[OLD]))
    assert rotated.decode(old.encode(42)) == 42
    dropped = Codec(Signer(KEY))
    with pytest.raises(UnknownKey):
        dropped.decode(old.encode(42))


def test_forged_mac_with_a_known_key_id_is_rejected(codec: Codec) -> None:
    payload = codec.encode("x")
    forged = payload[:-MAC_SIZE] + bytes(MAC_SIZE)
    with pytest.raises(BadSignature):
        codec.decode(forged)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", GarbagePayload),
        ("not bytes", GarbagePayload),
        (b"Q", TruncatedPayload),
        (b"Q\xa7\x01\x00abcd", TruncatedPayload),
        (pickle.dumps({"unsigned": True}), BadMagic),
        (os.urandom(200).replace(b"Q", b"R"), BadMagic),
        (b"Q\xa7\x09\x00" + bytes(4) + b"body" + bytes(32), UnsupportedVersion),
    ],
)
def test_each_rejection_has_its_own_error(codec: Codec, data: object, error: type) -> None:
    with pytest.raises(error) as info:
        codec.decode(data)  # type: ignore[arg-type]
    assert isinstance(info.value, PayloadError)
    assert isinstance(info.value, QError)
    assert str(info.value)


def test_truncated_signed_payload_is_rejected(codec: Codec) -> None:
    payload = codec.encode(list(range(100)))
    for cut in (1, 10, OVERHEAD - 1):
        with pytest.raises(TruncatedPayload):
            codec.decode(payload[:cut])
    with pytest.raises(BadSignature):
        codec.decode(payload[:-5])


class _Exploit:
    """A pickle whose loading would create a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


def test_malicious_pickle_is_never_unpickled(codec: Codec, tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    raw = pickle.dumps(_Exploit(target))
    # unsigned, signed by another key, and signed-then-tampered: none may run the pickle
    attempts = [
        raw,
        Codec(Signer("attacker-key-0123456789abcdef-abcdefgh")).signer.sign(raw),
        bytearray(codec.signer.sign(raw)),
    ]
    attempts[2][-1] ^= 1
    for data in attempts:
        with pytest.raises(PayloadError):
            codec.decode(bytes(data))
    assert not target.exists()
    # control: the same pickle, properly signed, does run (so the test can fail)
    codec.decode(codec.signer.sign(raw)).close()
    assert target.exists()


def test_oversized_payload_refused_before_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = Codec(Signer(KEY), max_size=1024 * 1024)
    big = b"x" * (50 * 1024 * 1024)

    def no_hashing(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("hashed an oversized payload")

    monkeypatch.setattr("qcore.signing.hmac.digest", no_hashing)
    with pytest.raises(PayloadTooLarge, match="over the limit"):
        codec.decode(big)


def test_oversized_object_refused_at_encode() -> None:
    codec = Codec(Signer(KEY), max_size=1024 * 1024)
    with pytest.raises(PayloadTooLarge, match="by reference"):
        codec.encode(TaskMessage.new("len", (b"x" * (2 * 1024 * 1024),)))


def test_compression_is_flagged_and_transparent() -> None:
    codec = Codec(Signer(KEY), compress_threshold=1024)
    value = "abc" * 10_000
    payload = codec.encode(value)
    assert len(payload) < 2000
    assert payload[3] & 0x01
    assert codec.decode(payload) == value


def test_decompression_bomb_is_refused() -> None:
    small = Codec(Signer(KEY), max_size=64 * 1024, compress_threshold=1024)
    big = Codec(Signer(KEY), max_size=64 * 1024 * 1024, compress_threshold=1024)
    bomb = big.encode(b"\0" * (10 * 1024 * 1024))
    assert len(bomb) < 64 * 1024
    with pytest.raises(PayloadTooLarge):
        small.decode(bomb)


def test_short_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="shorter than the 32"):
        Signer("short")
    with pytest.raises(ConfigError):
        Signer("")


def test_signer_and_codec_pickle_with_their_keys() -> None:
    codec = Codec(Signer(KEY, fallbacks=[OLD]), max_size=10_000, compress_threshold=None)
    clone = pickle.loads(pickle.dumps(codec))
    assert clone.max_size == 10_000 and clone.compress_threshold is None
    assert clone.decode(Codec(Signer(OLD)).encode(1)) == 1
    assert clone.signer.key_ids == codec.signer.key_ids


def test_derived_keys_differ_by_purpose_and_secret() -> None:
    a = Signer.from_secret("django-secret-key-value-123456-abcdefgh")
    b = Signer.from_secret("django-secret-key-value-123456-abcdefgh", purpose="results")
    c = Signer.from_secret("another-secret-key-value-123456-abcdefgh")
    assert len({a.key_ids[0], b.key_ids[0], c.key_ids[0]}) == 3


@settings(max_examples=100, deadline=None)
@given(key=st.binary(min_size=16, max_size=200), message=st.binary(max_size=2000))
def test_precomputed_hmac_equals_the_standard_library(key: bytes, message: bytes) -> None:
    import hmac

    from qcore.signing import _Hmac

    assert _Hmac(key).digest(message) == hmac.digest(key, message, "sha256")
    assert _Hmac(key).digest(memoryview(message)) == hmac.digest(key, message, "sha256")


def test_detached_tags_verify_with_the_primary_or_a_fallback_key_and_nothing_else() -> None:
    from qcore.signing import TAG_SIZE

    old, new = Signer(b"o" * 32), Signer(b"n" * 32, [b"o" * 32])
    tag = old.tag(b"row data")
    assert len(tag) == TAG_SIZE
    old.check_tag(b"row data", tag)
    new.check_tag(b"row data", tag)  # the old key is a fallback
    new.check_tag(b"row data", new.tag(b"row data"))
    with pytest.raises(BadSignature):
        new.check_tag(b"row datA", tag)
    with pytest.raises(UnknownKey):
        Signer(b"x" * 32).check_tag(b"row data", tag)
    for bad in (None, b"", tag[:-1], memoryview(tag + b"!")):
        with pytest.raises(GarbagePayload):
            new.check_tag(b"row data", bad)
