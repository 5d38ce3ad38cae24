"""Pickling task messages and results with cloudpickle.

cloudpickle writes ordinary pickles, so lambdas, closures and local functions round-trip, and
anything importable (a dotted-path function, a model instance) is pickled by reference.
Loading uses the standard :func:`pickle.loads`; it is only ever called on verified bytes.
"""

from __future__ import annotations

import pickle
import zlib
from typing import Any, cast

import cloudpickle

from qcore.errors import PayloadTooLarge, SerializationError, UndecodablePayload

__all__ = ["PROTOCOL", "deflate", "dumps", "inflate", "loads"]

PROTOCOL = pickle.HIGHEST_PROTOCOL


_MAIN = b"__main__"


def dumps(obj: Any) -> bytes:
    """Pickle ``obj``; raise :class:`SerializationError` naming what could not be pickled.

    The C pickler is tried first: it is several times faster and, for anything importable,
    writes what cloudpickle would (a reference). cloudpickle takes over when the C pickler
    refuses (lambdas, closures, local functions) or when the pickle refers to ``__main__``,
    which names a different module in the worker, so such objects must go by value.
    """
    if not cloudpickle.list_registry_pickle_by_value():
        try:
            data = pickle.dumps(obj, PROTOCOL)
        except Exception:  # noqa: S110 - any refusal means "let cloudpickle try"
            pass
        else:
            if _MAIN not in data:
                return data
    try:
        return cast(bytes, cloudpickle.dumps(obj, protocol=PROTOCOL))
    except Exception as exc:
        raise SerializationError(
            f"cannot pickle {type(obj).__name__}: {type(exc).__name__}: {exc}"
        ) from exc


def loads(data: bytes) -> Any:
    """Unpickle verified bytes; raise :class:`UndecodablePayload` if this process cannot."""
    try:
        return pickle.loads(data)
    except Exception as exc:
        raise UndecodablePayload(
            f"the payload is signed but cannot be unpickled here: {type(exc).__name__}: {exc}"
        ) from exc


def deflate(data: bytes) -> bytes:
    """zlib at a fast level: payloads are compressed to save Redis memory, not disk."""
    return zlib.compress(data, 1)


def inflate(data: bytes, *, max_size: int) -> bytes:
    """Decompress, refusing to grow past ``max_size`` (no decompression bombs)."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, max_size + 1)
    except zlib.error as exc:
        raise UndecodablePayload(f"the payload is signed but not valid zlib data: {exc}") from exc
    if len(out) > max_size or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"the payload decompresses to more than {max_size} bytes")
    return out
