"""Django Q's schedules on Q: ``schedule()``, validation, and the mirror between the
``Schedule`` rows (the source of truth) and the Redis index the clusters fire from.

- A row saved or deleted is mirrored into Redis once its transaction commits (``post_save`` /
  ``post_delete``), so clusters never poll the database.
- A cluster's scheduler reconciles all rows with Redis before its first pass (rows saved while
  Redis was unreachable, rows deleted or changed outside the ORM).
- What a firing changes (next run, repeats, last task) is written back to the row by the
  cluster that fired it (:func:`record_firing`), with ``update()``, which mirrors nothing back.

A row's schedule id in Redis is ``dj:<pk>``.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, router, transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from qcore import (
    SCHEDULE_Q_OPTIONS,
    ConfigError,
    FunctionNotFound,
    ScheduleSpec,
    firing_message,
    get_logger,
    resolve,
    send_message,
)
from qdjango import connection
from qdjango.conf import get_settings, task_codec
from qdjango.schedule_rows import check_schedule

if TYPE_CHECKING:
    from qcluster import ScheduleFired
    from qdjango.models import Schedule
    from qredis import RedisSchedules

__all__ = [
    "SCHEDULE_Q_OPTIONS",
    "UnsignedRow",
    "connect_signals",
    "mirror",
    "reconcile",
    "record_firing",
    "run_now",
    "schedule",
    "schedule_id",
    "spec_for",
    "store",
    "validate",
]

log = get_logger("qdjango.schedules")

PREFIX = "dj:"


def schedule_id(pk: int) -> str:
    return f"{PREFIX}{pk}"


def store() -> RedisSchedules:
    """The Redis schedules of ``Q_CLUSTER``'s queue, signed with the task codec."""
    return connection.transport().schedules(task_codec())


# -- the API ---------------------------------------------------------------------------------


def schedule(
    func: Any,
    *args: Any,
    name: str | None = None,
    hook: Any = None,
    schedule_type: str = "O",
    minutes: int | None = None,
    repeats: int = -1,
    next_run: datetime | None = None,
    cron: str | None = None,
    cluster: str | None = None,
    intended_date_kwarg: str | None = None,
    q_options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Schedule:
    """Create a schedule, as Django Q's ``schedule()``: validated (``ValidationError``), saved,
    and mirrored to Redis when the transaction commits. A duplicate ``name`` raises
    ``IntegrityError``. ``args``/``kwargs`` are stored as Python literals."""
    from qdjango.models import Schedule

    if name and Schedule.objects.filter(name=name).exists():
        raise IntegrityError(f"a schedule named {name!r} already exists")
    if q_options:
        kwargs["q_options"] = dict(q_options)
    row = Schedule(
        name=name,
        func=func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}",
        hook=hook
        if hook is None or isinstance(hook, str)
        else f"{hook.__module__}.{hook.__qualname__}",
        args=", ".join(repr(a) for a in args) + ("," if len(args) == 1 else "") if args else None,
        kwargs=repr(kwargs) if kwargs else None,
        schedule_type=schedule_type,
        minutes=minutes,
        repeats=repeats,
        next_run=next_run if next_run is not None else timezone.now(),
        cron=cron,
        cluster=cluster,
        intended_date_kwarg=intended_date_kwarg,
    )
    row.full_clean()
    row.save()
    return row


# -- validation and the definition -----------------------------------------------------------


def parse_args(text: str | None) -> tuple[Any, ...]:
    """``1, 'a'`` or ``(1, 'a')`` as a tuple of literals; one literal is one argument (Django
    Q's reading: ``[1, 2]`` is one list)."""
    if not text or not text.strip():
        return ()
    value = ast.literal_eval(text.strip())
    return value if isinstance(value, tuple) else (value,)


def parse_kwargs(text: str | None) -> dict[str, Any]:
    """``x=1, y='a'`` or ``{'x': 1}`` as a dict of literals."""
    if not text or not text.strip():
        return {}
    text = text.strip()
    if text.startswith("{"):
        value = ast.literal_eval(text)
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ValueError("a dict with string keys")
        return value
    call = ast.parse(f"f({text})", mode="eval").body
    if not isinstance(call, ast.Call) or call.args:
        raise ValueError("keyword arguments only, such as x=1, y='a'")
    out = {}
    for keyword in call.keywords:
        if keyword.arg is None:
            raise ValueError("no ** in keyword arguments")
        out[keyword.arg] = ast.literal_eval(keyword.value)
    return out


def spec_for(row: Schedule) -> ScheduleSpec:
    """The Redis definition of a row (ConfigError or ValueError when it has none)."""
    kwargs = parse_kwargs(row.kwargs)
    q_options = kwargs.pop("q_options", None) or {}
    if not isinstance(q_options, dict):
        raise ConfigError("q_options (in kwargs) must be a dict")
    next_run = row.next_run or timezone.now()
    if timezone.is_naive(next_run):
        next_run = timezone.make_aware(next_run)
    return ScheduleSpec(
        id=schedule_id(row.pk or 0),
        func=row.func,
        args=parse_args(row.args),
        kwargs=kwargs,
        schedule_type=row.schedule_type,  # type: ignore[arg-type]
        next_run=next_run.timestamp(),
        minutes=row.minutes,
        cron=row.cron or None,
        repeats=row.repeats,
        name=row.name or None,
        hook=row.hook or None,
        cluster=row.cluster or None,
        intended_date_kwarg=row.intended_date_kwarg or None,
        q_options=q_options,
        time_zone=get_settings().cluster.time_zone,
    )


def first_run(row: Schedule) -> datetime:
    """A new row's first run: ``next_run``, or for a cron schedule the expression's first time
    at or after it (Django Q sets it so when a cron schedule is created)."""
    return datetime.fromtimestamp(spec_for(row).anchor_ms / 1000, UTC)


def validate(row: Schedule) -> None:
    """Raise ValidationError naming each field a firing of ``row`` would trip over."""
    from django.conf import settings

    errors: dict[str, str] = {}
    try:
        parse_args(row.args)
    except (ValueError, SyntaxError, TypeError):
        errors["args"] = "Use Python literals separated by commas, such as 1, 'a', [2, 3]."
    try:
        parse_kwargs(row.kwargs)
    except (ValueError, SyntaxError, TypeError):
        errors["kwargs"] = "Use keyword literals such as x=1, name='John', or a dict literal."
    for field in ("func", "hook"):
        path = getattr(row, field)
        if path:
            try:
                resolve(path)
            except FunctionNotFound as exc:
                errors[field] = str(exc)
    if settings.USE_TZ and row.next_run is not None and timezone.is_naive(row.next_run):
        errors["next_run"] = "A naive date and time under USE_TZ: give it a time zone."
    if row.schedule_type == "I" and not row.minutes:
        errors["minutes"] = "A Minutes schedule needs the number of minutes."
    if row.schedule_type == "C" and not row.cron:
        errors["cron"] = "A Cron schedule needs a cron expression, such as '30 2 * * *'."
    if not errors:
        try:
            spec_for(row)
        except ConfigError as exc:
            field = _field_of(str(exc))
            errors[field] = str(exc)
    if errors:
        raise ValidationError(errors)


def _field_of(message: str) -> str:
    """The form field a ScheduleSpec error is about (its messages name the setting)."""
    for field in ("cron", "schedule_type", "minutes", "repeats", "intended_date_kwarg", "cluster"):
        if field in message:
            return field
    return "kwargs" if "q_options" in message else "__all__"


# -- the mirror ------------------------------------------------------------------------------


class UnsignedRow(ConfigError):
    """A schedule row whose signature does not verify: not written by Q, so never run."""


def mirror(row: Schedule, redis_store: RedisSchedules | None = None) -> bool:
    """Write ``row`` to Redis as it is now (its ``next_run`` is the due time, even a past one:
    it is caught up). Returns False when Redis already had it so. A row whose signature does
    not verify raises :class:`UnsignedRow` (it was not written by Q's save)."""
    problem = check_schedule(row)
    if problem is not None:
        raise UnsignedRow(
            f"schedule {row.pk} was not saved by Q ({problem}); save it from the admin or "
            "with Schedule.save() to run it"
        )
    spec = spec_for(row)
    # next_run itself, or for a cron schedule its first occurrence at or after next_run.
    due = None if row.repeats == 0 or row.next_run is None else spec.anchor_ms
    return (store() if redis_store is None else redis_store).add(
        spec, due_ms=due, repeats=row.repeats
    )


def _saved(sender: Any, instance: Schedule, raw: bool = False, **_: Any) -> None:
    if raw:
        return
    using = router.db_for_write(type(instance), instance=instance)
    transaction.on_commit(lambda: _mirror_safely(instance), using=using)


def _deleted(sender: Any, instance: Schedule, **_: Any) -> None:
    pk = instance.pk
    using = router.db_for_write(type(instance), instance=instance)
    transaction.on_commit(lambda: _remove_safely(pk), using=using)


def _mirror_safely(row: Schedule) -> None:
    try:
        mirror(row)
    except Exception as exc:
        # The row is saved; the next `manage.py qcluster` start reconciles it.
        log.error("schedule.mirror_failed", schedule=row.pk, error=f"{type(exc).__name__}: {exc}")


def _remove_safely(pk: int) -> None:
    try:
        store().remove(schedule_id(pk))
    except Exception as exc:
        log.error("schedule.unmirror_failed", schedule=pk, error=f"{type(exc).__name__}: {exc}")


def connect_signals() -> None:
    from qdjango.models import Schedule

    post_save.connect(_saved, sender=Schedule, dispatch_uid="qdjango.schedules.saved")
    post_delete.connect(_deleted, sender=Schedule, dispatch_uid="qdjango.schedules.deleted")


def reconcile(
    redis_store: RedisSchedules | None = None, using: str | None = None
) -> tuple[int, int]:
    """Make Redis hold exactly the rows' schedules (a cluster's scheduler does it before its
    first pass): returns (written, removed). A row that no longer validates is logged and
    left as Redis has it; a row whose signature does not verify is logged and taken out of
    Redis. ``redis_store`` and ``using`` default to the settings' (a cluster passes its own)."""
    from qdjango.models import Schedule

    redis_store = store() if redis_store is None else redis_store
    rows = Schedule.objects.using(using or router.db_for_read(Schedule))
    written = 0
    wanted = set()
    for row in rows.iterator():
        try:
            written += mirror(row, redis_store)
        except UnsignedRow as exc:
            log.error("schedule.unsigned", schedule=row.pk, error=str(exc))
            continue  # removed from Redis below, if it was there
        except (ConfigError, ValueError, SyntaxError) as exc:
            log.error("schedule.invalid", schedule=row.pk, error=f"{type(exc).__name__}: {exc}")
        wanted.add(schedule_id(row.pk))
    removed = 0
    for sid in redis_store.ids():
        if sid.startswith(PREFIX) and sid not in wanted:
            removed += redis_store.remove(sid)
    if written or removed:
        log.info("schedule.reconciled", written=written, removed=removed)
    return written, removed


def record_firing(event: ScheduleFired, using: str | None = None) -> None:
    """Copy a firing to its row: next run, repeats left, last task (a Once schedule with
    repeats -1 is deleted, as in Django Q). Runs in the cluster's sentinel, on the database
    ``using`` (captured when the cluster was built: the router's choice then)."""
    from django.db import close_old_connections

    from qdjango.models import Schedule

    if not event.schedule_id.startswith(PREFIX):
        return
    pk = int(event.schedule_id.removeprefix(PREFIX))
    close_old_connections()
    rows = Schedule.objects.using(using or router.db_for_write(Schedule)).filter(pk=pk)
    if event.next_ms is None and rows.filter(schedule_type="O", repeats=-1).exists():
        rows.delete()
        return
    changes: dict[str, Any] = {"repeats": event.repeats, "task": event.task_id}
    if event.next_ms is not None:
        changes["next_run"] = datetime.fromtimestamp(event.next_ms / 1000, UTC)
    rows.update(**changes)


def run_now(row: Schedule) -> str:
    """Queue one run of ``row`` now, outside its timing (the admin's "run now"): a firing due
    this millisecond, sent through the one enqueue path; returns its task id. The row's next
    run is unchanged."""
    message = firing_message(spec_for(row), int(time.time() * 1000))
    send_message(connection.transport(), task_codec(), message)
    type(row).objects.filter(pk=row.pk).update(task=message.id)
    return message.id
