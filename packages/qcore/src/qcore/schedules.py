"""A schedule's definition and the identity of its firings.

A :class:`ScheduleSpec` says what to run and when; a store (Redis, mirrored from Django's
``Schedule`` model on a Django site) keeps it with its state: the next due time and the repeats
left. Each firing is an ordinary task whose id is derived from (schedule id, due time), so the
same firing built by any number of clusters is the same task, and the store's atomic step
enqueues it at most once.
"""

from __future__ import annotations

import hashlib
import keyword
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from qcore.codec import Codec
from qcore.enqueue import Q_OPTION_NAMES, build_message
from qcore.errors import ConfigError
from qcore.message import OPTION_NAMES, TaskMessage, TaskOptions
from qcore.recurrence import ScheduleType, check_cron, first_due, next_due, time_zone
from qcore.resolve import dotted_path

__all__ = [
    "SCHEDULE_Q_OPTIONS",
    "DueBatch",
    "ScheduleSource",
    "ScheduleSpec",
    "ScheduleState",
    "ScheduleStore",
    "firing_id",
    "firing_message",
]

SPEC_VERSION = 1

# What a schedule's q_options may set: the group, schedule and due time are the firing's own;
# eta and countdown make no sense for a task that is due now.
SCHEDULE_Q_OPTIONS = Q_OPTION_NAMES - {
    "countdown",
    "eta",
    "group",
    "schedule",
    "due",
    "retried_from",
}


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """What a schedule runs and when, as Django Q's ``Schedule`` has it.

    ``id`` names the schedule in its store (letters, digits and ``._:-``). ``func`` and ``hook``
    are dotted paths (a callable is turned into its path). ``next_run`` (epoch seconds) is the
    first due time and the anchor later ones are counted from; ``repeats`` is -1 for forever,
    0 for paused, n for n more firings. ``time_zone`` is where Daily and longer schedules keep
    their wall-clock time and where cron expressions are read. ``intended_date_kwarg`` names a
    keyword that receives the firing's due time (ISO 8601). ``q_options`` are the firing's task
    options (timeout, save, max_attempts, hook, task_name). ``cluster`` pins the schedule to
    clusters of that name.
    """

    id: str
    func: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    schedule_type: ScheduleType = ScheduleType.ONCE
    next_run: float = 0.0
    minutes: int | None = None
    cron: str | None = None
    repeats: int = -1
    name: str | None = None
    hook: str | None = None
    cluster: str | None = None
    intended_date_kwarg: str | None = None
    q_options: Mapping[str, Any] = field(default_factory=dict)
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.id, str) or not self.id or len(self.id) > 200:
            raise ConfigError(f"a schedule id must be a string of 1 to 200 characters: {self.id!r}")
        if not all(c.isalnum() or c in "._:-" for c in self.id):
            raise ConfigError(
                f"a schedule id may hold letters, digits and '._:-' only, not {self.id!r}"
            )
        if callable(self.func):
            set_(self, "func", dotted_path(self.func))
        if not isinstance(self.func, str) or not self.func:
            raise ConfigError(f"func must be a dotted path or a callable, not {self.func!r}")
        if self.hook is not None and callable(self.hook):
            set_(self, "hook", dotted_path(self.hook))
        try:
            set_(self, "schedule_type", ScheduleType(self.schedule_type))
        except ValueError:
            codes = ", ".join(f"{t.value} ({t.name.title()})" for t in ScheduleType)
            raise ConfigError(
                f"unknown schedule_type {self.schedule_type!r}; use one of {codes}"
            ) from None
        set_(self, "args", tuple(self.args))
        set_(self, "kwargs", dict(self.kwargs))
        set_(self, "q_options", dict(self.q_options))
        if self.schedule_type is ScheduleType.MINUTES:
            m = self.minutes
            if isinstance(m, bool) or not isinstance(m, int) or m < 1:
                raise ConfigError(f"a Minutes schedule needs minutes >= 1, not {m!r}")
        if self.schedule_type is ScheduleType.CRON:
            check_cron(self.cron or "")
        if isinstance(self.repeats, bool) or not isinstance(self.repeats, int):
            raise ConfigError(f"repeats must be an integer, not {self.repeats!r}")
        if self.repeats < -1:
            raise ConfigError(
                f"repeats must be -1 (forever), 0 (paused) or a positive count, not {self.repeats}"
            )
        time_zone(self.time_zone)
        kwarg = self.intended_date_kwarg
        if kwarg is not None and (not kwarg.isidentifier() or keyword.iskeyword(kwarg)):
            raise ConfigError(f"intended_date_kwarg must be a Python identifier, not {kwarg!r}")
        unknown = set(self.q_options) - SCHEDULE_Q_OPTIONS
        if unknown:
            raise ConfigError(
                f"a schedule's q_options cannot set {', '.join(sorted(unknown))}; "
                f"they may set {', '.join(sorted(SCHEDULE_Q_OPTIONS))}"
            )
        # The values too, at the call that set them, not at the first firing.
        TaskOptions(**{k: v for k, v in self.q_options.items() if k in OPTION_NAMES})
        if self.cluster is not None and (
            not self.cluster or any(c in self.cluster for c in "{}") or " " in self.cluster
        ):
            raise ConfigError(f"cluster must be a cluster name, not {self.cluster!r}")
        if not isinstance(self.next_run, int | float):
            raise ConfigError(f"next_run must be epoch seconds, not {self.next_run!r}")

    @property
    def anchor_ms(self) -> int:
        """The first due time, in ms: occurrences are counted from it."""
        return first_due(
            self.schedule_type, round(self.next_run * 1000), cron=self.cron, tz=self.time_zone
        )

    def next_due(self, after_ms: int) -> int | None:
        """The first due time strictly after ``after_ms`` (None for a Once schedule)."""
        return next_due(
            self.schedule_type,
            self.anchor_ms,
            after_ms,
            minutes=self.minutes,
            cron=self.cron,
            tz=self.time_zone,
        )

    def advance(self, due_ms: int, now_ms: int, *, catch_up: bool) -> int | None:
        """The due time after a firing at ``due_ms`` (None: this was the last one). With
        ``catch_up`` every missed occurrence follows in turn; without, the next one after now."""
        return self.next_due(due_ms if catch_up else max(due_ms, now_ms))

    def to_wire(self) -> dict[str, Any]:
        """Plain values only (no class of ours is pickled into a store)."""
        return {
            "v": SPEC_VERSION,
            "id": self.id,
            "func": self.func,
            "args": self.args,
            "kwargs": dict(self.kwargs),
            "schedule_type": self.schedule_type.value,
            "next_run": self.next_run,
            "minutes": self.minutes,
            "cron": self.cron,
            "repeats": self.repeats,
            "name": self.name,
            "hook": self.hook,
            "cluster": self.cluster,
            "intended_date_kwarg": self.intended_date_kwarg,
            "q_options": dict(self.q_options),
            "time_zone": self.time_zone,
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> ScheduleSpec:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**fields)

    def with_(self, **changes: Any) -> ScheduleSpec:
        """A copy with ``changes`` applied (and validated)."""
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """A stored schedule: its definition and where it stands."""

    spec: ScheduleSpec
    due_ms: int | None  # None when it will not fire again (done, or paused)
    repeats: int
    last_task: str | None = None
    last_due_ms: int | None = None

    @property
    def next_run(self) -> datetime | None:
        return None if self.due_ms is None else datetime.fromtimestamp(self.due_ms / 1000, UTC)


def firing_id(schedule_id: str, due_ms: int) -> str:
    """The task id of a schedule's firing at ``due_ms``: 32 hex digits, the same on every host."""
    return hashlib.sha256(f"q.schedule:{schedule_id}@{due_ms}".encode()).hexdigest()[:32]


def firing_message(spec: ScheduleSpec, due_ms: int) -> TaskMessage:
    """The task a schedule runs for its due time ``due_ms``, built by the one enqueue path
    (:func:`qcore.build_message`): the schedule's func, args, kwargs (with the due time under
    ``intended_date_kwarg``), hook and q_options, in the schedule's group (its name, else its
    id), under the firing's id, carrying the schedule id and due time as options."""
    kwargs = dict(spec.kwargs)
    if spec.intended_date_kwarg:
        kwargs[spec.intended_date_kwarg] = datetime.fromtimestamp(due_ms / 1000, UTC).isoformat()
    q_options = dict(spec.q_options)
    if spec.hook:
        q_options["hook"] = spec.hook  # the schedule's own hook wins, as in Django Q
    return build_message(
        spec.func,
        spec.args,
        kwargs,
        group=spec.name or spec.id,
        q_options=q_options or None,
        task_id=firing_id(spec.id, due_ms),
        schedule=spec.id,
        due=due_ms / 1000,
    )


@dataclass(frozen=True, slots=True)
class DueBatch:
    """What a store's ``due()`` found: ``now_ms`` (the clock used), the due ``(id, due ms)``
    pairs, earliest first, and the next due time after now (None: nothing is scheduled)."""

    now_ms: int
    entries: list[tuple[str, int]]
    next_ms: int | None


@runtime_checkable
class ScheduleStore(Protocol):
    """Where a cluster's scheduler finds due schedules and fires them (qredis.RedisSchedules).

    ``load`` reads definitions with their revisions, ``plan`` builds a firing (message signed,
    next due time computed), ``fire`` applies firings atomically, each at most once whatever
    other clusters do: 1 queued, 2 already fired (only advanced), 0 nothing done.
    """

    @property
    def queue(self) -> str: ...

    def add(
        self,
        spec: ScheduleSpec,
        *,
        due_ms: int | None = None,
        repeats: int | None = None,
        keep: bool = False,
        now_ms: int | None = None,
    ) -> bool: ...

    def due(
        self, cluster: str | None, *, now_ms: int | None = None, limit: int = 1000
    ) -> DueBatch: ...

    def load(self, ids: Sequence[str]) -> Mapping[str, Any]: ...

    def plan(self, stored: Any, due_ms: int, now_ms: int, *, catch_up: bool) -> Any: ...

    def fire(self, firings: Sequence[Any]) -> list[int]: ...


@runtime_checkable
class ScheduleSource(Protocol):
    """A transport that keeps schedules beside its queue (qredis.RedisTransport)."""

    def schedules(self, codec: Codec) -> ScheduleStore: ...
