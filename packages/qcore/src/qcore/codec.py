"""Objects to signed bytes and back: pickle, maybe compress, sign; verify, inflate, unpickle."""

from __future__ import annotations

from typing import Any

from qcore.compact import compact_body, record_from_compact
from qcore.errors import ConfigError, PayloadTooLarge, UndecodablePayload
from qcore.message import TaskMessage, TaskResult
from qcore.serialization import deflate, dumps, inflate, loads
from qcore.signing import (
    FLAG_COMPACT,
    FLAG_COMPRESSED,
    FLAG_MESSAGE,
    FLAG_RESULT,
    KNOWN_FLAGS,
    OVERHEAD,
    Signer,
)
from qcore.wire import (
    MAJOR,
    WRITES,
    message_from_wire,
    message_to_wire,
    message_to_wire_v1,
    result_from_wire,
    result_to_wire,
    result_to_wire_v1,
)

__all__ = ["DEFAULT_COMPRESS_THRESHOLD", "DEFAULT_MAX_SIZE", "Codec"]

DEFAULT_MAX_SIZE = 16 * 1024 * 1024
DEFAULT_COMPRESS_THRESHOLD = 64 * 1024


class Codec:
    """Encodes and decodes signed payloads with one signer and one set of limits.

    ``max_size`` bounds a payload's pickled size, before compression, so a payload is
    accepted or refused the same way whether or not it compresses well.
    ``compress_threshold`` is the pickled size from which zlib is tried (None: never).
    ``write_version`` is the wire's major version this codec writes (default: the current one;
    it reads every version in :data:`qcore.wire.READS` whatever it writes). Pin it to the
    previous major version while producers are upgraded before the clusters that read their
    messages, or clusters before the producers that read their results; remove the pin once
    every process runs this Q.
    A codec is picklable, so it travels to worker processes under any start method.
    """

    __slots__ = ("_write_message", "_write_result", "compress_threshold", "max_size", "signer")

    def __init__(
        self,
        signer: Signer,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        compress_threshold: int | None = DEFAULT_COMPRESS_THRESHOLD,
        write_version: int | None = None,
    ) -> None:
        if max_size <= OVERHEAD:
            raise ConfigError(f"max_size must be more than {OVERHEAD} bytes")
        if write_version is not None and write_version not in WRITES:
            raise ConfigError(
                f"write_version must be one of {', '.join(map(str, WRITES))}, not {write_version!r}"
            )
        self.signer = signer
        self.max_size = max_size
        self.compress_threshold = compress_threshold
        pinned = write_version == 1 and MAJOR != 1
        self._write_message = message_to_wire_v1 if pinned else message_to_wire
        self._write_result = result_to_wire_v1 if pinned else result_to_wire

    @property
    def write_version(self) -> int:
        """The wire's major version this codec writes."""
        return 1 if self._write_message is message_to_wire_v1 else MAJOR

    def encode(self, obj: Any) -> bytes:
        """Pickle, compress if large, sign. Raises PayloadTooLarge or SerializationError."""
        flags = 0
        kind = type(obj)
        if kind is TaskMessage:
            obj, flags = self._write_message(obj), FLAG_MESSAGE
        elif kind is TaskResult:
            obj, flags = self._write_result(obj), FLAG_RESULT
        return self._sign(dumps(obj), flags, type(obj).__name__)

    def encode_compact(self, record: TaskResult) -> bytes:
        """Sign a record in its compact layout (about a quarter smaller, for stores that pay per
        byte), or as :meth:`encode` does when the layout cannot carry it or this codec is
        pinned to wire version 1 (whose readers know no compact records)."""
        body = None if self.write_version == 1 else compact_body(record)
        if body is None:
            return self.encode(record)
        return self._sign(body, FLAG_RESULT | FLAG_COMPACT, "TaskResult")

    def _sign(self, body: bytes, flags: int, what: str) -> bytes:
        if len(body) + OVERHEAD > self.max_size:
            raise PayloadTooLarge(
                f"the {what} pickles to {len(body)} bytes, over the limit of "
                f"{self.max_size} bytes; pass large data by reference (a path, a key, a "
                "database id) instead of by value"
            )
        if self.compress_threshold is not None and len(body) >= self.compress_threshold:
            packed = deflate(body)
            if len(packed) < len(body):
                body, flags = packed, flags | FLAG_COMPRESSED
        return self.signer.sign(body, flags)

    def decode(self, data: bytes) -> Any:
        """Verify and unpickle; raises a PayloadError subclass for anything not ours."""
        flags, body = self.signer.verify(data, max_size=self.max_size)
        if flags & ~KNOWN_FLAGS:
            raise UndecodablePayload(f"the payload has unknown flags {flags:#04x}")
        if flags & FLAG_COMPRESSED:
            body = inflate(body, max_size=self.max_size)
        if flags & FLAG_COMPACT:
            if not flags & FLAG_RESULT:
                raise UndecodablePayload("a compact payload that is not a task result")
            return record_from_compact(body)
        obj = loads(body)
        if flags & FLAG_MESSAGE:
            return message_from_wire(obj)
        if flags & FLAG_RESULT:
            return result_from_wire(obj)
        return obj

    def encode_message(self, message: TaskMessage) -> bytes:
        """Sign a task message."""
        return self.encode(message)

    def decode_message(self, data: bytes) -> TaskMessage:
        """Verify and load a task message; anything else in a valid envelope is rejected."""
        obj = self.decode(data)
        if type(obj) is not TaskMessage:
            raise UndecodablePayload(f"expected a TaskMessage, found a {type(obj).__name__}")
        return obj

    def decode_result(self, data: bytes) -> TaskResult:
        """Verify and load a result record."""
        obj = self.decode(data)
        if type(obj) is not TaskResult:
            raise UndecodablePayload(f"expected a TaskResult, found a {type(obj).__name__}")
        return obj

    def __getstate__(self) -> tuple[Signer, int, int | None, int]:
        return self.signer, self.max_size, self.compress_threshold, self.write_version

    def __setstate__(self, state: tuple[Signer, int, int | None, int]) -> None:
        signer, max_size, threshold, version = state
        Codec.__init__(
            self, signer, max_size=max_size, compress_threshold=threshold, write_version=version
        )
