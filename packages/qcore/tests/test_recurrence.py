"""Next-run computation: every schedule type, month ends, DST; properties where inputs are open."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from qcore import ConfigError, ScheduleSpec, ScheduleType, firing_id, firing_message
from qcore.recurrence import first_due, next_due

AMS = ZoneInfo("Europe/Amsterdam")
T = ScheduleType


def ms(dt: datetime) -> int:
    return round(dt.timestamp() * 1000)


def local(at_ms: int, zone: ZoneInfo = AMS) -> datetime:
    return datetime.fromtimestamp(at_ms / 1000, zone)


def series(kind: T, anchor: datetime, n: int, **kw: object) -> list[datetime]:
    out, after = [], ms(anchor) - 1
    zone = kw.pop("zone", AMS)
    for _ in range(n):
        due = next_due(kind, ms(anchor), after, tz=str(zone), **kw)  # type: ignore[arg-type]
        assert due is not None
        out.append(local(due, zone))  # type: ignore[arg-type]
        after = due
    return out


def test_once_has_no_next_run() -> None:
    assert next_due(T.ONCE, 0, 10) is None


def test_minutes_and_hourly_are_fixed_lengths_of_real_time() -> None:
    anchor = ms(datetime(2021, 3, 28, 0, 30, tzinfo=AMS))
    hours = series(T.HOURLY, local(anchor), 4)
    gaps = {b.timestamp() - a.timestamp() for a, b in itertools.pairwise(hours)}
    assert gaps == {3600.0}  # across the spring-forward hour too
    assert [h.hour for h in hours] == [0, 1, 3, 4]
    assert next_due(T.MINUTES, anchor, anchor, minutes=15) == anchor + 15 * 60_000
    assert next_due(T.MINUTES, anchor, anchor - 5, minutes=15) == anchor


@pytest.mark.parametrize(("kind", "days"), [(T.DAILY, 1), (T.WEEKLY, 7), (T.BIWEEKLY, 14)])
def test_day_steps(kind: T, days: int) -> None:
    anchor = datetime(2024, 1, 1, 9, 0, tzinfo=AMS)
    runs = series(kind, anchor, 3)
    assert runs == [anchor + timedelta(days=days * k) for k in range(3)]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (T.MONTHLY, [(1, 31), (2, 29), (3, 31), (4, 30), (5, 31)]),
        (T.BIMONTHLY, [(1, 31), (3, 31), (5, 31), (7, 31), (9, 30)]),
        (T.QUARTERLY, [(1, 31), (4, 30), (7, 31), (10, 31), (1, 31)]),
    ],
)
def test_months_clamp_to_the_month_end_from_the_anchor_day(
    kind: T, expected: list[tuple[int, int]]
) -> None:
    runs = series(kind, datetime(2024, 1, 31, 8, 0, tzinfo=AMS), 5)
    assert [(r.month, r.day) for r in runs] == expected
    assert {r.hour for r in runs} == {8}


def test_yearly_from_feb_29_is_feb_28_in_other_years() -> None:
    runs = series(T.YEARLY, datetime(2024, 2, 29, 12, 0, tzinfo=AMS), 5)
    assert [(r.year, r.month, r.day) for r in runs] == [
        (2024, 2, 29), (2025, 2, 28), (2026, 2, 28), (2027, 2, 28), (2028, 2, 29),
    ]  # fmt: skip


def test_daily_keeps_its_wall_clock_time_across_both_dst_changes() -> None:
    # django-q2's own case: 01:00 Europe/Amsterdam across the 2021 switches.
    runs = series(T.DAILY, datetime(2021, 3, 26, 1, 0, tzinfo=AMS), 220)
    assert {(r.hour, r.minute) for r in runs} == {(1, 0)}
    assert len({r.date() for r in runs}) == 220


def test_daily_0230_on_the_spring_forward_night_fires_once_after_the_gap() -> None:
    runs = series(T.DAILY, datetime(2021, 3, 27, 2, 30, tzinfo=AMS), 3)
    assert [(r.day, r.hour, r.minute) for r in runs] == [(27, 2, 30), (28, 3, 30), (29, 2, 30)]


def test_daily_0230_on_the_fall_back_night_fires_once() -> None:
    runs = series(T.DAILY, datetime(2021, 10, 30, 2, 30, tzinfo=AMS), 3)
    assert [(r.day, r.hour, r.minute) for r in runs] == [(30, 2, 30), (31, 2, 30), (1, 2, 30)]
    assert runs[1].utcoffset() == timedelta(hours=2)  # the first 02:30 of the two


def test_cron_0230_across_both_dst_nights() -> None:
    spring = series(T.CRON, datetime(2021, 3, 27, 0, 0, tzinfo=AMS), 3, cron="30 2 * * *")
    assert [(r.day, r.hour, r.minute) for r in spring] == [(27, 2, 30), (28, 3, 30), (29, 2, 30)]
    fall = series(T.CRON, datetime(2021, 10, 30, 0, 0, tzinfo=AMS), 3, cron="30 2 * * *")
    assert [(r.day, r.hour) for r in fall] == [(30, 2), (31, 2), (1, 2)]


def test_cron_every_15_minutes_through_the_spring_gap_keeps_15_minute_steps() -> None:
    runs = series(T.CRON, datetime(2021, 3, 28, 1, 30, tzinfo=AMS), 6, cron="*/15 * * * *")
    gaps = {b.timestamp() - a.timestamp() for a, b in itertools.pairwise(runs)}
    assert gaps == {900.0}


def test_cron_first_due_is_at_or_after_the_start() -> None:
    start = ms(datetime(2024, 5, 1, 10, 0, tzinfo=UTC))
    assert first_due(T.CRON, start, cron="0 * * * *") == start
    assert first_due(T.CRON, start + 1, cron="0 * * * *") == start + 3_600_000


def test_bad_input_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a valid cron"):
        ScheduleSpec(id="x", func="m.f", schedule_type="C", cron="61 * * * *")
    with pytest.raises(ConfigError, match="unknown schedule_type"):
        ScheduleSpec(id="x", func="m.f", schedule_type="Z")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="minutes >= 1"):
        ScheduleSpec(id="x", func="m.f", schedule_type="I")
    with pytest.raises(ConfigError, match="repeats must be -1"):
        ScheduleSpec(id="x", func="m.f", repeats=-2)
    with pytest.raises(ConfigError, match="unknown time zone"):
        ScheduleSpec(id="x", func="m.f", time_zone="Mars/Olympus")
    with pytest.raises(ConfigError, match="identifier"):
        ScheduleSpec(id="x", func="m.f", intended_date_kwarg="not valid")
    with pytest.raises(ConfigError, match="letters, digits"):
        ScheduleSpec(id="a b", func="m.f")


def test_firing_identity_and_message() -> None:
    spec = ScheduleSpec(
        id="nightly",
        func="math.hypot",
        args=(3, 4),
        intended_date_kwarg="when",
        q_options={"timeout": 30, "hook": "m.hook"},
    )
    a, b = firing_message(spec, 1_000), firing_message(spec, 1_000)
    assert a.id == b.id == firing_id("nightly", 1_000) and len(a.id) == 32
    assert firing_id("nightly", 1_001) != a.id and firing_id("other", 1_000) != a.id
    assert a.kwargs == {"when": "1970-01-01T00:00:01+00:00"}
    assert a.options.timeout == 30 and a.hook == "m.hook" and a.group == "nightly"
    assert a.options.schedule == "nightly" and a.options.due == 1.0  # carried as options
    assert ScheduleSpec.from_wire(spec.to_wire()) == spec


# -- properties ------------------------------------------------------------------------------

ZONES = st.sampled_from(["UTC", "Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe"])
INSTANTS = st.integers(ms(datetime(2000, 1, 1, tzinfo=UTC)), ms(datetime(2060, 1, 1, tzinfo=UTC)))
CALENDAR = st.sampled_from([T.DAILY, T.WEEKLY, T.BIWEEKLY, T.MONTHLY, T.QUARTERLY, T.YEARLY])


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from([*T.__members__.values()]).filter(lambda k: k is not T.ONCE),
    anchor=INSTANTS,
    gap=st.integers(-(10**9), 10**11),
    zone=ZONES,
    minutes=st.integers(1, 10_000),
    cron=st.sampled_from(["*/7 * * * *", "30 2 * * *", "0 0 29 2 *", "15 3 * * 0", "0 */5 * * *"]),
)
def test_next_due_is_strictly_later_and_is_the_first_occurrence_after(
    kind: T, anchor: int, gap: int, zone: str, minutes: int, cron: str
) -> None:
    after = anchor + gap
    due = next_due(kind, anchor, after, minutes=minutes, cron=cron, tz=zone)
    assert due is not None and due > after
    # Nothing between `after` and `due` is an occurrence: asking from any point in between
    # gives the same answer.
    mid = after + (due - after) // 2
    assert next_due(kind, anchor, mid, minutes=minutes, cron=cron, tz=zone) == due
    assert next_due(kind, anchor, due - 1, minutes=minutes, cron=cron, tz=zone) == due


@settings(max_examples=200, deadline=None)
@given(kind=CALENDAR, anchor=INSTANTS, zone=ZONES)
def test_calendar_schedules_keep_wall_time_and_never_repeat_a_date(
    kind: T, anchor: int, zone: str
) -> None:
    tz = ZoneInfo(zone)
    wall = local(anchor, tz)
    runs, after = [], anchor - 1
    for _ in range(30):
        due = next_due(kind, anchor, after, tz=zone)
        assert due is not None
        runs.append(local(due, tz))
        after = due
    assert len({r.date() for r in runs}) == len(runs)  # never twice a day
    for r in runs:
        # The anchor's wall-clock time, unless it did not exist that day (then just after
        # the gap, by at most the gap's length).
        shift = (
            datetime.combine(r.date(), r.time()) - datetime.combine(r.date(), wall.time())
        ).total_seconds()
        assert 0 <= shift <= 3600
        if kind in (T.MONTHLY, T.QUARTERLY, T.YEARLY):
            assert r.day == wall.day or (r.day < wall.day and (r + timedelta(days=1)).day == 1)


@settings(max_examples=200, deadline=None)
@given(
    anchor=INSTANTS,
    zone=ZONES,
    cron=st.sampled_from(["*/10 * * * *", "30 2 * * *", "0 12 * * 1-5", "5 4 1 * *"]),
)
def test_cron_occurrences_match_the_expression_on_the_wall_clock(
    anchor: int, zone: str, cron: str
) -> None:
    tz = ZoneInfo(zone)
    after = anchor
    for _ in range(20):
        due = next_due(T.CRON, 0, after, cron=cron, tz=zone)
        assert due is not None and due > after
        wall = local(due, tz).replace(tzinfo=None)
        # On the wall clock it matches, or it is a time skipped by a DST gap, moved past it.
        assert (
            croniter.match(cron, wall)
            or croniter.match(cron, wall - timedelta(hours=1))
            or (croniter.match(cron, wall - timedelta(minutes=30)))
        )
        after = due
