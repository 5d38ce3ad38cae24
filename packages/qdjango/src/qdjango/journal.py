"""SQLite for a cluster's writers: the database in WAL mode.

In SQLite's default rollback-journal mode a reader holds a lock that a committing writer must
wait for (a web page listing tasks stalls the workers' saves, and theirs stall the page), and
each commit rewrites a journal file. In WAL mode readers never block the writer and a commit
appends to one log. The mode is a property of the database file: Q switches it only from the
default (``delete``), so a site that chose another mode (``init_command`` in the database's
``OPTIONS``) keeps it; an in-memory database is left alone.
"""

from __future__ import annotations

from typing import Any

from qcore import get_logger

__all__ = ["use_wal"]

log = get_logger("qdjango.journal")


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
