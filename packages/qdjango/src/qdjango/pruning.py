"""``save_limit``: the newest N successes are kept, the older ones deleted, off the save path.

A batch's upsert never waits for pruning. A store prunes in a transaction of its own, after
the batch is saved and announced, once it has saved :func:`slack` successes since its last
prune, and once more when it is closed (a worker leaving). So at any moment the table holds at
most ``save_limit`` successes plus ``slack`` per writing process (plus the batch each may be
writing), and exactly ``save_limit`` right after a prune that saw every committed row, which
the last prune of a stopping cluster does.
"""

from __future__ import annotations

from contextlib import nullcontext

from django.db import connections, transaction

from qdjango.sqlite import writer_turn

__all__ = ["prune", "slack"]

# Any 64-bit number of our own: the advisory lock that makes prunes take turns.
_PRUNE_LOCK = 0x51_646A_616E_676F

_MIN_SLACK = 100


def slack(save_limit: int) -> int:
    """Successes a store saves between two prunes: as many as it keeps (at least 100), so a
    prune's cost, which grows with what it keeps, is spread over as many saves."""
    return max(save_limit, _MIN_SLACK)


def prune(using: str, keep: int) -> int:
    """Delete the successes beyond the newest ``keep``; how many rows went.

    One ``DELETE`` reads and deletes, so a prune never deletes a row a later one would keep.
    A prune sees every row committed before it starts: the last prune, after the last save,
    leaves exactly ``keep``. On PostgreSQL prunes take turns on an advisory lock: two deleting
    the same rows at once would wait on each other's row locks, and could deadlock.
    """
    from qdjango.models import Task

    conn = connections[using]
    turn = writer_turn(conn) if conn.vendor == "sqlite" else nullcontext()
    with turn, transaction.atomic(using=using):
        if conn.vendor == "postgresql":
            with conn.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PRUNE_LOCK])
        tasks = Task.objects.using(using)
        beyond = tasks.filter(success=True).order_by("-stopped", "-id").values("id")[keep:]
        if not conn.features.allow_sliced_subqueries_with_in:
            beyond = list(beyond.values_list("id", flat=True))
        deleted, _ = tasks.filter(pk__in=beyond).delete()
    return int(deleted)
