"""What an import part reads from (:class:`Source`), what it says (:class:`Report`), and the
shape every part has (:class:`Part`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

__all__ = ["Part", "PartReport", "Report", "Source"]


class Source:
    """django-q2's tables on one database connection, read with plain SQL (django-q2 need
    not be installed)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    @property
    def alias(self) -> str:
        return str(self.connection.alias)

    def has_table(self, table: str) -> bool:
        with self.connection.cursor() as cursor:
            return table in self.connection.introspection.table_names(cursor)

    def columns(self, table: str) -> set[str]:
        with self.connection.cursor() as cursor:
            described = self.connection.introspection.get_table_description(cursor, table)
        return {column.name for column in described}

    def rows(
        self, table: str, columns: Sequence[str], *, order_by: str, batch: int = 500
    ) -> Iterator[dict[str, Any]]:
        """Every row of ``table`` as a dict, in ``order_by`` order, ``batch`` at a time."""
        quote = self.connection.ops.quote_name
        names = ", ".join(quote(c) for c in columns)
        sql = f"SELECT {names} FROM {quote(table)} ORDER BY {quote(order_by)}"
        with self.connection.cursor() as cursor:
            cursor.execute(sql)
            while True:
                found = cursor.fetchmany(batch)
                if not found:
                    return
                for values in found:
                    yield dict(zip(columns, values, strict=True))


@dataclass
class PartReport:
    """What one part did (or, in a dry run, would do)."""

    name: str
    imported: int = 0
    present: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(row, reason): rows not imported."""
    notes: list[tuple[str, str]] = field(default_factory=list)
    """(row, what): rows imported with something left out."""
    missing_table: str | None = None


class Report:
    """Every part's report, written as it goes and summed up at the end."""

    def __init__(self, out: TextIO, *, dry_run: bool) -> None:
        self.out = out
        self.dry_run = dry_run
        self.parts: list[PartReport] = []

    def part(self, name: str) -> PartReport:
        found = PartReport(name)
        self.parts.append(found)
        return found

    def skip(self, part: PartReport, row: str, reason: str) -> None:
        part.skipped.append((row, reason))
        self.out.write(f"{part.name}: skipped {row}: {reason}\n")

    def note(self, part: PartReport, row: str, what: str) -> None:
        part.notes.append((row, what))
        verb = "would import" if self.dry_run else "imported"
        self.out.write(f"{part.name}: {verb} {row} without {what}\n")

    @property
    def skipped(self) -> int:
        return sum(len(p.skipped) for p in self.parts)

    def summary(self) -> str:
        verb = "would import" if self.dry_run else "imported"
        lines = []
        for p in self.parts:
            if p.missing_table:
                lines.append(f"{p.name}: no table {p.missing_table}, nothing to import")
                continue
            lines.append(
                f"{p.name}: {verb} {p.imported}, already in Q {p.present}, "
                f"skipped {len(p.skipped)}, "
                f"imported with values left out {len({row for row, _ in p.notes})}"
            )
        return "\n".join(lines)


class Part(Protocol):
    """One kind of django-q2 row to import (task history, and schedules when Q has them)."""

    name: str
    """What ``--only`` calls it."""
    table: str
    """django-q2's table it reads."""

    def run(self, source: Source, *, using: str, dry_run: bool, report: Report) -> None:
        """Import what ``source`` holds into Q's tables on ``using``; idempotent."""
        ...
