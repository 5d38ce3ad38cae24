"""SQLite for a cluster's writers: the database in WAL mode, and writers that take turns.

In SQLite's default rollback-journal mode a reader holds a lock that a committing writer must
wait for (a web page listing tasks stalls the workers' saves, and theirs stall the page), and
each commit rewrites a journal file. In WAL mode readers never block the writer and a commit
appends to one log. The mode is a property of the database file: Q switches it only from the
default (``delete``), so a site that chose another mode (``init_command`` in the database's
``OPTIONS``) keeps it; an in-memory database is left alone.

SQLite still lets one writer in at a time, and one that finds the database busy sleeps in
steps of 1, 2, 5, 10... ms before it tries again, however soon the other finishes. The
cluster's workers therefore take turns on an ``flock`` of a file beside the database
(``<database>-qlock``): a waiting worker wakes the moment the lock is let go, and the kernel
lets go of a killed worker's lock. Other writers (the site itself) are not slowed by it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from qcore import get_logger

__all__ = ["use_wal", "writer_turn"]

log = get_logger("qdjango.sqlite")

# Lock files this process opened, by path: one descriptor each, kept for the process's life.
_locks: dict[str, tuple[int, int]] = {}


def use_wal(conn: Any) -> None:
    """Switch the SQLite database behind Django connection ``conn`` to WAL if it is in the
    default rollback-journal mode. Call outside a transaction (SQLite refuses it inside)."""
    with conn.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        (mode,) = cursor.fetchone()
        if str(mode).lower() != "delete" or conn.is_in_memory_db():
            return
        cursor.execute("PRAGMA journal_mode=WAL")
        (mode,) = cursor.fetchone()
    log.info("sqlite.journal_mode", database=conn.alias, mode=str(mode).lower())


@contextmanager
def writer_turn(conn: Any) -> Iterator[None]:
    """Hold this database's writers' lock while a statement that is its own transaction
    writes. Not inside a caller's transaction, which may already hold SQLite's write lock
    (waiting for ours then could stall a worker that holds ours and waits for SQLite's), nor
    for an in-memory database."""
    fd = None
    if not conn.in_atomic_block and not conn.is_in_memory_db():
        fd = _lock_file(str(conn.settings_dict["NAME"]))
    if fd is None:
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _lock_file(database: str) -> int | None:
    found = _locks.get(database)
    if found is not None and found[0] == os.getpid():
        return found[1]
    try:
        fd = os.open(f"{database}-qlock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        # A read-only folder: the workers then rely on SQLite's own busy waiting.
        log.warning("sqlite.no_lock_file", database=database, error=str(exc))
        return None
    _locks[database] = (os.getpid(), fd)
    return fd
