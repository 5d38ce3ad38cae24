"""The delivery half of :class:`~qcore.testing.MemoryTransport`: enqueue, fetch, ack, retry,
dead letters, release to the head, heartbeats and the reaper, delayed tasks."""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Iterable
from typing import Any

from qcore.errors import ConfigError
from qcore.message import check_priority
from qcore.protocols import Delivery, Reaped
from qcore.testing.space import space_for

__all__ = ["MemoryDelivery"]

_CONSUMER_TTL = 60.0


class MemoryDelivery:
    """A queue's deliveries in this process's memory: the base of ``MemoryTransport``, which
    adds inspection, cancelling, chains and unique tasks. Its state is a
    :class:`~qcore.testing.space.Space`."""

    def __init__(
        self,
        queue: str = "default",
        *,
        space: str | None = None,
        max_attempts: int = 3,
        replay_window: float = 7 * 24 * 3600.0,
    ) -> None:
        if not isinstance(queue, str) or not queue:
            raise ConfigError(f"queue must be a non-empty string, not {queue!r}")
        if not isinstance(max_attempts, int) or max_attempts < 1:
            raise ConfigError(f"max_attempts must be a positive integer, not {max_attempts!r}")
        if isinstance(replay_window, bool) or not isinstance(replay_window, int | float):
            raise ConfigError(f"replay_window must be a number of seconds, not {replay_window!r}")
        if not replay_window >= 0:
            raise ConfigError(f"replay_window must be >= 0 seconds, not {replay_window!r}")
        self._queue = queue
        self.space = space if space is not None else uuid.uuid4().hex
        self.max_attempts = max_attempts
        self.replay_window = float(replay_window)
        self._s = space_for(self.space, queue)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "queue": self._queue,
            "space": self.space,
            "max_attempts": self.max_attempts,
            "replay_window": self.replay_window,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["queue"],
            space=state["space"],
            max_attempts=state["max_attempts"],
            replay_window=state.get("replay_window", 7 * 24 * 3600.0),
        )

    def __repr__(self) -> str:
        return f"MemoryTransport({self._queue!r}, space={self.space!r})"

    @property
    def queue(self) -> str:
        """The queue's name."""
        return self._queue

    # -- enqueue ----------------------------------------------------------------------------

    def enqueue(
        self,
        task_id: str,
        payload: bytes,
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> None:
        """Queue ``payload`` under ``task_id`` (or ``delay`` s ahead) at ``priority``; an id
        already held is left as it is."""
        s = self._s
        check_priority(priority)
        with s.cond:
            self._put(task_id, payload, delay, max_attempts, priority)
            s.cond.notify_all()

    def enqueue_many(
        self,
        items: Iterable[tuple[str, bytes]],
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> int:
        """Enqueue ``(task_id, payload)`` pairs; returns how many were given."""
        s = self._s
        check_priority(priority)
        count = 0
        with s.cond:
            for task_id, payload in items:
                self._put(task_id, payload, delay, max_attempts, priority)
                count += 1
            s.cond.notify_all()
        return count

    def enqueue_absent(
        self,
        items: Iterable[tuple[str, bytes]],
        *,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> list[bool]:
        """Enqueue each pair whose id is neither held (queued, delayed, in flight, dead) nor
        completed within ``replay_window``; True per task queued, False per task skipped."""
        s = self._s
        check_priority(priority)
        out: list[bool] = []
        with s.cond:
            now = time.monotonic()
            for task_id, payload in items:
                known = task_id in s.payloads or s.done.get(task_id, 0.0) > now
                if not known:
                    self._put(task_id, payload, delay, max_attempts, priority)
                out.append(not known)
            s.cond.notify_all()
        return out

    def _put(
        self, task_id: str, payload: bytes, delay: float, max_attempts: int | None, priority: int
    ) -> None:
        s = self._s
        if task_id in s.payloads:
            return
        s.payloads[task_id] = bytes(payload)
        if max_attempts is not None:
            s.limits[task_id] = max_attempts
        if priority:
            s.levels[task_id] = priority
        if delay > 0:
            s.delayed[task_id] = time.time() + delay
        else:
            s.level_list(s.ready, task_id).append(task_id)

    # -- fetch, ack, retry, dead letters ----------------------------------------------------

    def fetch(
        self,
        consumer: str,
        count: int = 1,
        timeout: float = 0.0,
        *,
        replayed: list[str] | None = None,
    ) -> list[Delivery]:
        """Claim up to ``count`` ready tasks for ``consumer``; block up to ``timeout`` s. A
        copy of a task acked within ``replay_window`` is dead-lettered as ``"replayed"``
        instead, its id appended to ``replayed``."""
        s = self._s
        deadline = time.monotonic() + timeout
        with s.cond:
            s.consumers.setdefault(consumer, time.monotonic() + _CONSUMER_TTL)
            while True:
                s.promote()
                if timeout <= 0 or s.has_ready():
                    got = self._claim(consumer, count, replayed)
                    if got or timeout <= 0:
                        return got
                    continue
                wait = deadline - time.monotonic()
                if wait <= 0:
                    return []
                if s.delayed:
                    wait = min(wait, max(0.0, min(s.delayed.values()) - time.time()))
                s.cond.wait(wait)

    def _claim(self, consumer: str, count: int, replayed: list[str] | None) -> list[Delivery]:
        s = self._s
        held = s.inflight.setdefault(consumer, [])
        out: list[Delivery] = []
        order = sorted({*s.due, *s.ready}, reverse=True)
        lists = [ids for level in order for ids in (s.due.get(level), s.ready.get(level)) if ids]
        now = time.monotonic()
        while lists and len(out) < count:
            if not lists[0]:
                lists.pop(0)
                continue
            task_id = lists[0].popleft()
            if s.done.get(task_id, 0.0) > now:
                if task_id not in s.dead:  # a worker loss's dead letter keeps its reason
                    s.bury(task_id, "replayed", 0)
                if replayed is not None:
                    replayed.append(task_id)
                continue
            s.seq += 1
            attempt = s.attempts.get(task_id, 0) + 1
            s.attempts[task_id] = attempt
            s.tokens[task_id] = s.seq
            held.append(task_id)
            limit = s.limits.get(task_id, self.max_attempts)
            payload = s.payloads[task_id]
            out.append(Delivery(task_id, payload, attempt, limit, s.seq, consumer, self._queue))
        return out

    def _current(self, delivery: Delivery) -> bool:
        s = self._s
        return s.tokens.get(delivery.task_id) == delivery.token and delivery.task_id in (
            s.inflight.get(delivery.consumer, ())
        )

    def _unclaim(self, delivery: Delivery) -> None:
        s = self._s
        s.inflight[delivery.consumer].remove(delivery.task_id)
        del s.tokens[delivery.task_id]

    def ack(self, deliveries: Iterable[Delivery]) -> list[bool]:
        """Forget finished tasks; False where the token is no longer current. The same batch
        sent again answers as the first call did (as the Redis transport's re-sends do)."""
        s = self._s
        batch = list(deliveries)
        if not batch:
            return []
        request = (batch[0].token, len(batch))
        out: list[bool] = []
        with s.cond:
            last = s.acks.get(batch[0].consumer)
            if last is not None and last[0] == request:
                return list(last[1])
            for delivery in batch:
                ok = self._current(delivery)
                if ok:
                    self._unclaim(delivery)
                    s.drop(delivery.task_id)
                    if self.replay_window > 0:
                        s.done[delivery.task_id] = time.monotonic() + self.replay_window
                out.append(ok)
            if len(s.done) > 10_000:  # trimmed as it goes, as the Redis transport's marks
                now = time.monotonic()
                s.done = {i: until for i, until in s.done.items() if until > now}
            s.acks[batch[0].consumer] = (request, tuple(out))
        return out

    def retry_later(self, delivery: Delivery, delay: float, payload: bytes | None = None) -> bool:
        """Put an in-flight task back, delivered again after ``delay`` s (with ``payload``
        in place of the stored one, and its delivery count started again)."""
        s = self._s
        with s.cond:
            if not self._current(delivery):
                return False
            self._unclaim(delivery)
            if payload is not None:
                s.payloads[delivery.task_id] = bytes(payload)
                s.attempts.pop(delivery.task_id, None)
            if delay > 0:
                s.delayed[delivery.task_id] = time.time() + delay
            else:
                s.level_list(s.ready, delivery.task_id).append(delivery.task_id)
            s.cond.notify_all()
            return True

    def dead_letter(self, delivery: Delivery, reason: str) -> bool:
        """Take an in-flight task out of circulation, keeping its payload and the reason."""
        s = self._s
        with s.cond:
            if not self._current(delivery):
                return False
            self._unclaim(delivery)
            s.bury(delivery.task_id, reason, s.attempts.pop(delivery.task_id, 0))
            return True

    # -- release, heartbeats, reaper --------------------------------------------------------

    def release(
        self, consumer: str, *, started: Collection[str] = (), reason: str | None = None
    ) -> Reaped:
        """Return ``consumer``'s in-flight tasks to the head of the queue, in their order."""
        if reason is None:
            reason = f"worker lost while running the task (consumer {consumer}): out of attempts"
        with self._s.cond:
            requeued, dead = self._requeue(consumer, set(started), reap=False, reason=reason)
        return Reaped(consumers=1, requeued=requeued, dead_lettered=dead)

    def _requeue(
        self, consumer: str, started: set[str], *, reap: bool, reason: str
    ) -> tuple[int, int]:
        s = self._s
        back: list[str] = []
        dead = 0
        s.acks.pop(consumer, None)
        for task_id in s.inflight.pop(consumer, []):
            del s.tokens[task_id]
            attempt = s.attempts.get(task_id, 0)
            ran = reap or task_id in started
            if not ran:
                attempt -= 1
                s.attempts[task_id] = attempt
            limit = s.limits.get(task_id, self.max_attempts)
            if ran and attempt >= limit:
                s.attempts.pop(task_id, None)
                s.bury(task_id, f"{reason} (attempt {attempt} of {limit})", attempt)
                s.unrecorded[task_id] = None
                if self.replay_window > 0:  # ended: its copies are replays, as an ack's
                    s.done[task_id] = time.monotonic() + self.replay_window
                dead += 1
            else:
                back.append(task_id)
        for task_id in reversed(back):
            s.level_list(s.due, task_id).appendleft(task_id)
        if back:
            s.cond.notify_all()
        return len(back), dead

    def heartbeat(self, consumers: Iterable[str], ttl: float) -> None:
        """Declare ``consumers`` alive for ``ttl`` more seconds."""
        if not ttl > 0:
            raise ConfigError(f"ttl must be a positive number of seconds, not {ttl!r}")
        deadline = time.monotonic() + ttl
        with self._s.cond:
            for consumer in consumers:
                self._s.consumers[consumer] = deadline

    def forget(self, consumers: Iterable[str]) -> None:
        """Deregister stopped consumers; one still holding tasks is marked expired instead."""
        s = self._s
        with s.cond:
            for consumer in consumers:
                if s.inflight.get(consumer):
                    s.consumers[consumer] = 0.0
                else:
                    s.consumers.pop(consumer, None)
                    s.inflight.pop(consumer, None)

    def reap(self) -> Reaped:
        """Move due delayed tasks to the queue; requeue the work of consumers gone silent."""
        s = self._s
        consumers = requeued = dead = 0
        with s.cond:
            s.promote()
            now = time.monotonic()
            for consumer in [c for c, deadline in s.consumers.items() if deadline <= now]:
                reason = (
                    f"consumer {consumer} stopped heartbeating while holding the task "
                    "(worker lost): out of attempts"
                )
                back, buried = self._requeue(consumer, set(), reap=True, reason=reason)
                del s.consumers[consumer]
                consumers += 1
                requeued += back
                dead += buried
        return Reaped(consumers=consumers, requeued=requeued, dead_lettered=dead)

    # -- delayed tasks ----------------------------------------------------------------------

    def make_due(self) -> int:
        """Make every delayed task ready now (a test's clock jump); returns how many."""
        with self._s.cond:
            moved = self._s.promote(everything=True)
            self._s.cond.notify_all()
        return moved

    def next_due(self) -> float | None:
        """Seconds until the next delayed task is due (0 if one is due now), or None."""
        with self._s.cond:
            if not self._s.delayed:
                return None
            return max(0.0, min(self._s.delayed.values()) - time.time())
