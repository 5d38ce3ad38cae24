"""Ids fixed before a bulk enqueue is sent, so the same batch can be sent again without any
task running twice (issue 11, item 11): ids the caller gives, checked, or ids derived from an
idempotency key and each call's position, as a schedule's firing derives its id from the
schedule and its due time (:func:`qcore.schedules.firing_id`)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from qcore.errors import ConfigError

__all__ = ["batch_ids", "fixed_ids"]

_HEX_ID = re.compile(r"[0-9a-f]{32}")


def batch_ids(idempotency_key: str, count: int) -> list[str]:
    """The task ids of a batch sent under ``idempotency_key``: 32 hex digits each, derived from
    the key and the call's position, the same on every host and every send."""
    if not isinstance(idempotency_key, str) or not idempotency_key:
        raise ConfigError(f"idempotency_key must be a non-empty string, not {idempotency_key!r}")
    prefix = f"q.batch:{idempotency_key}#"
    return [hashlib.sha256(f"{prefix}{n}".encode()).hexdigest()[:32] for n in range(count)]


def fixed_ids(
    count: int, task_ids: Sequence[str] | None, idempotency_key: str | None
) -> list[str] | None:
    """The ids a bulk enqueue of ``count`` calls was given (checked), or derived from its
    key; None when neither was passed (fresh ids)."""
    if task_ids is None:
        return None if idempotency_key is None else batch_ids(idempotency_key, count)
    if idempotency_key is not None:
        raise ConfigError("pass task_ids or idempotency_key, not both")
    if isinstance(task_ids, str) or not isinstance(task_ids, Sequence):
        raise ConfigError(f"task_ids must be a list of ids, one per call, not {task_ids!r}")
    if len(task_ids) != count:
        raise ConfigError(f"task_ids has {len(task_ids)} ids for {count} calls: give one per call")
    seen: dict[str, int] = {}
    for n, task_id in enumerate(task_ids):
        if not isinstance(task_id, str) or not _HEX_ID.fullmatch(task_id):
            raise ConfigError(
                f"task_ids[{n}] must be 32 lowercase hex digits (as qcore.new_id() makes), "
                f"not {task_id!r}"
            )
        if task_id in seen:
            raise ConfigError(
                f"task_ids[{n}] repeats task_ids[{seen[task_id]}] ({task_id}): each task of a "
                "batch needs its own id, or only one of them would run"
            )
        seen[task_id] = n
    return list(task_ids)
