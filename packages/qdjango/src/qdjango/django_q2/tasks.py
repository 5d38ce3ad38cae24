"""django-q2's task history (``django_q_task``) into Q's ``Task`` rows.

A row keeps its id, so a second import finds it already there and changes nothing (a row Q
already has, imported or saved by a cluster, is never overwritten). The plain columns are
checked like a form (an id of 32 hex digits, a func, two times); the pickled ones are read by
:func:`~qdjango.django_q2.pickles.read_pickled`: a value it refuses is stored as an
:class:`~qdjango.fields.Unreadable` marker saying why, and the row is reported. A row whose
plain columns are broken, or whose values are not pickles at all, is skipped and reported.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from qcore import QError
from qdjango.django_q2.pickles import BadValue, UnsafeValue, read_pickled
from qdjango.django_q2.report import PartReport, Report, Source

__all__ = ["BadRow", "BadTable", "TaskHistory", "task_from_row"]

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
)
PICKLED = ("args", "kwargs", "result")
LIMITS = {"name": 100, "func": 256, "hook": 256, "group": 100, "cluster": 100}
TASK_ID = re.compile(r"[0-9a-f]{32}")


class BadTable(QError):
    """django-q2's table is not what the import expects."""


class BadRow(QError):
    """A row that cannot become a Task (its reason is the message)."""


def _text(row: dict[str, Any], column: str, *, required: bool = False) -> str | None:
    value = row[column]
    if value is None or value == "":
        if required:
            raise BadRow(f"{column} is empty")
        return None
    if not isinstance(value, str):
        raise BadRow(f"{column} is not text: {value!r}")
    if len(value) > LIMITS[column]:
        raise BadRow(f"{column} is longer than {LIMITS[column]} characters")
    return value


def _time(row: dict[str, Any], column: str) -> dt.datetime:
    from django.conf import settings
    from django.utils import timezone
    from django.utils.dateparse import parse_datetime

    value = row[column]
    if isinstance(value, str):
        value = parse_datetime(value)
    if not isinstance(value, dt.datetime):
        raise BadRow(f"{column} is not a date and time: {row[column]!r}")
    if settings.USE_TZ and timezone.is_naive(value):
        # Django stores aware times as UTC on databases without time zone support (SQLite).
        value = value.replace(tzinfo=dt.UTC)
    return value


def _number(row: dict[str, Any], column: str) -> int:
    value = row[column]
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRow(f"{column} is not a number: {value!r}")
    return value


def task_from_row(row: dict[str, Any], notes: list[str]) -> Any:
    """An unsaved Task from a ``django_q_task`` row; raises BadRow, appends to ``notes``
    each value left out."""
    from qdjango.fields import Unreadable
    from qdjango.models import Task

    task_id = row["id"]
    if not isinstance(task_id, str) or not TASK_ID.fullmatch(task_id):
        raise BadRow(f"id {task_id!r} is not a task id (32 hex digits)")
    values: dict[str, Any] = {}
    for column in PICKLED:
        if row[column] is None:
            values[column] = None
            continue
        try:
            values[column] = read_pickled(row[column])
        except UnsafeValue as exc:
            values[column] = Unreadable(f"not imported from django-q2: {exc}")
            notes.append(f"{column} ({exc})")
        except BadValue as exc:
            raise BadRow(f"{column}: {exc}") from None
    success = row["success"]
    if success not in (True, False, 0, 1):
        raise BadRow(f"success is not a boolean: {success!r}")
    return Task(
        id=task_id,
        name=_text(row, "name") or task_id,
        func=_text(row, "func", required=True),
        hook=_text(row, "hook"),
        group=_text(row, "group"),
        cluster=_text(row, "cluster"),
        started=_time(row, "started"),
        stopped=_time(row, "stopped"),
        success=bool(success),
        attempt_count=_number(row, "attempt_count"),
        **values,
    )


class TaskHistory:
    """The ``tasks`` part: ``django_q_task`` rows, successes and failures."""

    name = "tasks"
    table = "django_q_task"
    batch = 500

    def run(self, source: Source, *, using: str, dry_run: bool, report: Report) -> None:
        part = report.part(self.name)
        if not source.has_table(self.table):
            part.missing_table = self.table
            return
        missing = set(COLUMNS) - source.columns(self.table)
        if missing:
            raise BadTable(
                f"{self.table} on database {source.alias!r} has no column(s) "
                f"{', '.join(sorted(missing))}: is it django-q2's?"
            )
        batch: list[tuple[dict[str, Any], list[str]]] = []
        for row in source.rows(self.table, COLUMNS, order_by="stopped", batch=self.batch):
            batch.append((row, []))
            if len(batch) >= self.batch:
                self._import(batch, part, using=using, dry_run=dry_run, report=report)
                batch = []
        if batch:
            self._import(batch, part, using=using, dry_run=dry_run, report=report)

    def _import(
        self,
        batch: list[tuple[dict[str, Any], list[str]]],
        part: PartReport,
        *,
        using: str,
        dry_run: bool,
        report: Report,
    ) -> None:
        from django.db import transaction

        from qdjango.models import Task

        ids = [str(row["id"]) for row, _ in batch]
        present = set(Task.objects.using(using).filter(pk__in=ids).values_list("pk", flat=True))
        new: dict[str, Any] = {}
        for row, notes in batch:
            label = str(row["id"])
            if label in present or label in new:
                part.present += 1
                continue
            try:
                task = task_from_row(row, notes)
            except BadRow as exc:
                report.skip(part, label, str(exc))
                continue
            for note in notes:
                report.note(part, label, note)
            new[label] = task
        if new and not dry_run:
            with transaction.atomic(using=using):
                Task.objects.using(using).bulk_create(new.values())
        part.imported += len(new)
