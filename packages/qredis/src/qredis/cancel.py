"""Cancel and terminate (part of :class:`~qredis.RedisTransport`): ``cancel.lua`` swaps a task
that has not run for its cancelled twin; a running one's termination is noted for its
cluster's sentinel, which asks for the noted ids of the tasks its workers run."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Collection

from qcore import TaskRunning, UnknownTask
from qredis.base import TransportBase

__all__ = ["Cancelling"]

_TRIES = 5
"""Looks at a task whose payload changes between the look and the swap (it was claimed)."""
_KEEP_TERMINATIONS_MS = 3_600_000
"""A termination asked for a task that ended first is forgotten after an hour."""


class Cancelling(TransportBase):
    """``cancel`` and ``terminations`` (part of :class:`~qredis.RedisTransport`)."""

    def cancel(
        self, task_id: str, twin: Callable[[bytes], bytes], *, terminate: bool = False
    ) -> str:
        """Cancel ``task_id``: ``"queued"`` or ``"delayed"`` when it had not run (its payload is
        now ``twin(payload)``, due at once), ``"terminating"`` when it is held by a worker and
        ``terminate`` asked for its worker to be killed.

        Raises :class:`~qcore.TaskRunning` for a held task without ``terminate``, and
        :class:`~qcore.UnknownTask` when no such task is queued, delayed or held.
        """
        if not isinstance(task_id, str) or not task_id:
            raise UnknownTask(f"a task id is a non-empty string, not {task_id!r}")
        _, scripts = self._ready()
        k = self._keys
        keys = (k.queue, k.msg, k.delayed, k.tokens, k.dead, k.maxatt, k.cancel)
        flag = "1" if terminate else "0"
        for _ in range(_TRIES):
            with self._errors():
                found = scripts.cancel(keys, (task_id, "look", "", "", flag))
            state = found[0].decode()
            if state in ("delayed", "queued"):
                payload = bytes(found[1])
                new = twin(payload)
                digest = hashlib.sha1(payload, usedforsecurity=False).hexdigest()
                with self._errors():
                    done = scripts.cancel(keys, (task_id, "swap", digest, new, flag))
                state = done[0].decode()
                if state == "changed":
                    continue
            return _outcome(task_id, state)
        raise UnknownTask(f"task {task_id!r} kept changing while it was being cancelled")

    def terminations(self, task_ids: Collection[str]) -> set[str]:
        """Which of ``task_ids`` (held by a cluster's workers) are to be terminated."""
        if not task_ids:
            return set()
        client, _ = self._ready()
        ids = list(task_ids)
        cutoff = int(time.time() * 1000) - _KEEP_TERMINATIONS_MS
        with self._errors():
            pipe = client.pipeline(transaction=False)
            pipe.zremrangebyscore(self._keys.cancel, "-inf", cutoff)
            pipe.zmscore(self._keys.cancel, ids)
            _, scores = pipe.execute()
        return {task_id for task_id, score in zip(ids, scores) if score is not None}


def _outcome(task_id: str, state: str) -> str:
    if state in ("delayed", "queued", "terminating"):
        return state
    if state == "claimed":
        raise TaskRunning(
            f"task {task_id!r} is running; pass terminate=True to kill its worker and cancel it"
        )
    if state == "dead":
        raise UnknownTask(
            f"task {task_id!r} is dead-lettered: requeue or purge it (it is not queued)"
        )
    raise UnknownTask(f"no task {task_id!r} is queued, delayed or running")
