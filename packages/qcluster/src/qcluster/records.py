"""The Failure records of tasks lost on their last attempt, built from what Redis still holds.

A worker that dies on a task's last attempt gets the task dead-lettered, by its own sentinel
(release) or, when its whole cluster died, by another cluster's reaper. The transport marks each
such dead letter as owed a record (:meth:`qcore.Transport.unrecorded`) in the same step, so
none is forgotten: the sentinel that saw the loss saves the record itself when it can, and
:class:`OwedRecords`, a periodic job of every cluster's beacon, saves the rest (the reaper's,
and those whose store was down at the time) from the dead letter's payload and reason, then
clears the mark and owes the task's hook. A store that stays down keeps the mark: the job
tries again at its next pass, and a caller waiting on the result gets it once it is saved.
"""

from __future__ import annotations

import re
import time

from qcluster.execution import failure
from qcluster.hookcalls import HookCalls
from qcluster.worker import WorkerSpec
from qcore import DeadLetter, PayloadError, TaskMessage, TaskResult, get_logger
from qcore.events import TaskDeadLettered

__all__ = ["DeadLetterBounds", "OwedRecords", "failure_text", "record_for"]

log = get_logger("qcluster.records")

_BATCH = 100
_TYPED = re.compile(r"^[A-Z]\w*: ")


def failure_text(reason: str) -> str:
    """The record's result for a dead letter's reason: ``WorkerLost: ...`` unless the reason
    already names its error (``TimeoutError: ...``)."""
    return reason if _TYPED.match(reason) else f"WorkerLost: {reason}"


def record_for(
    spec: WorkerSpec, task_id: str, payload: bytes | None, error: str, attempt: int
) -> tuple[TaskMessage | None, TaskResult]:
    """The Failure record of ``task_id`` with ``error`` as its result, carrying the func, args
    and hook of its payload when that verifies (and only then: an unverified payload is
    never unpickled)."""
    message: TaskMessage | None = None
    if payload is not None:
        try:
            message = spec.codec.decode_message(payload)
        except PayloadError as exc:
            log.warning("task.payload_undecodable", task_id=task_id, error=type(exc).__name__)
    if message is not None and message.id == task_id:
        return message, failure(message, error, attempt=attempt, cluster=spec.cluster_id)
    now = time.time()
    record = TaskResult(
        id=task_id,
        name=task_id,
        func="<unknown>",
        args=(),
        kwargs={},
        result=error,
        success=False,
        started=now,
        stopped=now,
        attempt_count=attempt,
        cluster=spec.cluster_id,
    )
    return None, record


class OwedRecords:
    """A periodic job of the beacon: save the records dead letters are owed, then their hooks."""

    name = "records"

    def __init__(self, spec: WorkerSpec, hooks: HookCalls) -> None:
        self.spec = spec
        self.hooks = hooks

    def run(self) -> float:
        """One pass; raises (the beacon logs it and runs the job again a second later) when
        Redis or the store fails, leaving the marks in place."""
        transport = self.spec.transport
        letters = transport.unrecorded(_BATCH)
        if letters:
            self.settle(letters)
        return 0.0 if len(letters) == _BATCH else self.spec.config.heartbeat

    def settle(self, letters: list[DeadLetter]) -> None:
        built = [
            record_for(
                self.spec,
                letter.task_id,
                letter.payload,
                failure_text(letter.reason),
                letter.attempts,
            )
            for letter in letters
        ]
        self.spec.store.save_many([record for _, record in built])
        self.spec.transport.recorded([letter.task_id for letter in letters])
        events = self.spec.events
        for letter, (message, record) in zip(letters, built):
            log.warning(
                "task.dead_letter_recorded", task_id=letter.task_id, attempt=letter.attempts
            )
            events.emit(
                TaskDeadLettered(letter.task_id, letter.reason, letter.attempts, record, None)
            )
            self.hooks.owe(message, record)


class DeadLetterBounds:
    """A periodic job of the beacon: drop dead letters past ``dead_letter_ttl`` and beyond
    ``dead_letter_cap`` (one cheap script when there is nothing to drop)."""

    name = "dead_letters"

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec

    def run(self) -> float:
        config = self.spec.config
        dropped = self.spec.transport.trim_dead(config.dead_letter_ttl, config.dead_letter_cap)
        if dropped:
            log.warning(
                "dead_letters.dropped",
                count=dropped,
                ttl=config.dead_letter_ttl,
                cap=config.dead_letter_cap,
            )
        return config.heartbeat
