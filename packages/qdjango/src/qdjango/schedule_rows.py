"""The signature of a ``Schedule`` row: what it runs may only come from Q's own saves.

A schedule row is turned into signed tasks by the clusters, so a row written straight into the
table by someone who can write the database (not hold the secret) must not run. Each save
through the ORM signs what the row runs: a detached HMAC (a key derived from ``SECRET_KEY``
for this purpose alone; fallbacks accepted) over name, func, hook, args, kwargs, type, minutes,
cron, cluster and intended_date_kwarg. The mirror into Redis, and the reconciliation when a
cluster starts, take only rows whose signature verifies. ``next_run``, ``repeats`` and
``task`` are left out: the clusters write them back, and changing them changes when a
schedule runs, not what it runs.
"""

from __future__ import annotations

import struct
from typing import Any

from qcore import PayloadError, Signer
from qdjango.conf import on_change

__all__ = ["SCHEDULE_ROW_PURPOSE", "check_schedule", "sign_schedule"]

SCHEDULE_ROW_PURPOSE = "qdjango.schedule-rows"
SIGNED = (
    "name",
    "func",
    "hook",
    "args",
    "kwargs",
    "schedule_type",
    "minutes",
    "cron",
    "cluster",
    "intended_date_kwarg",
)
_NONE = 0xFFFFFFFF
_signer: list[Signer] = []


@on_change
def _forget() -> None:
    _signer.clear()


def _row_signer() -> Signer:
    if not _signer:
        from django.conf import settings

        fallbacks = list(getattr(settings, "SECRET_KEY_FALLBACKS", []) or [])
        _signer.append(
            Signer.from_secret(settings.SECRET_KEY, fallbacks, purpose=SCHEDULE_ROW_PURPOSE)
        )
    return _signer[0]


def _signed_bytes(row: Any) -> bytes:
    """The signed fields framed without ambiguity: their lengths (None apart from empty)."""
    values = [getattr(row, name) for name in SIGNED]
    parts = [b"" if v is None else str(v).encode() for v in values]
    lengths = [_NONE if v is None else len(p) for v, p in zip(values, parts, strict=True)]
    return struct.pack(f"!{len(SIGNED)}I", *lengths) + b"".join(parts)


def sign_schedule(row: Any) -> None:
    """Set ``row.signature`` for what the row runs now."""
    row.signature = _row_signer().tag(_signed_bytes(row))


def check_schedule(row: Any) -> str | None:
    """None when the row's signature verifies; otherwise why not."""
    try:
        _row_signer().check_tag(_signed_bytes(row), row.signature)
    except PayloadError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
