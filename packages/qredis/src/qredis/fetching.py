"""Fetching: the claim of ready tasks in one script, and the blocking wait on the queue's
marker pipelined with it (part of :class:`~qredis.RedisTransport`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError

from qcore import Delivery, get_logger
from qredis.base import TransportBase, ms, positive_int
from qredis.wire import command

__all__ = ["Fetching"]

log = get_logger("qredis.transport")


class Fetching(TransportBase):
    """``fetch`` and the claim it makes (part of :class:`~qredis.RedisTransport`)."""

    def fetch(
        self,
        consumer: str,
        count: int = 1,
        timeout: float = 0.0,
        *,
        replayed: list[str] | None = None,
    ) -> list[Delivery]:
        """Move up to ``count`` ready tasks into ``consumer``'s in-flight list, atomically:
        the highest priority level first, and within a level its due tasks (delayed tasks
        whose time came, tasks given back) before the rest, each in order.

        A task acked within ``replay_window`` seconds is not delivered again: a copy of it
        pushed back is dead-lettered as ``replayed`` instead, and its id appended to
        ``replayed`` (logged as ``task.replayed`` when no list is given).

        Blocks up to ``timeout`` seconds for a first task (0: return at once), in Redis: on the
        queue's marker (``BZPOPMIN``), which every push of a ready task sets. The wake-up path
        is one round trip: the ``BZPOPMIN`` and the script that claims travel in one pipeline,
        and Redis runs the script as soon as the ``BZPOPMIN`` returns.
        """
        if not isinstance(consumer, str) or not consumer:
            raise TypeError(f"consumer must be a non-empty string, not {consumer!r}")
        positive_int("count", count)
        deliveries, next_due = self._grab(consumer, count, replayed)
        if deliveries or not timeout > 0:
            return deliveries
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            block = min(remaining, self._block_cap)
            if next_due is not None:
                block = min(block, next_due)
            deliveries, next_due = self._block_and_grab(consumer, count, block, (), replayed)
            if deliveries:
                return deliveries

    def _grab(
        self, consumer: str, count: int, replayed: list[str] | None = None
    ) -> tuple[list[Delivery], float | None]:
        """Claim what is ready now (one script call)."""
        _, scripts = self._ready()
        keys, args = self._fetch_call(consumer, count)
        with self._errors():
            res = scripts.fetch(keys, args)
        return self._deliveries(consumer, res, replayed)

    def _block_and_grab(
        self,
        consumer: str,
        count: int,
        block: float,
        markers: Sequence[str] = (),
        replayed: list[str] | None = None,
    ) -> tuple[list[Delivery], float | None]:
        """``BZPOPMIN`` of the marker then the claim, pipelined: one round trip from the
        wake-up.

        Not a transaction (a blocking command inside ``MULTI`` never blocks). The claim runs
        whether the wait ended on the marker or on its timeout (a delayed task may have come
        due); a pipeline re-sent after a lost reply pops a marker again (at worst one wake-up
        of another consumer is lost, and the next push or ``block_slice`` makes up for it) and
        its claim, with the same request id, answers the same tasks (see ``fetch.lua``).
        ``markers``: wait on these markers instead (several queues of one Redis, see
        :class:`~qredis.RedisQueues`); the claim is still this queue's.
        """
        client, scripts = self._ready()
        keys, args = self._fetch_call(consumer, count)
        # BZPOPMIN treats 0 as "forever": never ask for less than 10 ms.
        wait: tuple[str | float, ...] = (
            "BZPOPMIN",
            *(markers or (self._keys.marker,)),
            max(block, 0.01),
        )
        claim = ("EVALSHA", scripts.fetch.sha, len(keys), *keys, *args)
        with self._errors():
            held = self._held
            replies = None if held is None else held.call(command(*wait) + command(*claim), 2)
            if replies is None:  # a caller's client, or another thread holds the connection
                pipe = client.pipeline(transaction=False)
                pipe.execute_command(*wait)
                pipe.execute_command(*claim)
                replies = pipe.execute(raise_on_error=False)
            woke, res = replies
            if isinstance(woke, Exception):
                raise woke
            if isinstance(res, NoScriptError):
                res = scripts.fetch(keys, args)  # loads the script and runs the claim
            elif isinstance(res, Exception):
                raise res
        return self._deliveries(consumer, res, replayed)

    def _fetch_call(self, consumer: str, count: int) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        """KEYS and ARGV of ``fetch.lua``, with a fresh request id."""
        k = self._keys
        keys = (
            k.queue,
            k.due,
            k.inflight(consumer),
            k.msg,
            k.attempts,
            k.tokens,
            k.maxatt,
            k.seq,
            k.delayed,
            k.consumers,
            k.fetches,
            k.levels,
            k.prio,
            k.marker,
            k.done,
            k.dead,
            k.deadinfo,
        )
        args = (
            count,
            self.max_attempts,
            consumer,
            ms(self.consumer_ttl),
            f"{self._request_prefix}{next(self._requests)}",
        )
        return keys, args

    def _deliveries(
        self, consumer: str, res: list[Any], replayed: list[str] | None = None
    ) -> tuple[list[Delivery], float | None]:
        """Parse ``fetch.lua``'s reply: the deliveries, or the seconds until the next due."""
        dropped, dups, replays = res[1], res[2], res[3]
        for raw in res[4 : 4 + dropped]:
            log.error(
                "task.payload_missing",
                task_id=raw.decode(),
                queue=self.queue,
                consumer=consumer,
                detail="the id was queued but its payload is gone; the id was dropped",
            )
        for raw in res[4 + dropped : 4 + dropped + dups]:
            log.warning(
                "task.duplicate_dropped",
                task_id=raw.decode(),
                queue=self.queue,
                detail="enqueued again while live; the copy was dropped",
            )
        start = 4 + dropped + dups
        for raw in res[start : start + replays]:
            if replayed is not None:
                replayed.append(raw.decode())
            else:
                log.warning(
                    "task.replayed",
                    task_id=raw.decode(),
                    queue=self.queue,
                    consumer=consumer,
                    detail="a copy of a completed task was queued; dead-lettered, not run",
                )
        body = res[start + replays :]
        queue = self.queue
        if not body:
            return [], (None if res[0] < 0 else res[0] / 1000)
        return [
            Delivery(
                body[i].decode(),
                body[i + 1],
                int(body[i + 2]),
                int(body[i + 3]),
                int(body[i + 4]),
                consumer,
                queue,
            )
            for i in range(0, len(body), 5)
        ], None
