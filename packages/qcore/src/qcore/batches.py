"""The signed items of one ``enqueue_many`` call, built and checked before anything is sent:
what the sync and the asyncio paths (:func:`qcore.enqueue_many`, :func:`qcore.aenqueue_many`)
share."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from qcore.codec import Codec
from qcore.events import EventBus, TaskEnqueued
from qcore.idempotency import fixed_ids
from qcore.message import TaskMessage

__all__ = ["Batch"]


class Batch:
    """``func(*call)`` for each of ``calls`` with ``first``'s func, hook, group and options
    (``first`` is the batch's message as :func:`~qcore.build_message` checked it), under the
    ids ``task_ids`` or ``idempotency_key`` fix (:func:`~qcore.idempotency.fixed_ids`: a bad
    or repeated id is a :class:`~qcore.ConfigError` before anything is sent)."""

    def __init__(
        self,
        codec: Codec,
        first: TaskMessage,
        calls: Iterable[Any],
        *,
        max_attempts: int | None,
        events: EventBus | None,
        task_ids: Sequence[str] | None,
        idempotency_key: str | None,
    ) -> None:
        batch = list(calls)
        fixed = fixed_ids(len(batch), task_ids, idempotency_key)
        options = first.options
        encode = codec.encode_message
        func, hook, group = first.func, first.hook, first.group
        announce = events is not None and events.wants(TaskEnqueued)
        self.events = events if announce else None
        self.fixed = fixed is not None
        self.messages: list[TaskMessage] = []
        self.items: list[tuple[str, bytes]] = []
        for n, call in enumerate(batch):
            args = call if isinstance(call, tuple) else (call,)
            task_id = None if fixed is None else fixed[n]
            message = TaskMessage.new(
                func, args, hook=hook, group=group, options=options, task_id=task_id
            )
            if announce:
                self.messages.append(message)
            self.items.append((message.id, encode(message)))
        # A priority is passed only when set: a transport written before priorities still
        # takes the rest (an idempotent bulk always takes it).
        self.options: dict[str, Any] = {"max_attempts": max_attempts}
        if options.priority or self.fixed:
            self.options["priority"] = options.priority or 0

    def announced(self, queue: str, queued: Sequence[bool] | None = None) -> list[str]:
        """:class:`~qcore.events.TaskEnqueued` on the batch's ``events`` for each task queued
        (all of them, or those ``queued`` flags); returns the ids in order."""
        if self.events is not None:
            for n, message in enumerate(self.messages):
                if queued is None or queued[n]:
                    self.events.emit(TaskEnqueued(message.id, message, queue))
        return [task_id for task_id, _ in self.items]
