"""An in-memory result store, for tests (see :mod:`qcore.testing`)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qcore.message import TaskResult
from qcore.serialization import dumps, loads

__all__ = ["MemoryResultStore"]


@dataclass
class _Records:
    lock: threading.Lock = field(default_factory=threading.Lock)
    by_id: dict[str, bytes] = field(default_factory=dict)
    success: dict[str, bool] = field(default_factory=dict)
    names: dict[str, tuple[float, str]] = field(default_factory=dict)  # -> (started, id)
    fences: dict[str, int] = field(default_factory=dict)  # id -> fence of the saved record


_spaces: dict[str, _Records] = {}
_spaces_lock = threading.Lock()


class MemoryResultStore:
    """A :class:`qcore.ResultStore` in this process's memory, with the Redis store's rules.

    Records are kept pickled, so what cannot be stored in production fails here too, and what
    is read back is a copy. A failure never replaces a success; a name maps to the task of that
    name enqueued last. ``space`` as for :class:`~qcore.testing.MemoryTransport`: copies of a
    store (pickled in this process) share its records.
    """

    def __init__(self, *, space: str | None = None) -> None:
        self.space = space if space is not None else uuid.uuid4().hex
        with _spaces_lock:
            self._r = _spaces.setdefault(self.space, _Records())

    def __getstate__(self) -> dict[str, Any]:
        return {"space": self.space}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(space=state["space"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"MemoryResultStore(space={self.space!r})"

    def save_many(
        self, results: Sequence[TaskResult], *, fences: Sequence[int] | None = None
    ) -> None:
        """Upsert records by id; never over a record of a higher fence, and a failure never
        replaces a success."""
        pickled = [(record, dumps(record)) for record in results]
        r = self._r
        with r.lock:
            for n, (record, data) in enumerate(pickled):
                fence = 0 if fences is None else fences[n]
                stored = r.fences.get(record.id, 0)
                if fence and stored > fence:
                    continue  # a superseded delivery's late save
                if record.success or not r.success.get(record.id, False):
                    r.by_id[record.id] = data
                    r.success[record.id] = record.success
                    r.fences[record.id] = max(fence, stored)
                current = r.names.get(record.name)
                if current is None or current[1] == record.id or current[0] <= record.started:
                    r.names[record.name] = (record.started, record.id)

    def get(self, task_id: str) -> TaskResult | None:
        """The record of an id, or of the latest task of a humanized name, or None."""
        r = self._r
        with r.lock:
            data = r.by_id.get(task_id)
            if data is None and task_id in r.names:
                data = r.by_id.get(r.names[task_id][1])
        if data is None:
            return None
        record: TaskResult = loads(data)
        return record

    def records(self) -> list[TaskResult]:
        """Every record saved, in the order first saved."""
        with self._r.lock:
            saved = list(self._r.by_id.values())
        return [loads(data) for data in saved]

    def close(self) -> None:
        """Nothing to release."""
