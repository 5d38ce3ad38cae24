"""The Django result store: the cluster's batches of results, upserted into ``Task`` rows.

One :meth:`DjangoResultStore.save_many` is one statement on PostgreSQL and SQLite (see
:mod:`qdjango.upsert`): the batch is its own transaction, readable the moment it returns, and
its ids are then published (qredis's :class:`~qredis.ResultNotifier`, after the commit when
the caller holds a transaction open), which wakes ``result(..., wait=...)`` callers. Pruning to
``save_limit`` comes after, in a transaction of its own and only every so many successes
(:mod:`qdjango.pruning`): a batch never waits for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import DatabaseError, connections, transaction

from qcore import ConfigError, TaskResult, get_logger
from qdjango import pruning
from qdjango.process import DjangoContext
from qdjango.records import record_from_task, task_from_record
from qdjango.sqlite import use_wal
from qdjango.upsert import upsert

__all__ = ["DjangoResultStore", "record_from_task", "task_from_record", "was_saved"]

log = get_logger("qdjango.store")


# Ids of the last batch this process saved. A worker saves a batch, then calls its hooks:
# the hook runner looks here to tell a saved record from one that was not (``save=False``).
_last_saved: frozenset[str] = frozenset()


def _remember(ids: Iterable[str]) -> None:
    global _last_saved
    _last_saved = frozenset(ids)


def was_saved(task_id: str) -> bool:
    """Whether this process's last saved batch had a record for ``task_id``."""
    return task_id in _last_saved


def _dedupe(
    results: Sequence[TaskResult], fences: Sequence[int] | None
) -> tuple[list[TaskResult], list[int]]:
    """One record per id (a redelivered task can finish twice in one batch), with its fence:
    the later record, unless the earlier has a higher fence, or is a success and the later a
    failure (the rules of the upsert, applied within the batch)."""
    chosen: dict[str, tuple[TaskResult, int]] = {}
    for n, record in enumerate(results):
        fence = 0 if fences is None else fences[n]
        earlier = chosen.get(record.id)
        if earlier is not None:
            if (fence and earlier[1] > fence) or (earlier[0].success and not record.success):
                continue
            fence = max(fence, earlier[1])
        chosen[record.id] = (record, fence)
    return [r for r, _ in chosen.values()], [f for _, f in chosen.values()]


class DjangoResultStore:
    """``qcore.ResultStore`` on the ``Task`` table. Picklable: a child process sets Django up
    from ``DJANGO_SETTINGS_MODULE`` and writes to the parent's database.

    ``using``: the database alias (default: ``Q_CLUSTER["database"]``, else the router's
    choice for ``Task``). ``save_limit``: successes to keep (0 all, -1 none; failures are
    always kept). ``notifier``: a :class:`qredis.ResultNotifier` told about saved ids, or None.
    """

    def __init__(
        self,
        *,
        using: str | None = None,
        save_limit: int = 250,
        notifier: Any = None,
        context: DjangoContext | None = None,
    ) -> None:
        if isinstance(save_limit, bool) or not isinstance(save_limit, int) or save_limit < -1:
            raise ConfigError(f"save_limit must be an integer >= -1, not {save_limit!r}")
        if using is None:
            from django.db import router

            from qdjango.models import Task

            using = router.db_for_write(Task) or "default"
        self.using = using
        self.save_limit = save_limit
        self.notifier = notifier
        self.context = context or DjangoContext.capture(using)
        self._unpruned = 0
        self._prepared: Any = None

    @classmethod
    def from_settings(cls, *, notify: bool = True) -> DjangoResultStore:
        """A store configured by ``Q_CLUSTER`` (database, save_limit, Redis for notices)."""
        from qdjango.conf import get_settings
        from qdjango.connection import notifier

        conf = get_settings()
        return cls(
            using=conf.database,
            save_limit=conf.save_limit,
            notifier=notifier() if notify else None,
        )

    def __getstate__(self) -> dict[str, Any]:
        return {
            "using": self.using,
            "save_limit": self.save_limit,
            "notifier": self.notifier,
            "context": self.context,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._unpruned = 0
        self._prepared = None

    def __repr__(self) -> str:
        return f"DjangoResultStore(using={self.using!r}, save_limit={self.save_limit})"

    # -- ResultStore ------------------------------------------------------------------------

    def save_many(
        self, results: Sequence[TaskResult], *, fences: Sequence[int] | None = None
    ) -> None:
        """Upsert the records (one statement: their own transaction), publish their ids, then
        prune to ``save_limit`` if this store has saved enough successes since it last did.
        A row saved with a higher fence (``Task.fence``) than a record's is left as it is."""
        self.context.ensure()
        records, marks = _dedupe(results, fences)
        if self.save_limit == -1:
            kept = [n for n, r in enumerate(records) if not r.success]
            records, marks = [records[n] for n in kept], [marks[n] for n in kept]
        if not records:
            _remember(())
            return
        conn = connections[self.using]
        try:
            self._prepare(conn)
            upsert(conn, records, marks)
        except DatabaseError:
            # A connection that broke (a restarted server) is reopened on the next batch,
            # which the cluster retries: the upsert makes the retry harmless.
            if conn.connection is not None and not conn.in_atomic_block:
                conn.close()
            raise
        ids = [r.id for r in records]
        _remember(ids)
        if self.notifier is not None:
            # At once in autocommit; after the commit inside a caller's transaction.
            transaction.on_commit(lambda: self._publish(ids), using=self.using)
        if self.save_limit > 0:
            self._unpruned += sum(1 for r in records if r.success)
            if self._unpruned >= pruning.slack(self.save_limit) and not conn.in_atomic_block:
                self.prune()

    def prune(self) -> int:
        """Delete the successes beyond the newest ``save_limit`` now; how many went. A failure
        is logged, not raised: the saved records stand, and the next prune tries again."""
        if self.save_limit <= 0:
            return 0
        self.context.ensure()
        try:
            deleted = pruning.prune(self.using, self.save_limit)
        except DatabaseError as exc:
            log.warning("results.prune_failed", database=self.using, error=str(exc))
            return 0
        self._unpruned = 0
        return deleted

    def get(self, task_id: str) -> TaskResult | None:
        self.context.ensure()
        from qdjango.models import Task

        task = (
            Task.objects.using(self.using)
            .filter(**({"pk": task_id} if len(task_id) == 32 else {"name": task_id}))
            .order_by("-stopped")
            .first()
        )
        return None if task is None else record_from_task(task)

    def close(self) -> None:
        """Prune what this store left beyond ``save_limit`` (a leaving worker's last batches),
        then give back the notifier's connection."""
        if self._unpruned:
            self.prune()
        if self.notifier is not None:
            self.notifier.close()

    # -- internals --------------------------------------------------------------------------

    def _prepare(self, conn: Any) -> None:
        """Once per database connection: SQLite in WAL mode (see :mod:`qdjango.sqlite`)."""
        if conn.vendor != "sqlite" or conn.in_atomic_block:
            return
        conn.ensure_connection()
        if self._prepared is not conn.connection:
            use_wal(conn)
            self._prepared = conn.connection

    def _publish(self, ids: list[str]) -> None:
        try:
            self.notifier.publish(ids)
        except Exception as exc:
            # The rows are committed; waiters re-check on their own within seconds.
            log.warning("results.notify_failed", count=len(ids), error=str(exc))
