"""Unique tasks: ``q_options={"unique": True | "<key>", "unique_for": seconds}``.

While a task of the same key is queued, delayed or running, enqueueing another returns the
first one's id and queues nothing. The key is ``func`` and the arguments (``unique=True``) or
a name of the caller's (``unique="<key>"``). The transport keeps a lock per key naming the
task that holds it, and a task holds it while it is live in the transport: the step that acks
it (its record saved) releases it in effect, and a task whose cluster died holds it until the
reaper has handed it to another worker and it ended there. ``unique_for`` bounds how long the
lock lasts (default: a day past the task's due time).
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

from qcore.errors import ConfigError, SerializationError
from qcore.resolve import dotted_path
from qcore.serialization import dumps

__all__ = ["DEFAULT_LOCK_TTL", "lock_name", "lock_ttl"]

DEFAULT_LOCK_TTL = 86_400.0
"""Seconds a lock lasts past its task's due time when ``unique_for`` is not given."""


def lock_name(func: Any, args: Sequence[Any], kwargs: Mapping[str, Any], unique: Any) -> str:
    """The lock's name for a call: ``"k:<key>"`` for a key of the caller's, else ``"f:"`` and a
    digest of the function's path and the arguments."""
    if isinstance(unique, str):
        if not unique or len(unique) > 200:
            raise ConfigError(f"unique must be True or a key of 1 to 200 characters: {unique!r}")
        return f"k:{unique}"
    if unique is not True:
        raise ConfigError(f"unique must be True, False or a key (a string), not {unique!r}")
    call = (dotted_path(func), tuple(args), sorted(dict(kwargs).items()))
    try:
        data = pickle.dumps(call, protocol=5)
    except Exception:
        try:
            data = dumps(call)
        except SerializationError as exc:
            raise ConfigError(f"unique=True needs arguments that pickle: {exc}") from None
    return "f:" + hashlib.sha256(data).hexdigest()


def lock_ttl(unique_for: float | None, delay: float) -> float:
    """How long the lock lasts: ``unique_for``, else a day past the task's due time."""
    return float(unique_for) if unique_for is not None else delay + DEFAULT_LOCK_TTL
