"""An in-memory transport: the Redis transport's semantics in one process, for tests.

Same contract as ``qredis.RedisTransport`` (the suite in :mod:`qcore.testing.contract` runs
against both): at-least-once delivery, fencing tokens, priorities (a due list and a ready list
per level, as in Redis), release to the head, heartbeats and the reaper, delayed tasks and
dead letters. Its state lives in this process, in a space named at
construction: a pickled copy landing in the same process shares it (as a Redis transport's
copy shares the server), a copy in another process starts empty. So a cluster's worker
processes cannot consume it: run what it holds with ``qcluster.join()`` instead.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qcore.chains import ChainState
from qcore.errors import ConfigError, TaskRunning, UnknownTask
from qcore.message import check_priority
from qcore.protocols import DeadLetter, Delivery, InFlight, Reaped
from qcore.reasons import DEAD_REASONS_LIMIT, count_reasons

__all__ = ["MemoryTransport"]

_CONSUMER_TTL = 60.0


@dataclass
class _Dead:
    failed_at: float
    reason: str
    attempts: int


@dataclass
class _Chain:
    """A chain's links not queued yet (index -> (id, payload, limit)) and where it is."""

    length: int
    stop: bool
    links: dict[int, tuple[str, bytes, int | None]]
    done: int = 0
    state: str = "running"
    stopped_at: int | None = None
    acked: set[int] = field(default_factory=set)


@dataclass
class _Space:
    """One queue's state. Every field is read and written under ``cond``'s lock."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    payloads: dict[str, bytes] = field(default_factory=dict)
    # level -> ids, the left end the head: due delayed tasks and tasks given back, then the rest
    due: dict[int, deque[str]] = field(default_factory=dict)
    ready: dict[int, deque[str]] = field(default_factory=dict)
    levels: dict[str, int] = field(default_factory=dict)  # id -> priority, when not 0
    inflight: dict[str, list[str]] = field(default_factory=dict)  # consumer -> ids, in order
    attempts: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)  # present only while claimed
    limits: dict[str, int] = field(default_factory=dict)
    delayed: dict[str, float] = field(default_factory=dict)  # id -> due (epoch seconds)
    dead: dict[str, _Dead] = field(default_factory=dict)
    consumers: dict[str, float] = field(default_factory=dict)  # -> deadline (monotonic)
    unrecorded: dict[str, None] = field(default_factory=dict)  # dead letters owed a record
    acks: dict[str, Any] = field(default_factory=dict)  # consumer -> its last ack and answer
    terminate: set[str] = field(default_factory=set)  # running tasks to be terminated
    chains: dict[str, _Chain] = field(default_factory=dict)
    iters: dict[str, dict[int, bytes]] = field(default_factory=dict)
    locks: dict[str, tuple[str, float]] = field(default_factory=dict)  # -> (id, expiry)
    done: dict[str, float] = field(default_factory=dict)  # acked id -> until (monotonic)
    seq: int = 0


_spaces: dict[tuple[str, str], _Space] = {}
_spaces_lock = threading.Lock()


def _space(name: str, queue: str) -> _Space:
    with _spaces_lock:
        return _spaces.setdefault((name, queue), _Space())


class MemoryTransport:
    """A :class:`qcore.Transport` in this process's memory.

    ``space`` names the state: two transports with the same space and queue share it (the
    default is a new space, private to this object and its copies). ``max_attempts`` and
    ``replay_window`` as for the Redis transport. :meth:`make_due` runs delayed tasks now, for
    tests that do not wait.
    """

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
        self._s = _space(self.space, queue)

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
            self._list(s.ready, task_id).append(task_id)

    def _list(self, lists: dict[int, deque[str]], task_id: str) -> deque[str]:
        """The list of ``task_id``'s level in ``lists`` (due or ready)."""
        level = self._s.levels.get(task_id, 0)
        found = lists.get(level)
        if found is None:
            found = lists[level] = deque()
        return found

    def _has_ready(self) -> bool:
        s = self._s
        return any(s.due.values()) or any(s.ready.values())

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
                self._promote()
                if timeout <= 0 or self._has_ready():
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
                    self._bury(task_id, "replayed", 0)
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
                    self._drop(delivery.task_id)
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
                self._list(s.ready, delivery.task_id).append(delivery.task_id)
            s.cond.notify_all()
            return True

    def dead_letter(self, delivery: Delivery, reason: str) -> bool:
        """Take an in-flight task out of circulation, keeping its payload and the reason."""
        s = self._s
        with s.cond:
            if not self._current(delivery):
                return False
            self._unclaim(delivery)
            self._bury(delivery.task_id, reason, s.attempts.pop(delivery.task_id, 0))
            return True

    def _bury(self, task_id: str, reason: str, attempts: int) -> None:
        self._s.dead[task_id] = _Dead(time.time(), reason, attempts)

    def _drop(self, task_id: str) -> None:
        s = self._s
        for table in (s.payloads, s.attempts, s.limits, s.levels):
            table.pop(task_id, None)

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
                self._bury(task_id, f"{reason} (attempt {attempt} of {limit})", attempt)
                s.unrecorded[task_id] = None
                if self.replay_window > 0:  # ended: its copies are replays, as an ack's
                    s.done[task_id] = time.monotonic() + self.replay_window
                dead += 1
            else:
                back.append(task_id)
        for task_id in reversed(back):
            self._list(s.due, task_id).appendleft(task_id)
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
            self._promote()
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

    def _promote(self, everything: bool = False) -> int:
        s = self._s
        if not s.delayed:
            return 0
        now = time.time()
        due = sorted((at, i) for i, at in s.delayed.items() if everything or at <= now)
        for _, task_id in due:
            del s.delayed[task_id]
            self._list(s.due, task_id).append(task_id)
        return len(due)

    def make_due(self) -> int:
        """Make every delayed task ready now (a test's clock jump); returns how many."""
        with self._s.cond:
            moved = self._promote(everything=True)
            self._s.cond.notify_all()
        return moved

    def next_due(self) -> float | None:
        """Seconds until the next delayed task is due (0 if one is due now), or None."""
        with self._s.cond:
            if not self._s.delayed:
                return None
            return max(0.0, min(self._s.delayed.values()) - time.time())

    # -- inspection -------------------------------------------------------------------------

    def payload(self, task_id: str) -> bytes | None:
        """The stored payload of a claimed, delayed or dead task, or None."""
        with self._s.cond:
            return self._s.payloads.get(task_id)

    def queue_size(self) -> int:
        """Tasks ready to run, on every priority level."""
        s = self._s
        with s.cond:
            return sum(len(ids) for ids in (*s.due.values(), *s.ready.values()))

    def inflight_size(self) -> int:
        """Tasks handed to consumers and not acked."""
        with self._s.cond:
            return sum(len(ids) for ids in self._s.inflight.values())

    def delayed_size(self) -> int:
        """Tasks waiting for their time."""
        with self._s.cond:
            return len(self._s.delayed)

    def inflight(self, limit: int = 100) -> list[InFlight]:
        """Some in-flight tasks, for status pages."""
        s = self._s
        with s.cond:
            held = [(c, i) for c, ids in s.inflight.items() for i in ids][: max(0, limit)]
            return [InFlight(i, c, s.attempts.get(i, 0)) for c, i in held]

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The most recent dead letters first, with their payloads."""
        s = self._s
        with s.cond:
            newest = sorted(s.dead.items(), key=lambda kv: kv[1].failed_at, reverse=True)
            return [
                DeadLetter(i, d.reason, d.failed_at, d.attempts, s.payloads.get(i))
                for i, d in newest[: max(0, limit)]
            ]

    def unrecorded(self, limit: int = 100) -> list[DeadLetter]:
        """Dead letters a worker loss made whose Failure record is not saved yet, oldest
        first (one requeued or purged meanwhile is no longer owed a record)."""
        s = self._s
        with s.cond:
            for task_id in [i for i in s.unrecorded if i not in s.dead]:
                del s.unrecorded[task_id]
            return [
                DeadLetter(
                    i, s.dead[i].reason, s.dead[i].failed_at, s.dead[i].attempts, s.payloads.get(i)
                )
                for i in list(s.unrecorded)[: max(0, limit)]
            ]

    def recorded(self, task_ids: Iterable[str]) -> None:
        """The Failure records of these dead letters are saved: no longer owed."""
        with self._s.cond:
            for task_id in task_ids:
                self._s.unrecorded.pop(task_id, None)

    def dead_size(self) -> int:
        """How many tasks are dead-lettered."""
        with self._s.cond:
            return len(self._s.dead)

    def dead_reasons(self, limit: int = DEAD_REASONS_LIMIT) -> dict[str, int]:
        """The newest ``limit`` dead letters counted by the kind of their reason."""
        return count_reasons(letter.reason for letter in self.dead_letters(limit))

    def requeue_dead(self, task_ids: Iterable[str] | None = None) -> int:
        """Queue dead letters again with a fresh attempt count (all of them when None)."""
        s = self._s
        with s.cond:
            ids = list(s.dead) if task_ids is None else [i for i in task_ids if i in s.dead]
            for task_id in ids:
                if s.dead.pop(task_id).reason != "replayed":  # a replay stays refused
                    s.done.pop(task_id, None)
                s.attempts.pop(task_id, None)
                if task_id in s.payloads:
                    self._list(s.ready, task_id).append(task_id)
            s.cond.notify_all()
            return len(ids)

    def purge_dead(self, task_ids: Iterable[str] | None = None) -> int:
        """Delete dead letters for good (all of them when None)."""
        s = self._s
        with s.cond:
            ids = list(s.dead) if task_ids is None else [i for i in task_ids if i in s.dead]
            for task_id in ids:
                del s.dead[task_id]
                self._drop(task_id)
            return len(ids)

    # -- cancel -----------------------------------------------------------------------------

    def cancel(
        self, task_id: str, twin: Callable[[bytes], bytes], *, terminate: bool = False
    ) -> str:
        """Swap a queued or delayed task for ``twin(payload)``, due at once; note a held
        one's termination (``terminate``). As :meth:`qredis.RedisTransport.cancel`."""
        s = self._s
        with s.cond:
            if task_id in s.tokens:
                if not terminate:
                    raise TaskRunning(
                        f"task {task_id!r} is running; pass terminate=True to kill its worker "
                        "and cancel it"
                    )
                s.terminate.add(task_id)
                return "terminating"
            if task_id in s.dead:
                raise UnknownTask(f"task {task_id!r} is dead-lettered: requeue or purge it")
            holder = next(
                (ids for ids in (*s.due.values(), *s.ready.values()) if task_id in ids), None
            )
            if task_id in s.delayed:
                state = "delayed"
            elif holder is not None:
                state = "queued"
            else:
                raise UnknownTask(f"no task {task_id!r} is queued, delayed or running")
            s.payloads[task_id] = twin(s.payloads[task_id])
            if holder is not None:
                holder.remove(task_id)
            s.delayed[task_id] = 0.0
            s.cond.notify_all()
            return state

    # -- chains -----------------------------------------------------------------------------

    def start_chain(
        self,
        chain_id: str,
        items: Sequence[tuple[str, bytes, int | None]],
        *,
        stop_on_failure: bool = True,
    ) -> bool:
        """Store a chain's links and queue the first; False when the chain exists."""
        s = self._s
        with s.cond:
            if chain_id in s.chains:
                return False
            links = {i: item for i, item in enumerate(items, start=1) if i > 1}
            s.chains[chain_id] = _Chain(len(items), stop_on_failure, links)
        first_id, payload, limit = items[0]
        self.enqueue(first_id, payload, max_attempts=limit)
        return True

    def ack_links(
        self, deliveries: Iterable[Delivery], links: Sequence[tuple[str, int, bool] | None]
    ) -> list[bool]:
        """Ack, and queue each acked link's successor (or stop its chain at a failure)."""
        batch = list(deliveries)
        acked = self.ack(batch)
        nexts = []
        s = self._s
        with s.cond:
            for ok, link in zip(acked, links):
                if not ok or link is None or link[0] not in s.chains:
                    continue
                chain_id, index, succeeded = link
                chain = s.chains[chain_id]
                if index in chain.acked:
                    continue
                chain.acked.add(index)
                chain.done += 1
                if not succeeded and chain.stop and chain.done < chain.length:
                    chain.state, chain.stopped_at = "stopped", index
                    chain.links.clear()
                elif index + 1 in chain.links:
                    nexts.append(chain.links.pop(index + 1))
                elif chain.done >= chain.length:
                    chain.state = "done"
        for task_id, payload, limit in nexts:
            self.enqueue(task_id, payload, max_attempts=limit)
        return acked

    def iter_put(self, iter_id: str, index: int, payload: bytes, size: int) -> list[bytes]:
        """Keep one call's record; all of them once the iteration is complete."""
        with self._s.cond:
            records = self._s.iters.setdefault(iter_id, {})
            records[index] = bytes(payload)
            return list(records.values()) if len(records) >= size else []

    def enqueue_unique(
        self,
        task_id: str,
        payload: bytes,
        *,
        lock: str,
        ttl: float,
        delay: float = 0.0,
        max_attempts: int | None = None,
    ) -> str:
        """Queue unless a live task holds ``lock``; the holder's id."""
        s = self._s
        with s.cond:
            holder, expiry = s.locks.get(lock, ("", 0.0))
            live = holder in s.payloads and holder not in s.dead
            if holder and holder != task_id and live and expiry > time.monotonic():
                return holder
            s.locks[lock] = (task_id, time.monotonic() + ttl)
        self.enqueue(task_id, payload, delay=delay, max_attempts=max_attempts)
        return task_id

    def chain_state(self, chain_id: str) -> ChainState | None:
        """Where a chain is, or None."""
        with self._s.cond:
            chain = self._s.chains.get(chain_id)
            if chain is None:
                return None
            return ChainState(chain.length, chain.done, chain.state, chain.stopped_at)

    def terminations(self, task_ids: Collection[str]) -> set[str]:
        """Which of ``task_ids`` are to be terminated."""
        with self._s.cond:
            return self._s.terminate.intersection(task_ids)

    def trim_dead(self, max_age: float, keep: int) -> int:
        """Delete dead letters older than ``max_age`` s, then the oldest beyond ``keep``."""
        s = self._s
        cutoff = time.time() - max_age
        with s.cond:
            oldest = sorted(s.dead.items(), key=lambda kv: kv[1].failed_at)
            expired = [i for i, d in oldest if d.failed_at <= cutoff]
            rest = [i for i, d in oldest if d.failed_at > cutoff]
            ids = expired + rest[: max(0, len(rest) - keep)]
            for task_id in ids:
                del s.dead[task_id]
                s.unrecorded.pop(task_id, None)
                self._drop(task_id)
            return len(ids)

    def ping(self) -> bool:
        """Always True: there is no server to lose."""
        return True

    def close(self) -> None:
        """Nothing to release (the state stays for the space's other users)."""
