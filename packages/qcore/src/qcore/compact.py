"""A compact encoding of a task's record, for result stores that pay per byte (Redis).

The same fields as the record's wire tuple (:mod:`qcore.wire`), laid out for size: the id as
16 bytes, the times and counts as fixed-size numbers, the humanized name left out when it is
the one derived from the id, short strings with a one-byte length, and only what is left
(args, kwargs, result, hook, group, options) pickled. A no-op's record is about 120 bytes
instead of 170 (tools/bench, 'result memory'). It is signed like every payload; the codec
marks it with its own flag (``FLAG_COMPACT``), so a reader that does not know it refuses it
as a payload with unknown flags, never misreads it.

The pickled tail is ``(args, kwargs, result, hook, group[, options[, run_time]])``: as in wire
version 2.1 (:mod:`qcore.wire`), a record with a run time appends it (after ``options``, None
when there are none), and a reader takes the fields it knows and ignores the rest, so a record
with a run time reads in a Q written before it (without the run time) and a record without one
reads here (``run_time`` None).
"""

from __future__ import annotations

import struct
from typing import Any

from qcore.errors import UndecodablePayload
from qcore.message import TaskResult
from qcore.naming import humanize
from qcore.options import _NO_OPTIONS
from qcore.serialization import dumps, loads
from qcore.wire import MAJOR, MINOR, RUN_TIME_MINOR, _options_in, _options_out

__all__ = ["compact_body", "compact_record", "fits_compact", "record_from_compact"]

_VERSION = 1
_HEAD = struct.Struct(">BBddI16s")  # version, bits, started, stopped, attempt count, id
_SUCCESS = 0x01
_NAMED = 0x02  # the name is not the one derived from the id: it follows


def _id_bytes(task_id: str) -> bytes | None:
    """The 16 bytes of an id of 32 lowercase hex digits (a uuid's hex), else None."""
    if len(task_id) != 32:
        return None
    try:
        raw = bytes.fromhex(task_id)
    except ValueError:
        return None
    # fromhex also takes upper case and skips spaces: only the canonical form round-trips.
    return raw if len(raw) == 16 and raw.hex() == task_id else None


def _short(text: str) -> bool:
    """Whether ``text`` encodes to under 256 bytes (surely so under 64 characters)."""
    return len(text) < 64 or len(text.encode()) < 256


def _fits(record: TaskResult) -> bool:
    return (
        _short(record.name)
        and _short(record.func)
        and _short(record.cluster or "")
        and 0 <= record.attempt_count < 2**32
    )


def fits_compact(record: TaskResult) -> bool:
    """Whether the compact layout can carry ``record`` (a uuid-hex id, short strings)."""
    return _id_bytes(record.id) is not None and _fits(record)


def compact_record(record: TaskResult) -> bytes:
    """The record's compact body (check :func:`fits_compact` first)."""
    body = compact_body(record)
    if body is None:
        raise ValueError("the compact layout cannot carry this record (see fits_compact)")
    return body


def compact_body(record: TaskResult) -> bytes | None:
    """The record's compact body, or None when the layout cannot carry it: the checks of
    :func:`fits_compact` and the work of :func:`compact_record` in one pass, written out (a
    worker encodes every record: tools/bench/README.md, 'issue 13's cost')."""
    task_id, name, func, cluster = record.id, record.name, record.func, record.cluster or ""
    if len(task_id) != 32 or not 0 <= record.attempt_count < 2**32:
        return None
    try:
        raw_id = bytes.fromhex(task_id)
    except ValueError:
        return None
    if len(raw_id) != 16 or raw_id.hex() != task_id:
        return None  # fromhex also takes upper case and skips spaces
    raw_func, raw_cluster = func.encode(), cluster.encode()
    named = name != humanize(task_id)
    raw_name = name.encode() if named else b""
    if len(raw_func) > 255 or len(raw_cluster) > 255 or len(raw_name) > 255:
        return None
    head = _HEAD.pack(
        _VERSION,
        (_SUCCESS if record.success else 0) | (_NAMED if named else 0),
        record.started,
        record.stopped,
        record.attempt_count,
        raw_id,
    )
    options = record.options
    rest: tuple[Any, ...] = (record.args, record.kwargs, record.result, record.hook, record.group)
    opts = None if options is _NO_OPTIONS else _options_out(options)
    if record.run_time is not None:
        rest = (*rest, opts, record.run_time)
    elif opts is not None:
        rest = (*rest, opts)
    texts = (bytes((len(raw_func),)), raw_func, bytes((len(raw_cluster),)), raw_cluster)
    if named:
        return b"".join((head, bytes((len(raw_name),)), raw_name, *texts, dumps(rest)))
    return b"".join((head, *texts, dumps(rest)))


def record_from_compact(body: bytes) -> TaskResult:
    """The record from a compact body; raises UndecodablePayload for anything else."""
    try:
        version, bits, started, stopped, attempts, raw_id = _HEAD.unpack_from(body)
        if version != _VERSION:
            raise UndecodablePayload(f"compact record version {version} is not known here")
        task_id = raw_id.hex()
        pos = _HEAD.size
        texts = []
        for _ in range(3 if bits & _NAMED else 2):
            size = body[pos]
            texts.append(body[pos + 1 : pos + 1 + size].decode())
            pos += 1 + size
        rest: Any = loads(body[pos:])
    except (struct.error, IndexError, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise UndecodablePayload(f"the compact record cannot be read: {exc}") from exc
    name = texts.pop(0) if bits & _NAMED else humanize(task_id)
    func, cluster = texts
    if type(rest) is not tuple or len(rest) < 5:
        raise UndecodablePayload("the compact record's fields are not a tuple of five or six")
    args, kwargs, result, hook, group = rest[:5]
    options = _options_in(rest[5]) if len(rest) > 5 and rest[5] is not None else None
    extra: dict[str, Any] = {} if options is None else {"options": options}
    minor = MINOR
    if len(rest) > 6 and type(rest[6]) in (float, int):
        extra["run_time"] = float(rest[6])
        minor = RUN_TIME_MINOR
    return TaskResult(
        id=task_id,
        name=name,
        func=func,
        args=args,
        kwargs=kwargs,
        result=result,
        success=bool(bits & _SUCCESS),
        started=started,
        stopped=stopped,
        attempt_count=attempts,
        hook=hook,
        group=group,
        cluster=cluster or None,
        version=(MAJOR, minor),
        **extra,
    )
