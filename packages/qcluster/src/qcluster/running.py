"""Running tasks, as the clusters' published status shows them: each worker's slot says which
task it runs, since when and on which attempt, and the sentinel publishes that with the rest of
its status every ``status_interval`` seconds. So a RUNNING state costs no write per task: a
task is seen running once its cluster's next status is out (a task shorter than that may
never be seen running). A worker awaiting coroutine tasks side by side lists each of them
(its slot's awaiting entries), and each is a running task here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["RunningTask", "running_tasks", "worker_tasks"]


@dataclass(frozen=True, slots=True)
class RunningTask:
    """A task a worker was running when its cluster last published its status."""

    task_id: str
    name: str | None
    func: str | None
    cluster_id: str
    consumer: str
    """The worker's consumer id (``<cluster_id>.<index>.<n>``)."""
    started_at: float | None
    """Wall-clock time (epoch seconds) the worker started this attempt."""
    attempt: int | None
    seen_at: float | None
    """When the status that shows it was published."""


def running_tasks(
    statuses: Iterable[Mapping[str, Any]], task_id: str | None = None
) -> list[RunningTask]:
    """The running tasks in clusters' status documents (``StatusBoard.clusters()``), or only
    ``task_id``'s; the most recently started first."""
    found = []
    for status in statuses:
        for worker in status.get("workers") or ():
            for task in worker_tasks(worker):
                running = task["task_id"]
                if task_id is not None and running != task_id:
                    continue
                found.append(
                    RunningTask(
                        task_id=running,
                        name=task.get("task_name"),
                        func=task.get("func"),
                        cluster_id=str(status.get("cluster_id")),
                        consumer=str(worker.get("consumer")),
                        started_at=task.get("started_at"),
                        attempt=task.get("attempt"),
                        seen_at=status.get("updated_at"),
                    )
                )
    found.sort(key=lambda task: task.started_at or 0.0, reverse=True)
    return found


def worker_tasks(worker: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The tasks one worker of a status document runs, the oldest first: the one its slot
    shows and each coroutine it awaits beside it (``async_concurrency`` > 1), each once (the
    slot's may be among them). Each has ``task_id``, ``task_name``, ``func``, ``started_at``
    and ``attempt``."""
    shown = worker.get("task_id")
    tasks: list[Mapping[str, Any]] = [worker] if shown else []
    tasks += [t for t in worker.get("awaiting") or () if t.get("task_id") not in ("", None, shown)]
    return sorted(tasks, key=lambda task: task.get("started_at") or 0.0)
