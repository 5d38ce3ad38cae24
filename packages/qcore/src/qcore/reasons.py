"""Kinds of dead-letter reasons, so operators see dead letters counted by what went wrong.

A dead letter's reason is free text that names ids and key ids (``UnknownKey: the payload was
signed with key id 1a2b3c4d, ...``); counting by the whole text would give one row per task.
Its *kind* is the error's name the text starts with (``UnknownKey``, ``BadSignature``,
``WorkerLost``, ``TimeoutError``, ``UnsupportedVersion``); the reaper's and a release's texts
("... stopped heartbeating ... (worker lost)", "worker lost while ...") are ``WorkerLost``; a
copy of a completed task refused by the fetch is ``replayed`` (its whole reason).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["DEAD_REASONS_LIMIT", "OTHER_REASON", "count_reasons", "reason_kind"]

DEAD_REASONS_LIMIT = 1000
"""How many of the newest dead letters a count by reason reads by default: a page that
refreshes every few seconds must not read 100,000 of them each time."""

OTHER_REASON = "other"
REPLAYED = "replayed"
_NAMED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):")


def reason_kind(reason: str) -> str:
    """The kind of a dead letter's ``reason`` (see the module's docstring)."""
    if reason == REPLAYED:
        return REPLAYED
    named = _NAMED.match(reason)
    if named is not None:
        return named.group(1)
    if "worker lost" in reason:
        return "WorkerLost"
    return OTHER_REASON


def count_reasons(reasons: Iterable[str]) -> dict[str, int]:
    """How many of ``reasons`` are of each kind, the most frequent first (ties by name)."""
    counts: dict[str, int] = {}
    for reason in reasons:
        kind = reason_kind(reason)
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
