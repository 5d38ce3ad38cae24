"""Records into ``Task`` rows: one upsert statement per batch, on each database's bulk path.

Every path keeps the store's rules: a row per id (``ON CONFLICT (id) DO UPDATE``), a row of a
higher fence (the fencing token of the delivery that saved it) never replaced by a record of a
lower one, a success never replaced by a later failure (the update's ``WHERE``), the attempt
count and the fence never lowered.

- PostgreSQL: ``INSERT ... SELECT * FROM unnest(<one array per column>)``: one parameter a column
  whatever the batch's size, so the statement is one short text the driver parses once and the
  server plans once, and a batch is always one statement (a transaction of its own).
- SQLite: a multi-row ``INSERT ... VALUES`` of up to 500 rows (a batch larger than that is
  several statements in one transaction), the cluster's writers taking turns
  (:func:`qdjango.sqlite.writer_turn`).
- Other databases: read what exists, then one bulk insert and one bulk update.

Rows are built without Django's per-field machinery (which costs more than the statement):
each conversion is what the field would do, pickled fields signed by the records' codec, and
each row signed as a whole (what a retry may trust: :mod:`qdjango.records`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction

from qcore import TaskOptions, TaskResult
from qdjango.records import clip, row_signature, sign_task
from qdjango.sqlite import writer_turn

__all__ = ["COLUMNS", "clip", "upsert"]

COLUMNS = (
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
    "signature",
    "run_time",
    "fence",
)
_SQLITE_ROWS = 500
_ZERO = timedelta(0)
_EPOCH = datetime(1970, 1, 1)
_UNSEEN = object()
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)


def upsert(conn: Any, records: Sequence[TaskResult], fences: Sequence[int] | None = None) -> None:
    """Upsert ``records`` (one per id) through Django connection ``conn``; ``fences``: each
    record's fencing token (0 or None: none)."""
    marks = list(fences) if fences is not None else [0] * len(records)
    if conn.vendor == "postgresql":
        columns = [list(c) for c in zip(*_rows(conn, records, marks))]
        binary = _binding_cursor(conn)
        with binary or conn.cursor() as cursor:
            cursor.execute(_postgres_sql(conn, binary is not None), columns)
    elif conn.vendor == "sqlite":
        rows = _rows(conn, records, marks)
        step = _sqlite_rows_per_statement(conn)
        with writer_turn(conn):
            if len(rows) <= step:
                _sqlite_insert(conn, rows)
            else:
                with transaction.atomic(using=conn.alias):
                    for start in range(0, len(rows), step):
                        _sqlite_insert(conn, rows[start : start + step])
    else:
        with transaction.atomic(using=conn.alias):
            _upsert_portable(conn, records, marks)


def _sqlite_insert(conn: Any, rows: list[tuple[Any, ...]]) -> None:
    with conn.cursor() as cursor:
        cursor.execute(_sqlite_sql(conn, len(rows)), [v for row in rows for v in row])


def _rows(conn: Any, records: Sequence[TaskResult], fences: Sequence[int]) -> list[tuple[Any, ...]]:
    """Column values as the driver takes them. Pickled fields are signed bytes (NULL for
    None); datetimes are what the backend's ``adapt_datetimefield_value`` makes of them."""
    from django.conf import settings

    from qdjango.conf import record_codec

    encode = record_codec().encode
    tz = conn.timezone if settings.USE_TZ else None
    if conn.vendor == "sqlite" and tz is not None and tz.utcoffset(None) == _ZERO:
        # SQLite stores text: naive UTC here. Adding to the epoch is what fromtimestamp()
        # gives, for half the cost.
        def moment(epoch: float) -> Any:
            return str(_EPOCH + timedelta(seconds=epoch))
    elif conn.vendor == "sqlite":
        # Naive, in the connection's time zone (or local time without USE_TZ).
        def moment(epoch: float) -> Any:
            return str(datetime.fromtimestamp(epoch, tz).replace(tzinfo=None))
    elif tz is not None:

        def moment(epoch: float) -> Any:
            return _EPOCH_UTC + timedelta(seconds=epoch)
    else:

        def moment(epoch: float) -> Any:
            return datetime.fromtimestamp(epoch)

    # Most tasks have no kwargs: their column is the same signed bytes every time.
    empty: dict[Any, Any] = {}
    no_kwargs = encode(empty)

    def pickled(value: Any) -> bytes | None:
        return None if value is None else encode(value)

    # The tasks of a batch mostly share their options (every django.tasks task has the same
    # runner): each distinct set is signed once (tools/bench/README.md, 'issue 14').
    signed_options: dict[tuple[Any, ...], bytes] = {}
    # And the options a worker read are one object per distinct set (qcore.wire): known by
    # identity, they are not even turned into a mapping again (the records hold them: an id
    # is not reused within the batch).
    by_object: dict[int, bytes | None] = {}

    def options(value: TaskOptions) -> bytes | None:
        found = by_object.get(id(value), _UNSEEN)
        if found is _UNSEEN:
            found = by_object[id(value)] = _signed_options(value)
        return found  # type: ignore[return-value]

    def _signed_options(value: TaskOptions) -> bytes | None:
        stored = value.to_mapping()
        if not stored:
            return None
        key = tuple((name, type(v), v) for name, v in stored.items())
        try:
            found = signed_options.get(key)
        except TypeError:  # a value that cannot be a key: signed as it is
            return encode(stored)
        if found is None:
            found = signed_options[key] = encode(stored)
        return found

    rows = []
    for r, fence in zip(records, fences):
        func, hook, group = clip(r.func, 256), clip(r.hook, 256), clip(r.group, 100)
        args = pickled(r.args)
        kwargs = no_kwargs if r.kwargs == empty else pickled(r.kwargs)
        opts = options(r.options)
        rows.append(
            (
                r.id,
                clip(r.name, 100),
                func,
                hook,
                args,
                kwargs,
                pickled(r.result),
                group,
                moment(r.started),
                moment(r.stopped),
                bool(r.success),
                int(r.attempt_count),
                clip(r.cluster, 100),
                opts,
                clip(r.options.retried_from, 32),
                row_signature(r.id, func, hook, group, args, kwargs, opts),
                r.run_time,
                int(fence),
            )
        )
    return rows


def _sqlite_rows_per_statement(conn: Any) -> int:
    limit = conn.features.max_query_params
    try:
        limit = conn.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except (AttributeError, sqlite3.Error):
        pass
    return max(1, min(_SQLITE_ROWS, limit // len(COLUMNS)))


_SQL_CACHE: dict[tuple[str, str, int], str] = {}


def _conflict_clause(conn: Any, table: str) -> str:
    q = conn.ops.quote_name
    greatest = "GREATEST" if conn.vendor == "postgresql" else "MAX"
    kept = ("id", "attempt_count", "fence")
    updates = [f"{q(c)} = EXCLUDED.{q(c)}" for c in COLUMNS if c not in kept]
    for column in (q("attempt_count"), q("fence")):
        updates.append(f"{column} = {greatest}({table}.{column}, EXCLUDED.{column})")
    fence = q("fence")
    return (
        f"ON CONFLICT ({q('id')}) DO UPDATE SET {', '.join(updates)} "
        # A superseded delivery's late save (a lower fence) changes nothing; nor does a
        # later failure of a task that already succeeded.
        f"WHERE (EXCLUDED.{fence} = 0 OR {table}.{fence} <= EXCLUDED.{fence}) "
        f"AND (NOT {table}.{q('success')} OR EXCLUDED.{q('success')})"
    )


def _head(conn: Any) -> tuple[str, str]:
    from qdjango.models import Task

    q = conn.ops.quote_name
    table = q(Task._meta.db_table)
    cols = ", ".join(q(Task._meta.get_field(c).column) for c in COLUMNS)
    return table, f"INSERT INTO {table} ({cols})"


def _sqlite_sql(conn: Any, rows: int) -> str:
    key = (conn.vendor, conn.alias, rows)
    sql = _SQL_CACHE.get(key)
    if sql is None:
        table, insert = _head(conn)
        one = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
        sql = f"{insert} VALUES {', '.join([one] * rows)} {_conflict_clause(conn, table)}"
        _SQL_CACHE[key] = sql
    return sql


def _binding_cursor(conn: Any) -> Any:
    """A cursor that binds on the server, in binary, wrapped as Django wraps its own (query
    logging, ``execute_wrapper``); None under psycopg2. Django's own cursors bind on the
    client, which for an array per column means quoting every element of each in Python."""
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    if not is_psycopg3:
        return None
    import psycopg

    conn.ensure_connection()
    with conn.wrap_database_errors:
        raw = psycopg.Cursor(conn.connection)
        return conn.make_debug_cursor(raw) if conn.queries_logged else conn.make_cursor(raw)


def _postgres_sql(conn: Any, binary: bool) -> str:
    key = (conn.vendor, conn.alias, int(binary))
    sql = _SQL_CACHE.get(key)
    if sql is None:
        from qdjango.models import Task

        table, insert = _head(conn)
        mark = "%b" if binary else "%s"
        arrays = ", ".join(f"{mark}::{Task._meta.get_field(c).db_type(conn)}[]" for c in COLUMNS)
        sql = f"{insert} SELECT * FROM unnest({arrays}) {_conflict_clause(conn, table)}"
        _SQL_CACHE[key] = sql
    return sql


def _upsert_portable(conn: Any, records: Sequence[TaskResult], fences: Sequence[int]) -> None:
    """Other databases: read what exists, then one bulk insert and one bulk update."""
    from qdjango.models import Task
    from qdjango.store import task_from_record

    tasks = Task.objects.using(conn.alias)
    existing = {
        pk: (ok, attempts, fence)
        for pk, ok, attempts, fence in tasks.filter(pk__in=[r.id for r in records])
        .select_for_update()
        .values_list("pk", "success", "attempt_count", "fence")
    }
    fresh, changed = [], []
    for record, fence in zip(records, fences):
        task = task_from_record(record, using=conn.alias, saved=False)
        task.fence = fence
        sign_task(task)
        if record.id not in existing:
            fresh.append(task)
            continue
        ok, attempts, stored = existing[record.id]
        if (fence and stored > fence) or (ok and not record.success):
            continue
        task.attempt_count = max(attempts, task.attempt_count)
        task.fence = max(stored, fence)
        changed.append(task)
    tasks.bulk_create(fresh)
    if changed:
        tasks.bulk_update(changed, [c for c in COLUMNS if c != "id"])
