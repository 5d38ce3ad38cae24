"""Result notifications over Redis pub/sub: savers publish ids, waiters wake on them.

Used by :class:`~qredis.results.RedisResultStore` and by stores that keep records elsewhere
(qdjango's database store): they save, then :meth:`ResultNotifier.publish` the ids.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import redis

from qcore import get_logger
from qredis.connection import Connector, redis_errors
from qredis.keys import ResultKeys
from qredis.wire import HeldConnection, bulk

__all__ = ["ResultNotifier"]

T = TypeVar("T")

log = get_logger("qredis.notify")

# A waiter re-checks at least this often even without a notification: a message published
# while its pub/sub connection was being re-established would otherwise be missed.
_RECHECK = 5.0


class ResultNotifier:
    """Publishes "these tasks have records now" and waits for such a notice about one task.

    One channel per namespace (``{r:<namespace>}:done``); a message is the saved ids separated
    by spaces. Picklable (parameters only), like the transport.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        connection: redis.Redis | None = None,
        pool: redis.ConnectionPool | None = None,
        namespace: str = "default",
        **redis_kwargs: Any,
    ) -> None:
        self._keys = ResultKeys.for_namespace(namespace)
        self._conn = Connector(url, connection=connection, pool=pool, redis_kwargs=redis_kwargs)
        self._held: tuple[int, HeldConnection | None] | None = None

    @classmethod
    def _from_connector(cls, conn: Connector, namespace: str) -> ResultNotifier:
        self = cls.__new__(cls)
        self._keys = ResultKeys.for_namespace(namespace)
        self._conn = conn
        self._held = None
        return self

    def __getstate__(self) -> dict[str, Any]:
        return {"keys": self._keys, "conn": self._conn}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._keys, self._conn, self._held = state["keys"], state["conn"], None

    @property
    def channel(self) -> str:
        return self._keys.channel

    def publish(self, task_ids: Iterable[str]) -> int:
        """Announce that records for ``task_ids`` were saved: one PUBLISH for the batch.
        Returns how many waiters received it."""
        ids = [i for i in task_ids if i]
        if not ids:
            return 0
        message = " ".join(ids)
        with redis_errors(self._conn.display):
            # A saver publishes after every batch: on a held connection, the command framed
            # here (see qredis.wire; a PUBLISH re-sent after a lost reply is a second notice,
            # which waiters take as a re-check).
            held = self._held_connection()
            replies = None if held is None else held.call(self._publish_head + bulk(message), 1)
            if replies is None:  # a caller's client, or another thread holds the connection
                return int(self._conn.client.publish(self._keys.channel, message))
            if isinstance(replies[0], Exception):
                raise replies[0]
            return int(replies[0])

    def _held_connection(self) -> HeldConnection | None:
        held = self._held
        if held is None or held[0] != os.getpid():
            # Never on a caller's client or pool: a connection taken from it for good could be
            # the only one it has.
            client = self._conn.client
            cluster = isinstance(client, redis.RedisCluster)
            made = HeldConnection(client) if self._conn.owns_pool and not cluster else None
            self._held = held = (os.getpid(), made)
            self._publish_head = b"*3\r\n" + bulk("PUBLISH", self._keys.channel)
        return held[1]

    def wait_for(
        self,
        task_id: str,
        timeout: float | None,
        check: Callable[[], T | None],
        *,
        any_message: bool = False,
    ) -> T | None:
        """Wait until ``check()`` returns something, or ``timeout`` seconds pass.

        Subscribes first, then calls ``check()`` (so a save between the two is not missed),
        then re-checks each time a notice names ``task_id`` (or any notice, with
        ``any_message``: for waits on a name rather than an id). ``timeout`` None or negative:
        wait forever. The pub/sub connection is closed before returning.
        """
        found = check()
        if found is not None or timeout == 0:
            return found
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        with redis_errors(self._conn.display):
            pubsub = self._conn.client.pubsub()
            try:
                pubsub.subscribe(self._keys.channel)
                self._confirm(pubsub, deadline)
                while True:
                    found = check()
                    if found is not None:
                        return found
                    if deadline is not None and time.monotonic() >= deadline:
                        return None
                    if self._notified(pubsub, task_id, deadline, any_message):
                        continue
            finally:
                pubsub.close()

    @staticmethod
    def _confirm(pubsub: Any, deadline: float | None) -> None:
        """Wait for the SUBSCRIBE confirmation, so the subscription is live before check()."""
        while True:
            left = _RECHECK if deadline is None else max(0.0, deadline - time.monotonic())
            msg = pubsub.get_message(timeout=min(left, _RECHECK))
            if msg is not None and msg["type"] == "subscribe":
                return
            if deadline is not None and time.monotonic() >= deadline:
                return

    @staticmethod
    def _notified(pubsub: Any, task_id: str, deadline: float | None, any_message: bool) -> bool:
        """Block until a notice about ``task_id`` (True) or a re-check is due (False)."""
        slice_end = time.monotonic() + _RECHECK
        if deadline is not None:
            slice_end = min(slice_end, deadline)
        while True:
            left = slice_end - time.monotonic()
            if left <= 0:
                return False
            msg = pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            if msg is None or msg["type"] != "message":
                continue
            data = msg["data"]
            if any_message or task_id.encode() in data.split():
                return True

    def close(self) -> None:
        """Give back the connection pool this notifier opened."""
        held, self._held = self._held, None
        if held is not None and held[1] is not None and held[0] == os.getpid():
            held[1].release()
        self._conn.close()

    def __repr__(self) -> str:
        return f"ResultNotifier(namespace={self._keys.namespace!r}, url={self._conn.display!r})"
