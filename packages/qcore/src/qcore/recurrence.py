"""When a schedule is due next: every schedule type, pure Python, no I/O.

Due times are whole milliseconds since the epoch (UTC), so two clusters computing the same
schedule get the same number, and a firing's identity (schedule, due time) is exact.

Occurrences are counted from the schedule's *anchor* (its first due time), never from the
previous firing, so nothing drifts:

- ``MINUTES`` and ``HOURLY`` are fixed lengths of real time (``anchor + k * step``): a DST
  change does not move them.
- ``DAILY`` to ``YEARLY`` keep the anchor's wall-clock time in the schedule's time zone. Months
  and years clamp to the month's end from the anchor's day (an anchor on the 31st gives Feb 28,
  then Mar 31); Feb 29 gives Feb 28 in other years.
- ``CRON`` is croniter's reading of the expression on the wall clock of that time zone.

A wall-clock time that does not exist (the hour skipped when clocks go forward) is taken with
the offset before the change, so a daily 02:30 fires at 03:30 that night, once; a time that
happens twice (clocks going back) is taken the first time. Each wall-clock occurrence maps to
one instant, and an occurrence is only ever taken strictly after the previous one, so a
schedule neither fires twice nor skips a day across a DST change.
"""

from __future__ import annotations

import calendar
import enum
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from qcore.errors import ConfigError

__all__ = ["ScheduleType", "check_cron", "first_due", "next_due", "time_zone"]


class ScheduleType(enum.StrEnum):
    """Django Q's schedule types, with their one- or two-letter codes."""

    ONCE = "O"
    MINUTES = "I"
    HOURLY = "H"
    DAILY = "D"
    WEEKLY = "W"
    BIWEEKLY = "BW"
    MONTHLY = "M"
    BIMONTHLY = "BM"
    QUARTERLY = "Q"
    YEARLY = "Y"
    CRON = "C"


_DAYS = {ScheduleType.DAILY: 1, ScheduleType.WEEKLY: 7, ScheduleType.BIWEEKLY: 14}
_MONTHS = {
    ScheduleType.MONTHLY: 1,
    ScheduleType.BIMONTHLY: 2,
    ScheduleType.QUARTERLY: 3,
    ScheduleType.YEARLY: 12,
}


@lru_cache(maxsize=64)
def time_zone(name: str) -> tzinfo:
    """The IANA time zone ``name`` (``"UTC"``, ``"Europe/Amsterdam"``)."""
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(
            f"unknown time zone {name!r}: use an IANA name such as 'UTC' or 'Europe/Amsterdam'"
        ) from None


def check_cron(expression: str) -> str:
    """``expression`` if croniter reads it; a :class:`ConfigError` saying why not otherwise."""
    from croniter import croniter

    if not isinstance(expression, str) or not expression.strip():
        raise ConfigError("a cron schedule needs a cron expression, such as '*/5 * * * *'")
    if not croniter.is_valid(expression):
        raise ConfigError(
            f"{expression!r} is not a valid cron expression (minute hour day month weekday, "
            "such as '30 2 * * *')"
        )
    return expression


def first_due(
    kind: ScheduleType, start_ms: int, *, cron: str | None = None, tz: str = "UTC"
) -> int:
    """The first due time of a schedule starting at ``start_ms``: ``start_ms`` itself, except
    for a cron schedule, whose first occurrence at or after ``start_ms`` it is."""
    if kind is not ScheduleType.CRON:
        return start_ms
    return _next_cron(_cron(cron), start_ms - 1, time_zone(tz))


def next_due(
    kind: ScheduleType,
    anchor_ms: int,
    after_ms: int,
    *,
    minutes: int | None = None,
    cron: str | None = None,
    tz: str = "UTC",
) -> int | None:
    """The first occurrence strictly after ``after_ms`` of a schedule anchored at
    ``anchor_ms`` (its first due time); None for ``ONCE``, which has no second one."""
    kind = ScheduleType(kind)
    if kind is ScheduleType.ONCE:
        return None
    if kind is ScheduleType.CRON:
        return _next_cron(_cron(cron), max(after_ms, anchor_ms - 1), time_zone(tz))
    if kind is ScheduleType.MINUTES or kind is ScheduleType.HOURLY:
        step = 3_600_000 if kind is ScheduleType.HOURLY else _minutes(minutes) * 60_000
        if after_ms < anchor_ms:
            return anchor_ms
        return anchor_ms + ((after_ms - anchor_ms) // step + 1) * step
    zone = time_zone(tz)
    wall = _wall(anchor_ms, zone)
    after_wall = _wall(after_ms, zone)
    if kind in _DAYS:
        days = _DAYS[kind]
        k = max(0, (after_wall.date() - wall.date()).days // days - 1)
        while True:
            due = _instant(wall + timedelta(days=k * days), zone)
            if due > after_ms:
                return due
            k += 1
    months = _MONTHS[kind]
    elapsed = (after_wall.year - wall.year) * 12 + after_wall.month - wall.month
    k = max(0, elapsed // months - 1)
    while True:
        due = _instant(_add_months(wall, k * months), zone)
        if due > after_ms:
            return due
        k += 1


def _minutes(minutes: int | None) -> int:
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
        raise ConfigError(f"a Minutes schedule needs minutes >= 1, not {minutes!r}")
    return minutes


def _cron(cron: str | None) -> str:
    if cron is None:
        raise ConfigError("a cron schedule needs a cron expression, such as '*/5 * * * *'")
    return cron


def _wall(at_ms: int, zone: tzinfo) -> datetime:
    """The naive wall-clock time of an instant in ``zone``."""
    return datetime.fromtimestamp(at_ms / 1000, zone).replace(tzinfo=None)


def _instant(wall: datetime, zone: tzinfo) -> int:
    """The instant of a naive wall-clock time in ``zone`` (fold 0: the offset before a change,
    so a skipped time lands after the gap and a repeated time is taken the first time)."""
    aware = wall.replace(tzinfo=zone, fold=0)
    return round(aware.timestamp() * 1000)


def _add_months(wall: datetime, months: int) -> datetime:
    index = wall.month - 1 + months
    year, month = wall.year + index // 12, index % 12 + 1
    day = min(wall.day, calendar.monthrange(year, month)[1])
    return wall.replace(year=year, month=month, day=day)


def _next_cron(expression: str, after_ms: int, zone: tzinfo) -> int:
    from croniter import croniter

    # croniter walks the naive wall clock: DST is ours to map (see the module docstring).
    walker = croniter(expression, _wall(after_ms, zone))
    for _ in range(10_000):
        due = _instant(walker.get_next(datetime), zone)
        if due > after_ms:
            return due
    raise ConfigError(f"the cron expression {expression!r} has no occurrence after {after_ms}")
