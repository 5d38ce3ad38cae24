"""The Django result store: the cluster's batches of results, upserted into ``Task`` rows.

One :meth:`DjangoResultStore.save_many` is one transaction: one multi-row ``INSERT ... ON
CONFLICT DO UPDATE`` per chunk (SQLite and PostgreSQL), whose ``WHERE`` keeps a success from
ever being replaced by a later failure of the same task, then, when successes were saved and
``save_limit`` is positive, one ``DELETE`` of the successes beyond the newest N. Both run in the
same transaction; on PostgreSQL pruning transactions take turns (an advisory lock), so workers
saving at once keep exactly N.
After the commit the saved ids are published (qredis's :class:`~qredis.ResultNotifier`), which
wakes ``result(..., wait=...)`` callers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import DatabaseError, connections, transaction

from qcore import ConfigError, TaskOptions, TaskResult, get_logger
from qdjango.process import DjangoContext

__all__ = ["DjangoResultStore", "record_from_task", "task_from_record", "was_saved"]

log = get_logger("qdjango.store")

_COLUMNS = (
    "id",
    "name",
    "func",
    "hook",
    "args",
    "kwargs",
    "result",
    "group",
    "started",
    "stopped",
    "success",
    "attempt_count",
    "cluster",
    "options",
    "retried_from",
)


def _clip(value: str | None, limit: int) -> str | None:
    # A too-long dotted path must not fail the whole batch (PostgreSQL refuses it).
    if value is None or len(value) <= limit:
        return value
    return value[: limit - 1] + "…"


def _moment(epoch: float) -> datetime:
    from django.conf import settings

    if settings.USE_TZ:
        return datetime.fromtimestamp(epoch, UTC)
    return datetime.fromtimestamp(epoch)


def _stored_options(value: Any) -> TaskOptions:
    # An unreadable or odd value (not what the store wrote) reads as no options.
    return TaskOptions.from_stored(value if isinstance(value, dict) else None)


def record_from_task(task: Any) -> TaskResult:
    """The record a saved ``Task`` row holds (the reverse of :func:`task_from_record`)."""
    return TaskResult(
        id=task.id,
        name=task.name,
        func=task.func,
        args=tuple(task.args or ()),
        kwargs=dict(task.kwargs or {}),
        result=task.result,
        success=task.success,
        started=task.started.timestamp(),
        stopped=task.stopped.timestamp(),
        attempt_count=task.attempt_count,
        hook=task.hook,
        group=task.group,
        cluster=task.cluster,
        options=_stored_options(task.options),
    )


def task_from_record(record: TaskResult, *, using: str | None = None, saved: bool = True) -> Any:
    """The ``Task`` a record becomes, built without a query (``saved``: it has a row)."""
    from qdjango.models import Task

    task = Task(
        id=record.id,
        name=_clip(record.name, 100),
        func=_clip(record.func, 256),
        hook=_clip(record.hook, 256),
        args=record.args,
        kwargs=record.kwargs,
        result=record.result,
        group=_clip(record.group, 100),
        started=_moment(record.started),
        stopped=_moment(record.stopped),
        success=record.success,
        attempt_count=record.attempt_count,
        cluster=_clip(record.cluster, 100),
        options=record.options.to_mapping() or None,
        retried_from=_clip(record.options.retried_from, 32),
    )
    if saved:
        task._state.adding = False
        task._state.db = using
    return task


# Ids of the last batch this process saved. A worker saves a batch, then calls its hooks:
# the hook runner looks here to tell a saved record from one that was not (``save=False``).
_last_saved: frozenset[str] = frozenset()


def _remember(ids: Iterable[str]) -> None:
    global _last_saved
    _last_saved = frozenset(ids)


def was_saved(task_id: str) -> bool:
    """Whether this process's last saved batch had a record for ``task_id``."""
    return task_id in _last_saved


def _dedupe(results: Iterable[TaskResult]) -> list[TaskResult]:
    """One record per id (a redelivered task can finish twice in one batch): a success wins
    over a failure, otherwise the later record."""
    chosen: dict[str, TaskResult] = {}
    for record in results:
        earlier = chosen.get(record.id)
        if earlier is None or record.success or not earlier.success:
            chosen[record.id] = record
    return list(chosen.values())


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

    def __repr__(self) -> str:
        return f"DjangoResultStore(using={self.using!r}, save_limit={self.save_limit})"

    # -- ResultStore ------------------------------------------------------------------------

    def save_many(self, results: Sequence[TaskResult]) -> None:
        """Upsert the records in one transaction, prune to ``save_limit``, then publish."""
        self.context.ensure()
        records = _dedupe(results)
        if self.save_limit == -1:
            records = [r for r in records if not r.success]
        if not records:
            _remember(())
            return
        conn = connections[self.using]
        try:
            with transaction.atomic(using=self.using):
                prune = self.save_limit > 0 and any(r.success for r in records)
                if prune:
                    _serialize_pruning(conn)
                _upsert(conn, records)
                if prune:
                    self._prune(self.save_limit)
                ids = [r.id for r in records]
                if self.notifier is not None:
                    transaction.on_commit(lambda: self._publish(ids), using=self.using)
            _remember(ids)
        except DatabaseError:
            # A connection that broke (a restarted server) is reopened on the next batch,
            # which the cluster retries: the upsert makes the retry harmless.
            if conn.connection is not None and not conn.in_atomic_block:
                conn.close()
            raise

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
        if self.notifier is not None:
            self.notifier.close()

    # -- internals --------------------------------------------------------------------------

    def _publish(self, ids: list[str]) -> None:
        try:
            self.notifier.publish(ids)
        except Exception as exc:
            # The rows are committed; waiters re-check on their own within seconds.
            log.warning("results.notify_failed", count=len(ids), error=str(exc))

    def _prune(self, keep: int) -> None:
        from qdjango.models import Task

        tasks = Task.objects.using(self.using)
        beyond = tasks.filter(success=True).order_by("-stopped", "-id").values("id")[keep:]
        if connections[self.using].features.allow_sliced_subqueries_with_in:
            tasks.filter(pk__in=beyond).delete()
        else:
            tasks.filter(pk__in=list(beyond.values_list("id", flat=True))).delete()


# Any 64-bit number of our own: the advisory lock that takes turns at pruning.
_PRUNE_LOCK = 0x51_646A_616E_676F


def _serialize_pruning(conn: Any) -> None:
    """Make pruning transactions take turns until they commit.

    Under READ COMMITTED two writers pruning at once each miss the other's uncommitted rows,
    and more than ``save_limit`` successes survive (Django Q's "successful tasks grow beyond
    save_limit"). Taken before the upsert, so no writer ever holds a row lock while waiting.
    SQLite needs nothing: its writers already take turns (one write transaction at a time).
    """
    if conn.vendor == "postgresql":
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PRUNE_LOCK])


def _upsert(conn: Any, records: list[TaskResult]) -> None:
    if conn.vendor not in ("sqlite", "postgresql"):
        _upsert_portable(conn, records)
        return
    rows = _rows(conn, records)
    step = _rows_per_statement(conn, len(_COLUMNS))
    with conn.cursor() as cursor:
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            cursor.execute(_upsert_sql(conn, len(chunk)), [v for row in chunk for v in row])


def _rows(conn: Any, records: list[TaskResult]) -> list[tuple[Any, ...]]:
    """Column values as the driver takes them, without Django's per-field machinery (which
    costs more than the INSERT itself). Each conversion is what the field would do: pickled
    fields are signed bytes (NULL for None), datetimes are what the backend's
    ``adapt_datetimefield_value`` makes of them."""
    from django.conf import settings

    from qdjango.conf import record_codec

    encode = record_codec().encode
    tz = conn.timezone if settings.USE_TZ else None
    if conn.vendor == "sqlite":
        # SQLite stores text: naive, in the connection's time zone (UTC unless set).
        def moment(epoch: float) -> Any:
            return str(datetime.fromtimestamp(epoch, tz).replace(tzinfo=None))
    elif tz is not None:

        def moment(epoch: float) -> Any:
            return datetime.fromtimestamp(epoch, UTC)
    else:

        def moment(epoch: float) -> Any:
            return datetime.fromtimestamp(epoch)

    def pickled(value: Any) -> bytes | None:
        return None if value is None else encode(value)

    def options(value: TaskOptions) -> bytes | None:
        stored = value.to_mapping()
        return encode(stored) if stored else None

    return [
        (
            r.id,
            _clip(r.name, 100),
            _clip(r.func, 256),
            _clip(r.hook, 256),
            pickled(r.args),
            pickled(r.kwargs),
            pickled(r.result),
            _clip(r.group, 100),
            moment(r.started),
            moment(r.stopped),
            bool(r.success),
            int(r.attempt_count),
            _clip(r.cluster, 100),
            options(r.options),
            _clip(r.options.retried_from, 32),
        )
        for r in records
    ]


def _rows_per_statement(conn: Any, width: int) -> int:
    limit = 65535 if conn.vendor == "postgresql" else conn.features.max_query_params
    if conn.vendor == "sqlite":
        try:
            limit = conn.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        except (AttributeError, sqlite3.Error):
            pass
    return max(1, min(500, limit // width))


_SQL_CACHE: dict[tuple[str, str, int], str] = {}


def _upsert_sql(conn: Any, rows: int) -> str:
    key = (conn.vendor, conn.alias, rows)
    sql = _SQL_CACHE.get(key)
    if sql is not None:
        return sql
    from qdjango.models import Task

    q = conn.ops.quote_name
    table = q(Task._meta.db_table)
    cols = ", ".join(q(Task._meta.get_field(c).column) for c in _COLUMNS)
    one = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    greatest = "GREATEST" if conn.vendor == "postgresql" else "MAX"
    attempts = q("attempt_count")
    updates = [f"{q(c)} = EXCLUDED.{q(c)}" for c in _COLUMNS if c not in ("id", "attempt_count")]
    updates.append(f"{attempts} = {greatest}({table}.{attempts}, EXCLUDED.{attempts})")
    success = q("success")
    sql = (
        f"INSERT INTO {table} ({cols}) VALUES {', '.join([one] * rows)} "
        f"ON CONFLICT ({q('id')}) DO UPDATE SET {', '.join(updates)} "
        # A later failure of a task that already succeeded changes nothing.
        f"WHERE NOT {table}.{success} OR EXCLUDED.{success}"
    )
    _SQL_CACHE[key] = sql
    return sql


def _upsert_portable(conn: Any, records: list[TaskResult]) -> None:
    """Other databases: read what exists, then one bulk insert and one bulk update."""
    from qdjango.models import Task

    tasks = Task.objects.using(conn.alias)
    existing = {
        pk: (ok, attempts)
        for pk, ok, attempts in tasks.filter(pk__in=[r.id for r in records])
        .select_for_update()
        .values_list("pk", "success", "attempt_count")
    }
    fresh, changed = [], []
    for record in records:
        task = task_from_record(record, using=conn.alias, saved=False)
        if record.id not in existing:
            fresh.append(task)
            continue
        ok, attempts = existing[record.id]
        if ok and not record.success:
            continue
        task.attempt_count = max(attempts, task.attempt_count)
        changed.append(task)
    tasks.bulk_create(fresh)
    if changed:
        tasks.bulk_update(changed, [c for c in _COLUMNS if c != "id"])
