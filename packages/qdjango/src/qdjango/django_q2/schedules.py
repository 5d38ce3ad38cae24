"""django-q2's schedules (``django_q_schedule``) into Q's ``Schedule`` rows.

Columns are the same (django-q2 keeps ``args`` and ``kwargs`` as Python literals, ``q_options``
inside ``kwargs``). A row keeps its id, so a second import finds it and changes nothing; an id
Q already uses for another schedule is reported and skipped. Each row is validated as Q's admin
would (cron, literals, function paths, types); a row that fails is skipped with the reason.
django-q2 options Q has no use for (``broker_name``, ``cluster``, ``cached``, ...) are dropped
from ``q_options`` and reported. Imported rows are mirrored into Redis at once (or at the
next ``manage.py qcluster`` start when Redis cannot be reached).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from qdjango.django_q2.report import PartReport, Report, Source
from qdjango.django_q2.tasks import BadTable

__all__ = ["Schedules"]

COLUMNS = (
    "id",
    "name",
    "func",
    "hook",
    "args",
    "kwargs",
    "schedule_type",
    "minutes",
    "repeats",
    "next_run",
    "cron",
    "task",
    "cluster",
    "intended_date_kwarg",
)
SAME = ("func", "args", "kwargs", "schedule_type", "minutes", "cron")


def _aware(value: Any) -> Any:
    from django.conf import settings
    from django.utils import timezone
    from django.utils.dateparse import parse_datetime

    if isinstance(value, str):
        value = parse_datetime(value)
    if isinstance(value, dt.datetime) and settings.USE_TZ and timezone.is_naive(value):
        value = value.replace(tzinfo=dt.UTC)  # stored as UTC where the database has no zones
    return value


def schedule_from_row(row: dict[str, Any], notes: list[str]) -> Any:
    """An unsaved, validated Schedule from a ``django_q_schedule`` row; raises
    ValidationError or ValueError naming the problem, appends to ``notes`` what is left out."""
    from qcore import Q_OPTION_NAMES
    from qdjango.models import Schedule
    from qdjango.schedules import SCHEDULE_Q_OPTIONS, parse_kwargs

    values = {c: row[c] for c in COLUMNS}
    values["next_run"] = _aware(values["next_run"])
    kwargs = parse_kwargs(values["kwargs"])
    q_options = kwargs.get("q_options")
    if isinstance(q_options, dict):
        dropped = sorted(set(q_options) - SCHEDULE_Q_OPTIONS)
        if dropped:
            kept = {k: v for k, v in q_options.items() if k in SCHEDULE_Q_OPTIONS}
            kwargs["q_options"] = kept
            if not kept:
                del kwargs["q_options"]
            values["kwargs"] = repr(kwargs) if kwargs else None
            known = [k for k in dropped if k in Q_OPTION_NAMES]
            notes.append(
                f"q_options {', '.join(dropped)}" + (" (set by Q itself)" if known else "")
            )
    schedule = Schedule(**values)
    schedule.full_clean(validate_unique=False)  # a present id is told apart by the caller
    return schedule


class Schedules:
    """The ``schedules`` part: ``django_q_schedule`` rows."""

    name = "schedules"
    table = "django_q_schedule"

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
        rows = list(source.rows(self.table, COLUMNS, order_by="id"))
        new = self._check(rows, part, using=using, report=report)
        if new and not dry_run:
            self._save(new, using=using, part=part, report=report)
        part.imported += len(new)

    def _check(
        self, rows: list[dict[str, Any]], part: PartReport, *, using: str, report: Report
    ) -> list[Any]:
        from django.core.exceptions import ValidationError

        from qdjango.models import Schedule

        present = {
            s.pk: s for s in Schedule.objects.using(using).filter(pk__in=[r["id"] for r in rows])
        }
        new = []
        for row in rows:
            label = f"#{row['id']} ({row['name'] or row['func']})"
            notes: list[str] = []
            try:
                schedule = schedule_from_row(row, notes)
            except ValidationError as exc:
                reasons = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
                report.skip(part, label, reasons)
                continue
            except (ValueError, SyntaxError) as exc:
                report.skip(part, label, f"kwargs: {exc}")
                continue
            existing = present.get(row["id"])
            if existing is not None:
                if all(getattr(existing, c) == getattr(schedule, c) for c in SAME):
                    part.present += 1
                else:
                    report.skip(part, label, f"Q already has another schedule with id {row['id']}")
                continue
            for note in notes:
                report.note(part, label, note)
            new.append(schedule)
        return new

    def _save(self, new: list[Any], *, using: str, part: PartReport, report: Report) -> None:
        from django.core.management.color import no_style
        from django.db import connections, transaction

        from qdjango.models import Schedule
        from qdjango.schedule_rows import sign_schedule
        from qdjango.schedules import mirror

        for schedule in new:
            sign_schedule(schedule)  # imported by the site's operator: Q vouches for it
        connection = connections[using]
        with transaction.atomic(using=using):
            Schedule.objects.using(using).bulk_create(new)
            # Ids were given: move the id sequence past them (PostgreSQL), or the next
            # schedule Q makes would collide.
            with connection.cursor() as cursor:
                for sql in connection.ops.sequence_reset_sql(no_style(), [Schedule]):
                    cursor.execute(sql)
        for schedule in new:
            try:
                mirror(schedule)
            except Exception as exc:
                report.note(
                    part,
                    f"#{schedule.pk}",
                    f"its copy in Redis ({type(exc).__name__}: {exc}; "
                    "manage.py qcluster writes it when it starts)",
                )
