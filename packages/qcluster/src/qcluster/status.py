"""The cluster's status, as published to the status board for ``info`` and ``monitor``.

Counts of finished work come from the workers' slots (each counts its own) plus the totals the
sentinel kept of workers that are gone; queue sizes come from the transport, each read on its
own so that one failing read leaves a gap, not a missing status.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from qcluster.config import ClusterConfig
from qcluster.slot import AwaitingTask
from qcluster.states import ClusterState
from qcore import Transport

__all__ = ["Totals", "cluster_status", "queue_sizes"]


@dataclass
class Totals:
    """What the workers that are gone did, and what happened to them."""

    processed: int = 0
    failed: int = 0
    replaced: int = 0
    timed_out: int = 0
    lost: int = 0
    recycled: int = 0
    run_total: float = 0.0
    """Seconds their successful tasks' functions ran, added up."""


def cluster_status(
    *,
    cluster_id: str,
    config: ClusterConfig,
    state: ClusterState,
    started_at: float,
    handles: Iterable[Any],
    totals: Totals,
    transport: Transport,
    metrics_port: int | None = None,
    sizes: dict[str, int | None] | None = None,
    key_ids: list[str] | None = None,
) -> dict[str, Any]:
    """The status document of a cluster (``handles``: its live workers, by index; ``sizes``:
    the queue's sizes when read already, else they are read now; ``key_ids``: the ids, in
    hex, of the signing keys its codec accepts, primary first: the 4 bytes every payload's
    header carries already, never the keys)."""
    now = time.monotonic()
    workers = []
    processed, failed, run_total = totals.processed, totals.failed, totals.run_total
    for handle in handles:
        view = handle.slot.read()
        processed += view.processed
        failed += view.failed
        run_total += view.run_total
        workers.append(
            {
                "index": handle.index,
                "pid": handle.process.pid,
                "consumer": handle.consumer,
                "state": view.state.name.lower(),
                "task_id": view.running,
                "task_name": view.name if view.running else None,
                "func": view.func if view.running else None,
                "running_for": round(now - view.since, 3) if view.running else None,
                # Wall clock: read in other processes and hosts (a running task's start).
                "started_at": view.started if view.running else None,
                "attempt": view.attempt if view.running else None,
                # The coroutine tasks it awaits side by side (async_concurrency > 1).
                "awaiting": [_awaited(task) for task in handle.slot.awaiting(live=True)],
                "processed": view.processed,
                "failed": view.failed,
                "uptime": round(now - handle.born, 1),
            }
        )
    return {
        "cluster_id": cluster_id,
        "name": config.name,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "state": state.value,
        "queue": transport.queue,
        "started_at": started_at,
        "uptime": round(time.time() - started_at, 1),
        "updated_at": time.time(),
        "workers": workers,
        "processed": processed,
        "failed": failed,
        # The functions' own time (TaskResult.run_time), over the successes since the start.
        "mean_run": run_total / (processed - failed) if processed > failed else None,
        "replaced": totals.replaced,
        "timed_out": totals.timed_out,
        "lost": totals.lost,
        "recycled": totals.recycled,
        "metrics_port": metrics_port,
        "key_ids": key_ids or [],
        **(sizes if sizes is not None else queue_sizes(transport)),
    }


def _awaited(task: AwaitingTask) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "task_name": task.name or None,
        "func": task.func or None,
        "started_at": task.started or None,
        "attempt": task.attempt,
    }


def queue_sizes(transport: Transport) -> dict[str, int | None]:
    """The queue's sizes, each read on its own (None where a read failed)."""
    out: dict[str, int | None] = {}
    reads: dict[str, Callable[[], int]] = {
        "queue_size": transport.queue_size,
        "inflight_size": transport.inflight_size,
        "delayed_size": transport.delayed_size,
        "dead_size": transport.dead_size,
    }
    for key, read in reads.items():
        try:
            out[key] = int(read())
        except Exception:
            out[key] = None
    return out
