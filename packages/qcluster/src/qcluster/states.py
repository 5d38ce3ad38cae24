"""Named states and exit codes of the cluster's processes."""

from __future__ import annotations

import enum

__all__ = ["ClusterState", "ExitCode", "KillReason", "WorkerState"]


class WorkerState(enum.IntEnum):
    """What a worker is doing, as its shared slot tells the sentinel."""

    STARTING = 0
    IDLE = 1
    """Waiting for tasks (blocked in the transport's fetch)."""
    RUNNING = 2
    """Running one task; the slot names it, its attempt, token and deadline."""
    SAVING = 3
    """Saving finished results and acking them (the store may be slow or down)."""
    HOOK = 4
    """Calling a hook for a saved task."""
    STOPPING = 5
    """Finishing up after SIGTERM: saving, acking, releasing unstarted tasks."""
    LEFT = 6
    """Left cleanly: its unstarted tasks released and its consumer forgotten, so the sentinel
    has nothing to undo (two round trips fewer per recycled worker)."""


class ClusterState(enum.Enum):
    """The sentinel's state, as published in the status."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class ExitCode(enum.IntEnum):
    """How a worker process ends; the sentinel reads it from the exit status."""

    OK = 0
    """Stopped on request after saving and acking its work."""
    ERROR = 1
    """An unexpected error in the worker loop itself (logged before exiting)."""
    RECYCLED = 3
    """Ran ``recycle`` tasks: replace it."""
    MAX_RSS = 4
    """Its memory grew past ``max_rss``: replace it."""
    PARENT_GONE = 5
    """Its sentinel died; it exited without finishing (another cluster recovers the work)."""
    INIT_FAILED = 6
    """The worker could not start (``worker_init`` raised, a connection could not be made)."""


class KillReason(enum.Enum):
    """Why the sentinel killed a worker."""

    TIMEOUT = "timeout"
    HOOK_TIMEOUT = "hook_timeout"
    CANCELLED = "cancelled"
    GRACE_EXPIRED = "grace_expired"
    STOP_NOW = "stop_now"
