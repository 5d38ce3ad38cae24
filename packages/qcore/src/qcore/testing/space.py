"""The state behind :class:`~qcore.testing.MemoryTransport`: one space per (name, queue) in
this process, shared by the transports built on it and their pickled copies."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Chain", "Dead", "Space", "space_for"]


@dataclass
class Dead:
    failed_at: float
    reason: str
    attempts: int


@dataclass
class Chain:
    """A chain's links not queued yet (index -> (id, payload, limit, priority)) and where
    it is."""

    length: int
    stop: bool
    links: dict[int, tuple[str, bytes, int | None, int]]
    done: int = 0
    state: str = "running"
    stopped_at: int | None = None
    acked: set[int] = field(default_factory=set)


@dataclass
class Space:
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
    dead: dict[str, Dead] = field(default_factory=dict)
    consumers: dict[str, float] = field(default_factory=dict)  # -> deadline (monotonic)
    unrecorded: dict[str, None] = field(default_factory=dict)  # dead letters owed a record
    acks: dict[str, Any] = field(default_factory=dict)  # consumer -> its last ack and answer
    terminate: set[str] = field(default_factory=set)  # running tasks to be terminated
    chains: dict[str, Chain] = field(default_factory=dict)
    iters: dict[str, dict[int, bytes]] = field(default_factory=dict)
    locks: dict[str, tuple[str, float]] = field(default_factory=dict)  # -> (id, expiry)
    done: dict[str, float] = field(default_factory=dict)  # acked id -> until (monotonic)
    seq: int = 0

    def level_list(self, lists: dict[int, deque[str]], task_id: str) -> deque[str]:
        """The list of ``task_id``'s level in ``lists`` (due or ready)."""
        level = self.levels.get(task_id, 0)
        found = lists.get(level)
        if found is None:
            found = lists[level] = deque()
        return found

    def has_ready(self) -> bool:
        return any(self.due.values()) or any(self.ready.values())

    def bury(self, task_id: str, reason: str, attempts: int) -> None:
        self.dead[task_id] = Dead(time.time(), reason, attempts)

    def drop(self, task_id: str) -> None:
        for table in (self.payloads, self.attempts, self.limits, self.levels):
            table.pop(task_id, None)

    def promote(self, everything: bool = False) -> int:
        """Move the delayed tasks that are due (all of them with ``everything``) to the due
        lists; returns how many."""
        if not self.delayed:
            return 0
        now = time.time()
        due = sorted((at, i) for i, at in self.delayed.items() if everything or at <= now)
        for _, task_id in due:
            del self.delayed[task_id]
            self.level_list(self.due, task_id).append(task_id)
        return len(due)


_spaces: dict[tuple[str, str], Space] = {}
_spaces_lock = threading.Lock()


def space_for(name: str, queue: str) -> Space:
    """The space ``name`` holds for ``queue``, made on first use."""
    with _spaces_lock:
        return _spaces.setdefault((name, queue), Space())
