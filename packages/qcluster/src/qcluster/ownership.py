"""Which process runs a cluster, and whether it is provably gone: fast recovery on one host.

A cluster records, beside its queue, its host and its sentinel's pid and start time (the
transport's :class:`qcore.Owners`). Another cluster on the same host (same kernel boot, same
PID namespace) can then prove that process gone: no process with that pid, a zombie, or one
with another start time (the pid was reused). Its workers are gone with it (they die with
their sentinel: ``PR_SET_PDEATHSIG``), so its in-flight tasks are requeued at once instead of
after the heartbeat TTL (``retry``). A cluster on another host cannot look at that process and
keeps the TTL rule; so does every cluster where ``/proc`` is missing (not Linux).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qcore import Owners, get_logger

__all__ = ["ProcessIdentity", "Reclaimer", "is_gone", "start_time"]

log = get_logger("qcluster.ownership")

_PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessIdentity:
    """A process as another one on the same host can check it: ``host`` is the kernel's boot
    id and the PID namespace (pids and start times mean something only within both)."""

    host: str
    hostname: str
    pid: int
    start: int
    """Start time, in clock ticks after boot (``/proc/<pid>/stat``, field 22)."""

    @classmethod
    def here(cls) -> ProcessIdentity | None:
        """This process's identity, or None where it cannot be proved (no ``/proc``)."""
        pid = os.getpid()
        try:
            boot = (_PROC / "sys/kernel/random/boot_id").read_text().strip()
            namespace = os.readlink(_PROC / "self/ns/pid")
            own = (_PROC / "self/stat").read_text().split(" ", 1)[0]
        except OSError:
            return None
        start = start_time(pid)
        if not boot or own != str(pid) or start is None:
            return None  # a /proc of another PID namespace than ours: prove nothing by it
        return cls(f"{boot}/{namespace}", socket.gethostname(), pid, start)

    def record(self) -> dict[str, Any]:
        return asdict(self)


def start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot); None when there is no such
    process or it is a zombie (dead, not yet waited for)."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last.
    fields = text[text.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X", "x"):
        return None
    return int(fields[19])


def is_gone(owner: Mapping[str, Any], here: ProcessIdentity) -> bool:
    """True only when ``owner``'s process is provably gone: it ran on this host and no process
    with its pid and start time runs now. Anything else (another host, a record this version
    cannot read, the process alive, even stopped) is False: the heartbeat TTL decides then."""
    pid, start = owner.get("pid"), owner.get("start")
    if owner.get("host") != here.host or type(pid) is not int or type(start) is not int:
        return False
    if pid == here.pid:
        return start != here.start
    return start_time(pid) != start


class Reclaimer:
    """A periodic job of the beacon: records this cluster's owner, and requeues at once the
    tasks of every cluster recorded on this host whose process is provably gone."""

    name = "reclaimer"

    def __init__(
        self, transport: Owners, cluster_id: str, identity: ProcessIdentity, interval: float
    ) -> None:
        self.transport = transport
        self.cluster_id = cluster_id
        self.identity = identity
        self.interval = interval

    def run(self) -> float:
        owners = self.transport.record_owner(self.cluster_id, self.identity.record())
        for cluster_id, owner in owners.items():
            if cluster_id == self.cluster_id or not is_gone(owner, self.identity):
                continue
            reaped = self.transport.reclaim(cluster_id)
            log.warning(
                "cluster.reclaimed",
                cluster_id=self.cluster_id,
                dead_cluster=cluster_id,
                dead_pid=owner.get("pid"),
                consumers=reaped.consumers,
                requeued=reaped.requeued,
                dead_lettered=reaped.dead_lettered,
            )
        return self.interval

    def close(self) -> None:
        """Forget this cluster's owner record (it stopped)."""
        try:
            self.transport.remove_owner(self.cluster_id)
        except Exception as exc:
            log.warning("cluster.owner_not_removed", cluster_id=self.cluster_id, error=str(exc))
