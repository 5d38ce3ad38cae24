"""``manage.py q_import_django_q``: bring a django-q2 site's history into Q's tables."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from qcore import QError
from qdjango.django_q2 import Part, Report, Schedules, Source, TaskHistory

# Each kind of django-q2 row Q imports, in the order they run.
PARTS: tuple[Part, ...] = (TaskHistory(), Schedules())


class Command(BaseCommand):
    help = (
        "Import a django-q2 site's task history (django_q_task) and schedules "
        "(django_q_schedule) into Q's tables. Safe to run again: rows Q already has are left "
        "alone. Pickled values are read as plain data only."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--database",
            default="default",
            help="the database alias holding django-q2's tables (default: 'default')",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="read and check everything, print what would be imported, write nothing",
        )
        parser.add_argument(
            "--only",
            action="append",
            choices=[part.name for part in PARTS],
            help="import only this part (repeatable; default: all of them)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from django.db import connections, router

        from qdjango.models import Task

        if options["database"] not in connections:
            raise CommandError(f"no database {options['database']!r} in DATABASES")
        source = Source(connections[options["database"]])
        using = router.db_for_write(Task) or "default"
        report = Report(self.stdout, dry_run=options["dry_run"])
        wanted = set(options["only"] or [part.name for part in PARTS])
        try:
            for part in PARTS:
                if part.name in wanted:
                    part.run(source, using=using, dry_run=options["dry_run"], report=report)
        except QError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(report.summary())
        if report.skipped:
            raise CommandError(
                f"{report.skipped} row(s) skipped (listed above); the others were "
                f"{'checked' if options['dry_run'] else 'imported'}",
                returncode=1,
            )
