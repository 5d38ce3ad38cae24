"""HMAC-SHA256 signing of payloads, with key rotation.

A signed payload is laid out as::

    offset  size  field
    0       2     magic  b"Q\\xa7"
    2       1     format version (1)
    3       1     flags  (bit 0: zlib-compressed; bit 1: a TaskMessage; bit 2: a TaskResult)
    4       4     key id (first 4 bytes of SHA-256 over the key, so verification picks the key)
    8       n     body   (a pickle, possibly compressed)
    8+n     32    HMAC-SHA256(key, bytes 0 .. 8+n)

Verification checks, in this order and before anything is decompressed or unpickled: the size
limit, the length, the magic, the version, the key id, then the MAC with a constant-time
compare. Each failure raises its own :class:`~qcore.errors.PayloadError`.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterable

from qcore.errors import (
    BadMagic,
    BadSignature,
    ConfigError,
    GarbagePayload,
    PayloadTooLarge,
    TruncatedPayload,
    UnknownKey,
    UnsupportedVersion,
)

__all__ = [
    "FLAG_COMPACT",
    "FLAG_COMPRESSED",
    "FLAG_MESSAGE",
    "FLAG_RESULT",
    "HEADER_SIZE",
    "KNOWN_FLAGS",
    "MAC_SIZE",
    "MAGIC",
    "MIN_SECRET_BYTES",
    "OVERHEAD",
    "SIGNING_VERSION",
    "TAG_SIZE",
    "Signer",
    "check_secret",
    "derive_key",
    "key_id",
]

MAGIC = b"Q\xa7"
SIGNING_VERSION = 1
FLAG_COMPRESSED = 0x01
FLAG_MESSAGE = 0x02
FLAG_RESULT = 0x04
FLAG_COMPACT = 0x08
"""With FLAG_RESULT: the record in its compact layout (:mod:`qcore.compact`)."""
KNOWN_FLAGS = FLAG_COMPRESSED | FLAG_MESSAGE | FLAG_RESULT | FLAG_COMPACT
_HEADER = struct.Struct("!2sBB4s")
HEADER_SIZE = _HEADER.size
MAC_SIZE = 32
OVERHEAD = HEADER_SIZE + MAC_SIZE
TAG_SIZE = 4 + MAC_SIZE
"""A detached tag (:meth:`Signer.tag`): the key id, then the HMAC."""

KeyLike = bytes | str


def _as_bytes(key: KeyLike) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def key_id(key: KeyLike) -> bytes:
    """The 4-byte id written in the header of payloads signed with ``key``."""
    return hashlib.sha256(b"qcore.key-id:" + _as_bytes(key)).digest()[:4]


MIN_SECRET_BYTES = 32
"""The shortest signing secret (or key) accepted: shorter ones can be guessed offline from one
signed payload, and a guessed secret lets anyone who can write to Redis run code."""


def check_secret(secret: KeyLike | None, *, what: str = "signing secret") -> bytes:
    """``secret`` as bytes, or a ConfigError when it is shorter than :data:`MIN_SECRET_BYTES`."""
    raw = _as_bytes(secret) if secret else b""
    if len(raw) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"the {what} is {len(raw)} bytes, shorter than the {MIN_SECRET_BYTES} Q accepts: "
            "set Q_SECRET_KEY (or Django's SECRET_KEY) to a long random string, e.g. the "
            "output of python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    return raw


def derive_key(secret: KeyLike, purpose: str = "tasks") -> bytes:
    """A signing key derived from an application secret for one purpose.

    Keeps task signatures separate from anything else the same secret signs (Django sessions,
    password resets): knowing a task MAC tells nothing about those, nor the reverse.
    """
    check_secret(secret)
    return hmac.digest(_as_bytes(secret), b"qcore.signing-key:" + purpose.encode(), "sha256")


class _Hmac:
    """HMAC-SHA256 (RFC 2104) for one key, with the keyed inner and outer states precomputed.

    Equal to ``hmac.digest(key, msg, "sha256")`` (a test checks it), but it skips the per-call
    key set-up, which costs more than hashing a small payload (see tools/bench/README.md,
    'precomputed HMAC').
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def digest(self, message: bytes | memoryview) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class Signer:
    """Signs with one primary key; verifies with the primary key or any fallback key."""

    __slots__ = ("_keys", "_macs", "_primary", "_primary_id")

    def __init__(self, key: KeyLike, fallbacks: Iterable[KeyLike] = ()) -> None:
        primary = check_secret(key, what="signing key")
        self._primary = primary
        self._primary_id = key_id(primary)
        self._keys: dict[bytes, bytes] = {self._primary_id: primary}
        for fallback in fallbacks:
            if fallback:
                raw = check_secret(fallback, what="fallback signing key")
                self._keys.setdefault(key_id(raw), raw)
        self._macs = {kid: _Hmac(raw) for kid, raw in self._keys.items()}

    @classmethod
    def from_secret(
        cls, secret: KeyLike, fallbacks: Iterable[KeyLike] = (), *, purpose: str = "tasks"
    ) -> Signer:
        """A signer whose keys are derived (see :func:`derive_key`) from application secrets."""
        return cls(
            derive_key(secret, purpose),
            [
                derive_key(check_secret(f, what="fallback signing secret"), purpose)
                for f in fallbacks
                if f
            ],
        )

    @property
    def key_ids(self) -> tuple[bytes, ...]:
        """Ids of every key this signer accepts, the primary key's first."""
        return tuple(self._keys)

    def sign(self, body: bytes, flags: int = 0) -> bytes:
        """``body`` framed with a header and an HMAC trailer."""
        signed = _HEADER.pack(MAGIC, SIGNING_VERSION, flags, self._primary_id) + body
        return signed + self._macs[self._primary_id].digest(signed)

    def verify(self, data: bytes, *, max_size: int) -> tuple[int, bytes]:
        """Check ``data`` and return ``(flags, body)``; raise a PayloadError if it is not ours."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise GarbagePayload(f"a payload must be bytes, not {type(data).__name__}")
        size = len(data)
        if size > max_size:
            raise PayloadTooLarge(f"payload of {size} bytes is over the limit of {max_size} bytes")
        if size == 0:
            raise GarbagePayload("the payload is empty")
        if size < OVERHEAD:
            if bytes(data[:2]) != MAGIC[:size]:
                raise BadMagic("the payload does not start with Q's magic bytes: not signed by Q")
            raise TruncatedPayload(
                f"the payload is {size} bytes, shorter than the {OVERHEAD}-byte signed frame"
            )
        magic, version, flags, kid = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise BadMagic("the payload does not start with Q's magic bytes: not signed by Q")
        if version != SIGNING_VERSION:
            raise UnsupportedVersion(
                f"payload format version {version} is not supported (this Q reads version "
                f"{SIGNING_VERSION})"
            )
        mac = self._macs.get(kid)
        if mac is None:
            raise UnknownKey(
                f"the payload was signed with key id {kid.hex()}, which is neither the current "
                "key nor a fallback key"
            )
        view = memoryview(data)
        expected = mac.digest(view[:-MAC_SIZE])
        if not hmac.compare_digest(expected, view[-MAC_SIZE:]):
            raise BadSignature("the payload's signature does not match: tampered with or forged")
        return flags, bytes(view[HEADER_SIZE:-MAC_SIZE])

    def tag(self, data: bytes) -> bytes:
        """A detached signature of ``data`` (:data:`TAG_SIZE` bytes: key id, then HMAC), for
        data kept apart from its signature, such as a database row's columns."""
        return self._primary_id + self._macs[self._primary_id].digest(data)

    def check_tag(self, data: bytes, tag: bytes | bytearray | memoryview | None) -> None:
        """Raise a PayloadError unless ``tag`` is :meth:`tag` of ``data`` with the primary key
        or a fallback key (``GarbagePayload`` for no tag, ``UnknownKey``, ``BadSignature``)."""
        if tag is None or len(tag) != TAG_SIZE:
            raise GarbagePayload(f"a signature is {TAG_SIZE} bytes, not {tag!r:.40}")
        tag = bytes(tag)
        mac = self._macs.get(tag[:4])
        if mac is None:
            raise UnknownKey(
                f"signed with key id {tag[:4].hex()}, which is neither the current key nor a "
                "fallback key"
            )
        if not hmac.compare_digest(mac.digest(data), tag[4:]):
            raise BadSignature("the signature does not match: the data was changed")

    def __getstate__(self) -> tuple[bytes, list[bytes]]:
        return self._primary, [k for i, k in self._keys.items() if i != self._primary_id]

    def __setstate__(self, state: tuple[bytes, list[bytes]]) -> None:
        Signer.__init__(self, state[0], state[1])

    def __repr__(self) -> str:
        return f"Signer(key_id={self._primary_id.hex()}, fallbacks={len(self._keys) - 1})"
