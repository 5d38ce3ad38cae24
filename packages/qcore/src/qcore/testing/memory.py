"""An in-memory transport: the Redis transport's semantics in one process, for tests.

Same contract as ``qredis.RedisTransport`` (the suite in :mod:`qcore.testing.contract` runs
against both): at-least-once delivery, fencing tokens, priorities (a due list and a ready list
per level, as in Redis), release to the head, heartbeats and the reaper, delayed tasks and
dead letters. Its state lives in this process, in a space named at
construction: a pickled copy landing in the same process shares it (as a Redis transport's
copy shares the server), a copy in another process starts empty. So a cluster's worker
processes cannot consume it: run what it holds with ``qcluster.join()`` instead.

Its delivery half is :class:`~qcore.testing.delivery.MemoryDelivery`, its state a
:class:`~qcore.testing.space.Space`; this module adds inspection, dead-letter administration,
cancelling, chains, iterations and unique tasks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Sequence

from qcore.chains import ChainState
from qcore.errors import TaskRunning, UnknownTask
from qcore.message import PRIORITY_MAX, check_priority
from qcore.protocols import DeadLetter, Delivery, InFlight
from qcore.reasons import DEAD_REASONS_LIMIT, count_reasons
from qcore.testing.delivery import MemoryDelivery
from qcore.testing.space import Chain

__all__ = ["MemoryTransport"]


class MemoryTransport(MemoryDelivery):
    """A :class:`qcore.Transport` in this process's memory.

    ``space`` names the state: two transports with the same space and queue share it (the
    default is a new space, private to this object and its copies). ``max_attempts`` and
    ``replay_window`` as for the Redis transport. :meth:`make_due` runs delayed tasks now, for
    tests that do not wait.
    """

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
                    s.level_list(s.ready, task_id).append(task_id)
            s.cond.notify_all()
            return len(ids)

    def purge_dead(self, task_ids: Iterable[str] | None = None) -> int:
        """Delete dead letters for good (all of them when None)."""
        s = self._s
        with s.cond:
            ids = list(s.dead) if task_ids is None else [i for i in task_ids if i in s.dead]
            for task_id in ids:
                del s.dead[task_id]
                s.drop(task_id)
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
            s.levels[task_id] = PRIORITY_MAX  # the twin runs no code: it goes first
            s.cond.notify_all()
            return state

    # -- chains -----------------------------------------------------------------------------

    def start_chain(
        self,
        chain_id: str,
        items: Sequence[tuple[str, bytes, int | None]],
        *,
        stop_on_failure: bool = True,
        priorities: Sequence[int] | None = None,
    ) -> bool:
        """Store a chain's links and queue the first (each at its priority); False when the
        chain exists."""
        levels = [0] * len(items) if priorities is None else [check_priority(p) for p in priorities]
        if len(levels) != len(items):
            raise ValueError(f"{len(levels)} priorities given for a chain of {len(items)} links")
        s = self._s
        with s.cond:
            if chain_id in s.chains:
                return False
            links = {
                i: (*item, level)
                for i, (item, level) in enumerate(zip(items, levels), start=1)
                if i > 1
            }
            s.chains[chain_id] = Chain(len(items), stop_on_failure, links)
        first_id, payload, limit = items[0]
        self.enqueue(first_id, payload, max_attempts=limit, priority=levels[0])
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
        for task_id, payload, limit, level in nexts:
            self.enqueue(task_id, payload, max_attempts=limit, priority=level)
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
        priority: int = 0,
    ) -> str:
        """Queue (at ``priority``) unless a live task holds ``lock``; the holder's id."""
        check_priority(priority)
        s = self._s
        with s.cond:
            holder, expiry = s.locks.get(lock, ("", 0.0))
            live = holder in s.payloads and holder not in s.dead
            if holder and holder != task_id and live and expiry > time.monotonic():
                return holder
            s.locks[lock] = (task_id, time.monotonic() + ttl)
        self.enqueue(task_id, payload, delay=delay, max_attempts=max_attempts, priority=priority)
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
                s.drop(task_id)
            return len(ids)

    def ping(self) -> bool:
        """Always True: there is no server to lose."""
        return True

    def close(self) -> None:
        """Nothing to release (the state stays for the space's other users)."""
