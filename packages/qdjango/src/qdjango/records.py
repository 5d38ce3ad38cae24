"""A ``Task`` row and the record it holds: the conversions both ways, and the row's signature.

Each pickled column of a row is signed on its own (:mod:`qdjango.fields`), so no one without
the secret can put a value there; but a signed ``args`` blob copied from another row still
verifies, and ``func``, ``hook`` and ``group`` are plain text. So the store also signs each row
as a whole when it saves it: a detached HMAC (a key derived from ``SECRET_KEY`` for this
purpose alone; fallbacks accepted) over the id, func, hook and group and the stored bytes of
args, kwargs and options. Whatever sends a stored task again (the admin's retry and "run
again", and any later path that re-enqueues from the table) takes it from
:func:`verified_records`, which refuses a row whose signature is missing or does not match.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from qcore import (
    BadSignature,
    GarbagePayload,
    PayloadError,
    Signer,
    TaskOptions,
    TaskResult,
    UnknownKey,
    get_logger,
)
from qdjango.conf import on_change, record_codec

__all__ = [
    "ROW_PURPOSE",
    "Refused",
    "clip",
    "record_from_task",
    "row_signature",
    "sign_task",
    "task_from_record",
    "verified_records",
]

log = get_logger("qdjango.records")

ROW_PURPOSE = "qdjango.task-rows"
_signer: list[Signer] = []


@on_change
def _forget() -> None:
    _signer.clear()


def _row_signer() -> Signer:
    if not _signer:
        from django.conf import settings

        fallbacks = list(getattr(settings, "SECRET_KEY_FALLBACKS", []) or [])
        _signer.append(Signer.from_secret(settings.SECRET_KEY, fallbacks, purpose=ROW_PURPOSE))
    return _signer[0]


def clip(value: str | None, limit: int) -> str | None:
    """``value`` cut to a column's length (a too-long dotted path must not fail a batch)."""
    if value is None or len(value) <= limit:
        return value
    return value[: limit - 1] + "…"


_NONE = 0xFFFFFFFF
_LENGTHS = struct.Struct("!7I")


def _signed_bytes(fields: tuple[str | bytes | None, ...]) -> bytes:
    """The seven fields framed without ambiguity: their lengths (None apart from empty), then
    the fields themselves."""
    parts = [f.encode() if type(f) is str else (f or b"") for f in fields]  # type: ignore[union-attr]
    lengths = [_NONE if f is None else len(p) for f, p in zip(fields, parts)]
    return _LENGTHS.pack(*lengths) + b"".join(parts)


def row_signature(
    task_id: str,
    func: str,
    hook: str | None,
    group: str | None,
    args: bytes | None,
    kwargs: bytes | None,
    options: bytes | None,
) -> bytes:
    """The signature of a row with these values, as stored (the pickled columns' bytes)."""
    return _row_signer().tag(_signed_bytes((task_id, func, hook, group, args, kwargs, options)))


def sign_task(task: Any) -> None:
    """Set ``task.signature`` for what its fields hold (for rows saved through the ORM)."""
    pickled = [type(task)._meta.get_field(f) for f in ("args", "kwargs", "options")]
    blobs = [field.get_prep_value(getattr(task, field.attname)) for field in pickled]
    task.signature = row_signature(task.id, task.func, task.hook, task.group, *blobs)


def _moment(epoch: float) -> datetime:
    from django.conf import settings

    if settings.USE_TZ:
        return datetime.fromtimestamp(epoch, UTC)
    return datetime.fromtimestamp(epoch)


def _stored_options(value: Any) -> TaskOptions:
    # A value the store did not write (unreadable, say) reads as no options.
    return TaskOptions.from_stored(value if isinstance(value, dict) else None)


def record_from_task(task: Any) -> TaskResult:
    """The record a ``Task`` row holds (the reverse of :func:`task_from_record`). Not
    verified: for showing a row; to send its task again, see :func:`verified_records`."""
    return TaskResult(
        id=task.id,
        name=task.name,
        func=task.func,
        args=tuple(task.args or ()),
        kwargs=dict(task.kwargs or {}),
        result=task.result,
        success=task.success,
        started=task.started.timestamp(),
        stopped=task.stopped.timestamp(),
        attempt_count=task.attempt_count,
        hook=task.hook,
        group=task.group,
        cluster=task.cluster,
        options=_stored_options(task.options),
        run_time=task.run_time,
    )


def task_from_record(record: TaskResult, *, using: str | None = None, saved: bool = True) -> Any:
    """The ``Task`` a record becomes, built without a query (``saved``: it has a row).
    Unsigned: :func:`sign_task` signs it for a save through the ORM."""
    from qdjango.models import Task

    task = Task(
        id=record.id,
        name=clip(record.name, 100),
        func=clip(record.func, 256),
        hook=clip(record.hook, 256),
        args=record.args,
        kwargs=record.kwargs,
        result=record.result,
        group=clip(record.group, 100),
        started=_moment(record.started),
        stopped=_moment(record.stopped),
        success=record.success,
        attempt_count=record.attempt_count,
        cluster=clip(record.cluster, 100),
        options=record.options.to_mapping() or None,
        retried_from=clip(record.options.retried_from, 32),
        run_time=record.run_time,
    )
    if saved:
        task._state.adding = False
        task._state.db = using
    return task


class Refused(NamedTuple):
    """A row :func:`verified_records` will not vouch for, and why (for the admin's message)."""

    task_id: str
    name: str
    reason: str


_RAW = ("args", "kwargs", "options")


def verified_records(
    task_ids: Iterable[str], *, using: str | None = None
) -> tuple[list[TaskResult], list[Refused]]:
    """The records of these rows whose signature verifies (their task may be sent again), and
    the rows refused, with the reason. Only verified bytes are unpickled; ``result`` is left
    out (None): what runs again is the call, not its outcome."""
    from django.db.models import BinaryField, ExpressionWrapper, F

    from qdjango.models import Task

    # The pickled columns as stored: the signature covers their bytes, not their values.
    raw = {f"raw_{c}": ExpressionWrapper(F(c), output_field=BinaryField()) for c in _RAW}
    rows = (
        Task.objects.using(using)
        .filter(pk__in=list(task_ids))
        .annotate(**raw)
        .values_list(
            "id", "name", "func", "hook", "group", *raw, "signature", "success", "started",
            "stopped", "attempt_count", "cluster",
        )
    )  # fmt: skip
    signer, codec = _row_signer(), record_codec()
    records: list[TaskResult] = []
    refused: list[Refused] = []
    for task_id, name, func, hook, group, *rest in rows:
        blobs = [None if b is None else bytes(b) for b in rest[:3]]
        signature, success, started, stopped, attempts, cluster = rest[3:]
        reason = None
        try:
            signer.check_tag(_signed_bytes((task_id, func, hook, group, *blobs)), signature)
        except GarbagePayload:
            reason = "it has no signature (saved by an older Q, or imported)"
        except UnknownKey:
            reason = "it was signed with a key this site no longer has (SECRET_KEY_FALLBACKS)"
        except BadSignature:
            reason = "its func, hook, group, arguments or options were changed outside Q"
        if reason is None:
            try:
                args, kwargs, options = (None if b is None else codec.decode(b) for b in blobs)
            except PayloadError as exc:
                reason = f"its arguments cannot be read here: {exc}"
        if reason is None and func == "<unknown>":
            reason = "its task could not be read when it ran"
        if reason is not None:
            log.warning("record.refused", task_id=task_id, reason=reason)
            refused.append(Refused(task_id, name, reason))
            continue
        records.append(
            TaskResult(
                id=task_id, name=name, func=func, args=tuple(args or ()), kwargs=dict(kwargs or {}),
                result=None, success=success, started=started.timestamp(),
                stopped=stopped.timestamp(), attempt_count=attempts, hook=hook, group=group,
                cluster=cluster, options=_stored_options(options),
            )
        )  # fmt: skip
    return records, refused
