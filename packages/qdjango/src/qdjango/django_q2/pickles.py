"""django-q2's pickled columns, read without trusting them.

django-q2 signs what it puts in Redis, but its ``django_q_task`` columns ``args``, ``kwargs``
and ``result`` are django-picklefield values: base64 of a plain pickle, signed by nobody.
Unpickling one runs whatever its author wrote, and its author is anyone who could write to
that table. So these are never handed to ``pickle.loads``: :class:`_PlainUnpickler` lets a
pickle build only plain data (numbers, strings, bytes, lists, tuples, dicts, sets, dates and
times, decimals, UUIDs), and refuses any other global by name before it is imported, let alone
called. What it refuses is reported and left out of the import.
"""

from __future__ import annotations

import _compat_pickle
import base64
import binascii
import io
import pickle
import zlib
from typing import Any

from qcore import QError

__all__ = ["ALLOWED_GLOBALS", "MAX_SIZE", "BadValue", "UnsafeValue", "read_pickled"]

MAX_SIZE = 16 * 1024 * 1024
"""The largest pickle read (after decompression), in bytes."""

ALLOWED_GLOBALS = frozenset(
    {
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "bytearray"),
        ("builtins", "bytes"),
        ("builtins", "complex"),
        ("builtins", "slice"),
        ("builtins", "range"),
        # Protocol 2 and older pickle bytes as _codecs.encode(text, "latin1").
        ("_codecs", "encode"),
        ("collections", "OrderedDict"),
        ("datetime", "datetime"),
        ("datetime", "date"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("zoneinfo", "ZoneInfo._unpickle"),
        ("decimal", "Decimal"),
        ("fractions", "Fraction"),
        ("uuid", "UUID"),
        ("uuid", "SafeUUID"),
    }
)
"""The only globals a django-q2 pickle may name: constructors of plain values, none of which
runs code chosen by the pickle's author."""


class BadValue(QError):
    """A stored value is not a django-picklefield value at all (damaged or foreign)."""


class UnsafeValue(QError):
    """A stored value needs a global the import does not load (a class of the site, or worse)."""


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        # Protocols 0-2 may name Python 2's modules (__builtin__.set): their Python 3 names.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafeValue(f"the value needs {module}.{name}, which the import does not load")
        found = super().find_class(module, name)
        return _SIZED.get(found, found)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeValue("the value refers to a persistent object")


def _sized(kind: type) -> Any:
    """``bytes(n)`` and ``bytearray(n)`` allocate n bytes: a pickle may not ask for more than
    the size limit."""

    def make(*args: Any) -> Any:
        if args and isinstance(args[0], int) and args[0] > MAX_SIZE:
            raise BadValue(f"the value asks for {args[0]} bytes")
        return kind(*args)

    return make


_SIZED = {bytes: _sized(bytes), bytearray: _sized(bytearray)}


def _decompress(data: bytes) -> bytes:
    out = zlib.decompressobj()
    plain = out.decompress(data, MAX_SIZE + 1)
    if len(plain) > MAX_SIZE or out.unconsumed_tail:
        raise BadValue(f"the value is larger than {MAX_SIZE} bytes once decompressed")
    return plain


def read_pickled(text: str | bytes | memoryview) -> Any:
    """The value of a django-picklefield column, built from plain data only.

    Raises :class:`BadValue` when the text is not a pickle (as base64, optionally zlib'd) and
    :class:`UnsafeValue` when the pickle names anything outside :data:`ALLOWED_GLOBALS`.
    """
    raw = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadValue(f"not base64: {exc}") from None
    if data[:1] != b"\x80" and data[:1] == b"x":
        # django-picklefield's compress=True: zlib, whose header starts with 0x78.
        try:
            data = _decompress(data)
        except zlib.error as exc:
            raise BadValue(f"not a pickle and not zlib data: {exc}") from None
    if len(data) > MAX_SIZE:
        raise BadValue(f"the value is larger than {MAX_SIZE} bytes")
    try:
        return _PlainUnpickler(io.BytesIO(data)).load()
    except UnsafeValue:
        raise
    except Exception as exc:
        raise BadValue(f"not a readable pickle: {type(exc).__name__}: {exc}") from None
