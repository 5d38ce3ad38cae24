"""Idempotent bulk enqueue (part of :class:`~qredis.RedisTransport`): ``enqueue_absent.lua``
queues, chunk by chunk, each task whose id Q does not know yet, so a caller that crashed or got
an error sends the same batch (the same ids) again and no task runs twice. ``mark_done.lua``
marks ids known on a shard other than the one holding their task (see :mod:`qredis.shards`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from qcore import check_priority
from qredis.base import TransportBase, chunks, ms, positive_int

__all__ = ["IdempotentEnqueue"]

_NUL = "\0"


class IdempotentEnqueue(TransportBase):
    """``enqueue_absent`` and ``mark_done``."""

    if TYPE_CHECKING:  # RedisTransport's: the script call then WAIT (wait_replicas)

        def _write_waited(
            self, client: Any, script: Any, keys: tuple[str, ...], args: tuple[Any, ...] | list[Any]
        ) -> Any: ...

    def enqueue_absent(
        self,
        items: Iterable[tuple[str, bytes]],
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> list[bool]:
        """Enqueue each ``(task_id, payload)`` whose id is not queued, delayed, in flight or
        dead-lettered, nor completed within ``replay_window``; True per task queued now, False
        per task skipped.

        One script per chunk of ``chunk_size`` (each chunk atomic, and safe to send again after
        a lost reply: what it queued is known then). Slower than :meth:`enqueue_many`'s inline
        path (each payload goes through Lua), which is the price of looking each id up. A copy
        sent through :meth:`enqueue_many` and still waiting in the queue unclaimed is not seen
        here; it is dropped when claimed if its twin is live, refused as a replay once its twin
        completed (never two runs).
        """
        limit = "" if max_attempts is None else positive_int("max_attempts", max_attempts)
        level = check_priority(priority) if priority or type(priority) is not int else 0
        client, scripts = self._ready()
        keys = (*self._enqueue_keys_at(level), self._keys.done)
        out: list[bool] = []
        batch = list(items)
        for task_id, payload in batch:  # all checked before anything is sent
            _check(task_id, payload)
        with self._errors():
            for chunk in chunks(batch, self.chunk_size):
                args: list[Any] = [ms(delay) if delay > 0 else 0, limit, level]
                for task_id, payload in chunk:
                    args += (task_id, payload)
                if self.wait_replicas:
                    res = self._write_waited(client, scripts.enqueue_absent, keys, args)
                else:
                    res = scripts.enqueue_absent(keys, args)
                out += [bool(x) for x in res]
        return out

    def mark_done(self, task_ids: Iterable[str]) -> None:
        """Mark ``task_ids`` done here for ``replay_window`` (a mark already later is kept), as
        an ack marks the tasks it acks: a copy of one enqueued here is then refused by the
        fetch as a replay, and skipped by :meth:`enqueue_absent`. For a sharded queue, whose
        chains' links, unique tasks and schedules' firings live on another shard than the
        one their id hashes to (see :class:`~qredis.ShardedQueue`)."""
        ids = list(task_ids)
        if not ids or self.replay_window <= 0:
            return
        _, scripts = self._ready()
        with self._errors():
            for chunk in chunks(ids, self.chunk_size):
                scripts.mark_done((self._keys.done,), (ms(self.replay_window), *chunk))


def _check(task_id: object, payload: object) -> None:
    if not isinstance(task_id, str) or not task_id or _NUL in task_id:
        raise TypeError(f"task ids must be non-empty strings without NUL, not {task_id!r}")
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise TypeError(
            f"enqueue_absent takes (task_id: str, payload: bytes) pairs, not {payload!r}"
        )
