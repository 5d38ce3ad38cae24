"""Records for tasks whose worker died under them: timed out, or lost out of attempts.

The sentinel builds these from the dead worker's slot and, when it can read it, the task's
payload from the transport, so the Failure record carries the task's func, args and hook like
any other record (and can be retried from an admin page).
"""

from __future__ import annotations

import signal
import time
from typing import Any

from qcluster.execution import failure
from qcluster.slot import SlotView
from qcore import Codec, PayloadError, TaskMessage, TaskResult, Transport, get_logger

__all__ = ["describe_exit", "lost_record", "read_payload"]

log = get_logger("qcluster.losses")


def read_payload(transport: Transport, task_id: str) -> bytes | None:
    """The stored payload of an in-flight task, when the transport can tell.

    ``Transport`` has no such read; a transport may offer ``payload(task_id)``. For
    ``qredis.RedisTransport`` the payload hash is read directly (one HGET).
    """
    reader = getattr(transport, "payload", None)
    try:
        if callable(reader):
            found = reader(task_id)
            return bytes(found) if found is not None else None
        keys: Any = getattr(transport, "keys", None)
        client: Any = getattr(transport, "client", None)
        if keys is not None and client is not None and hasattr(keys, "msg"):
            found = client.hget(keys.msg, task_id)
            return bytes(found) if found is not None else None
    except Exception as exc:
        log.warning("task.payload_unreadable", task_id=task_id, error=str(exc))
    return None


def describe_exit(exitcode: int | None) -> str:
    """``killed by SIGKILL`` / ``exited with code 1``."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def lost_record(
    view: SlotView,
    error: str,
    *,
    transport: Transport,
    codec: Codec,
    cluster_id: str,
) -> TaskResult:
    """A Failure record for the task ``view`` shows running, with ``error`` as its result."""
    payload = read_payload(transport, view.task_id)
    message: TaskMessage | None = None
    if payload is not None:
        try:
            message = codec.decode_message(payload)
        except PayloadError as exc:
            log.warning("task.payload_undecodable", task_id=view.task_id, error=str(exc))
    if message is not None and message.id == view.task_id:
        return failure(message, error, attempt=view.attempt, cluster=cluster_id)
    now = time.time()
    return TaskResult(
        id=view.task_id,
        name=view.name or view.task_id,
        func=view.func or "<unknown>",
        args=(),
        kwargs={},
        result=error,
        success=False,
        started=view.started or now,
        stopped=now,
        attempt_count=view.attempt,
        cluster=cluster_id,
    )
