"""KeyWatch: a producer says so, once, when no live cluster of its queue accepts its key.

A producer whose signing secret differs from its clusters' (a typo in ``Q_SECRET_KEY``, a
rotation that dropped the old key too early) queues tasks that every worker dead-letters as
``UnknownKey``: nothing fails where the mistake was made. Clusters publish the ids of the keys
they accept with their status (``key_ids``: the 4-byte ids every signed payload carries in its
header, never a key); a producer compares its primary key's id with them.

Cheap by construction: the check runs after the first enqueue and then at most every
``every`` seconds (one read of the status board), never on the other enqueues; it never
raises (a status board that cannot be read is not the enqueue's problem), and it warns once
per key and watch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from qcore import Codec, StatusBoard, get_logger

__all__ = ["KEY_CHECK_EVERY", "KeyWatch", "served_queues"]

log = get_logger("qredis.keywatch")

KEY_CHECK_EVERY = 60.0
"""Seconds between a producer's checks of the clusters' keys."""


def served_queues(status: Mapping[str, Any]) -> list[str]:
    """The queues a cluster's status says it serves (``"a"``, ``"a,b"`` or ``"a=3,b=1"``)."""
    names = (q.partition("=")[0].strip() for q in str(status.get("queue") or "").split(","))
    return [name for name in names if name]


class KeyWatch:
    """Warns once (``producer.key_not_accepted``) when the live clusters of ``queue`` on
    ``board`` all publish the keys they accept and none accepts the producer's. Clusters of a
    Q that published no keys leave the question open: no warning. ``every`` <= 0: never
    checks. An asyncio producer passes no board and reads the statuses itself
    (:meth:`acheck`)."""

    def __init__(
        self, board: StatusBoard | None, queue: str, every: float = KEY_CHECK_EVERY
    ) -> None:
        self.board = board
        self.queue = queue
        self.every = every
        self._next = 0.0
        self._warned: set[bytes] = set()
        self._lock = threading.Lock()

    def check(self, codec: Codec, queue: str | None = None) -> None:
        """Check ``codec``'s key against the live clusters of ``queue`` (default: the
        watch's), if the last check is ``every`` seconds old."""
        key_id = self._due(codec)
        if key_id is None:
            return
        try:
            assert self.board is not None, "a watch without a board is checked with acheck"
            self._check(key_id, queue or self.queue, self.board.clusters())
        except Exception as exc:  # never the enqueue's problem
            log.debug("producer.key_check_failed", error_type=type(exc).__name__)
        finally:
            self._lock.release()

    async def acheck(
        self,
        codec: Codec,
        clusters: Callable[[], Awaitable[list[dict[str, Any]]]],
        queue: str | None = None,
    ) -> None:
        """:meth:`check` for an asyncio producer: ``clusters()`` reads the live clusters'
        statuses (:func:`qredis.status.live_clusters` on its ``redis.asyncio`` client)."""
        key_id = self._due(codec)
        if key_id is None:
            return
        try:
            self._check(key_id, queue or self.queue, await clusters())
        except Exception as exc:  # never the enqueue's problem
            log.debug("producer.key_check_failed", error_type=type(exc).__name__)
        finally:
            self._lock.release()

    def _due(self, codec: Codec) -> bytes | None:
        """The key id to check now (holding the lock, for the caller to release), or None."""
        if self.every <= 0 or time.monotonic() < self._next:
            return None
        if not self._lock.acquire(blocking=False):
            return None  # another thread (or coroutine) is checking
        try:
            self._next = time.monotonic() + self.every
            key_id = codec.signer.key_ids[0]
        except Exception as exc:
            self._lock.release()
            log.debug("producer.key_check_failed", error_type=type(exc).__name__)
            return None
        if key_id in self._warned:
            self._lock.release()
            return None
        return key_id

    def _check(self, key_id: bytes, queue: str, statuses: Iterable[Mapping[str, Any]]) -> None:
        clusters = [c for c in statuses if queue in served_queues(c)]
        if not clusters or any(not c.get("key_ids") for c in clusters):
            return
        accepted = _accepted(clusters)
        if key_id.hex() in accepted:
            return
        self._warned.add(key_id)
        log.warning(
            "producer.key_not_accepted",
            queue=queue,
            key_id=key_id.hex(),
            accepted=sorted(accepted),
            clusters=sorted(str(c.get("cluster_id")) for c in clusters),
            hint="no live cluster of this queue accepts this producer's signing key: its tasks "
            "are dead-lettered as UnknownKey; give the producer the clusters' secret "
            "(Q_SECRET_KEY, Django's SECRET_KEY) or add its secret as a fallback",
        )


def _accepted(clusters: Iterable[Mapping[str, Any]]) -> set[str]:
    return {str(kid) for c in clusters for kid in c.get("key_ids") or ()}
