"""Measuring: process trees and their PSS, result watchers, percentiles and summaries.

Standard library only at module level: ``peers/base.py`` imports from here, and it also runs
inside the peers' own environments. redis-py, sqlite3 and psycopg are imported where used.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "NoticeWatcher",
    "PrefixWatcher",
    "SqlCountWatcher",
    "percentile",
    "process_breakdown",
    "process_tree",
    "pss_kib",
    "sql_connect",
    "sql_rows",
    "summarize",
    "wait_until",
]


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after its ")".
        fields = stat[stat.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants."""
    children = _children_map()
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in tree or not Path(f"/proc/{pid}").exists():
            continue
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def pss_kib(pids: Sequence[int]) -> tuple[int, int]:
    """Total proportional set size (KiB) of ``pids`` from ``smaps_rollup``, and how many were
    read (a process that exited meanwhile is skipped)."""
    total = counted = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
                counted += 1
                break
    return total, counted


def process_breakdown(pids: Sequence[int]) -> list[dict[str, Any]]:
    """Each process's PSS (KiB) and command line, largest first: where the memory goes."""
    rows = []
    for pid in pids:
        kib, counted = pss_kib([pid])
        if not counted:
            continue
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            raw = b""
        command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
        rows.append({"pid": pid, "pss_kib": kib, "command": command[:160]})
    return sorted(rows, key=lambda row: -int(row["pss_kib"]))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """Median, min and max of repeated runs (what the table prints)."""
    if not values:
        return {"median": None, "min": None, "max": None, "runs": []}
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": list(values),
    }


def wait_until(
    done: Callable[[], bool], timeout: float, interval: float = 0.02, what: str = "condition"
) -> None:
    """Poll ``done`` until true; raise TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class PrefixWatcher:
    """Counts results visible in Redis, walking the task list in enqueue order.

    Each poll checks only a window after the longest prefix already seen done, so a poll costs
    one pipelined round trip of at most ``window`` cheap commands (EXISTS, HEXISTS, ...)
    whatever the number of tasks: the harness must not steal the CPU it is measuring.
    """

    def __init__(
        self, redis_url: str, probe: Callable[[Any], tuple[Any, ...]], window: int = 512
    ) -> None:
        import redis

        self.client = redis.Redis.from_url(redis_url)
        self.probe = probe
        self.window = window
        self.handles: Sequence[Any] | None = None
        self.probes: list[tuple[Any, ...]] = []
        self.done = 0

    def __call__(self, handles: Sequence[Any]) -> int:
        if handles is not self.handles:
            self.handles, self.probes, self.done = handles, [self.probe(h) for h in handles], 0
        while self.done < len(self.probes):
            chunk = self.probes[self.done : self.done + self.window]
            pipe = self.client.pipeline(transaction=False)
            for probe in chunk:
                pipe.execute_command(*probe)
            advanced = 0
            for reply in pipe.execute():
                if not reply:
                    break
                advanced += 1
            self.done += advanced
            if advanced < len(chunk):
                break
        return self.done

    def close(self) -> None:
        self.client.close()


def sql_connect(db: Mapping[str, str]) -> Any:
    """A DB-API connection (autocommit) to a bench database, or None for a SQLite file that
    does not exist yet."""
    if db["engine"] == "sqlite":
        import sqlite3

        if not Path(db["name"]).exists():
            return None
        return sqlite3.connect(db["name"], timeout=5.0, isolation_level=None)
    import psycopg

    return psycopg.connect(
        host=db.get("host", "127.0.0.1"),
        port=int(db.get("port", "5432")),
        user=db.get("user", "postgres"),
        dbname=db["name"],
        autocommit=True,
    )


def sql_rows(db: Mapping[str, str], sql: str) -> list[tuple[Any, ...]]:
    """Every row ``sql`` returns on a bench database."""
    conn = sql_connect(db)
    if conn is None:
        return []
    try:
        return [tuple(row) for row in conn.execute(sql).fetchall()]
    finally:
        conn.close()


class SqlCountWatcher:
    """Counts successful task rows added to a Django result table since it was made.

    Made before the tasks are enqueued: rows already there (an earlier workload on the same
    database) are the offset.
    """

    def __init__(self, db: Mapping[str, str], table: str, success_column: str = "success"):
        self.db = dict(db)
        self.sql = f"SELECT COUNT(*) FROM {table} WHERE {success_column}"
        self.conn: Any = None
        self.offset = self._count()

    def _count(self) -> int:
        if self.conn is None:
            self.conn = sql_connect(self.db)
            if self.conn is None:
                return 0
        try:
            row = self.conn.execute(self.sql).fetchone()
        except Exception as exc:  # the table may not exist before migrations ran
            if "no such table" in str(exc) or "does not exist" in str(exc):
                return 0
            raise
        return int(row[0])

    def __call__(self, handles: Sequence[Any]) -> int:
        return self._count() - self.offset

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class NoticeWatcher:
    """Notes when each task's "saved" notice arrives on a store's pub/sub channel.

    Q's stores publish the ids of every batch once it is readable (the Redis store in the
    script that saves it; the Django store once the statement has committed), and that notice
    is what wakes ``result(..., wait=...)``. So arrival - the task's end is how long a waiting
    caller waits for a finished task's record: an upper bound on when it became readable.
    A thread of its own, subscribed before the workload starts.
    """

    def __init__(self, redis_url: str, channel: str) -> None:
        import threading

        import redis

        self.client = redis.Redis.from_url(redis_url)
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe(channel)
        confirmed = self.pubsub.get_message(timeout=10.0)
        if confirmed is None or confirmed["type"] != "subscribe":
            raise RuntimeError(f"no confirmation of the subscription to {channel}")
        self.arrived: dict[str, float] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._listen, name="notices", daemon=True)
        self.thread.start()

    def _listen(self) -> None:
        while not self.stopping.is_set():
            message = self.pubsub.get_message(timeout=0.2)
            if message is None or message["type"] != "message":
                continue
            now = time.time()
            for task_id in message["data"].decode().split():
                self.arrived.setdefault(task_id, now)

    def lags_ms(self, ended: Mapping[str, float]) -> list[float]:
        """(notice arrival - task end) in ms for every task with both."""
        return [(self.arrived[i] - t) * 1000 for i, t in ended.items() if i in self.arrived]

    def close(self) -> None:
        if self.stopping.is_set():
            return
        self.stopping.set()
        self.thread.join(5)
        self.pubsub.close()
        self.client.close()


def result_bytes(url: str, tasks: int) -> float:
    """Redis memory of the result store's keys (``{r:`` hash tags: records and name indexes,
    by ``MEMORY USAGE``), per task. The bench's own private server: SCAN is fine here."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        total = sum(
            int(client.memory_usage(key, samples=0) or 0)
            for key in client.scan_iter(match="{r:*", count=1000)
        )
    finally:
        client.close()
    return total / max(1, tasks)
