"""The cluster's settings: one frozen dataclass, validated when it is built.

The CLI, ``Q_*`` environment variables and Django's ``Q_CLUSTER`` all map onto
:class:`ClusterConfig`; nothing here is read at import time.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from qcore import ConfigError, RetryDefaults, retry_on_paths
from qcore import time_zone as check_time_zone

__all__ = ["START_METHODS", "ClusterConfig", "default_start_method"]

START_METHODS = ("fork", "forkserver", "spawn")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def default_start_method() -> str:
    """``fork`` on Linux; elsewhere ``forkserver`` where the platform has it, else ``spawn``.

    ``fork`` starts a worker in a millisecond, needs no helper process, and lets workers share
    the sentinel's memory copy-on-write. The sentinel's beacon thread is made safe with it by
    :class:`qcluster.forking.ForkGuard`. macOS's system libraries are not fork-safe, hence
    ``spawn`` there (Python's own default).
    """
    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def _default_workers() -> int:
    """The number of CPUs (``os.cpu_count()``)."""
    return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Everything a cluster needs to know besides its transport, store and hooks.

    Times are in seconds. Build it with keywords, :meth:`from_mapping` or :meth:`from_env`;
    a bad value raises :class:`qcore.ConfigError` naming the setting.
    """

    name: str = "default"
    """Shown in status, logs and consumer ids."""
    queue: str = "default"
    """The queue the CLI builds its transport for (a transport passed in carries its own)."""
    queues: tuple[str, ...] = ()
    """Several queues for one cluster, instead of ``queue``: names served in strict order (the
    first whenever it has a task ready, the next only when it has none, ...), or, when every
    entry is ``name=weight`` (or a dict of name to weight), in proportion to the weights, none
    starved. ``["a", "b"]``, ``{"a": 3, "b": 1}``, ``Q_QUEUES=a=3,b=1``."""
    shards: int = 1
    """The queue's shard count: its tasks spread over this many hash tags, so over several
    Redis Cluster nodes (``qredis.ShardedQueue``). Every producer and cluster of the queue
    must use the same count (it is kept in Redis; another is refused). With ``queues``, every
    one of them is sharded alike (``qredis.ShardedQueues``), each count checked."""
    workers: int = field(default_factory=_default_workers)
    """Worker processes (default: the number of CPUs)."""
    timeout: float | None = None
    """Seconds a task may run before its worker is killed and a timed-out Failure is saved."""
    retry: float = 60.0
    """Seconds without a heartbeat before another cluster takes back this cluster's tasks."""
    max_attempts: int = 3
    """Deliveries before a task whose worker keeps dying is dead-lettered. Used when the
    cluster builds its own transport (the CLI); a transport passed in has its own limit."""
    recycle: int | None = None
    """Replace a worker after it ran this many tasks (None: never)."""
    max_rss: int | None = None
    """Replace a worker once its resident memory exceeds this many KiB (None: never)."""
    prefetch: int = 32
    """Most tasks a worker takes from the queue in one fetch."""
    async_concurrency: int = 1
    """Coroutine tasks (``async def``) a worker awaits at once in its event loop (1: one at a
    time, as sync tasks run). Above 1 each one's timeout is enforced in the loop, and a worker
    fetches up to this many (or ``prefetch``, whichever is more) while they run."""
    save: bool = True
    """Whether successes are saved (a task's own ``save`` option wins; failures always are)."""
    retries: int = 0
    """Further runs of a task whose run raised (a task's own ``retries`` option wins)."""
    retry_backoff: float = 1.0
    """Seconds before a task's first retry, doubled for each one after it (0: retry at once)."""
    retry_backoff_max: float = 600.0
    """The longest wait between two runs of a retried task."""
    retry_jitter: bool = True
    """Draw each retry's wait from the upper half of its bound, so retries spread out."""
    retry_on: tuple[str, ...] = ()
    """Dotted paths of the exception classes that are retried (empty: any Exception)."""
    guard_cycle: float = 0.5
    """Longest the sentinel sleeps between checks when nothing happens."""
    heartbeat: float = 5.0
    """Seconds between heartbeats; the heartbeat's time-to-live is ``retry``."""
    grace: float = 10.0
    """Seconds running tasks get to finish on a graceful stop before their workers are killed."""
    hook_timeout: float = 30.0
    """Seconds one hook may run: past it the worker interrupts the hook (SIGALRM) and calls
    the batch's other hooks; one stuck where the alarm cannot reach it (C code) has its worker
    killed by the sentinel 5 s later. A hook of a record the sentinel saved (a timeout, a lost
    worker) runs in a process of its own, killed past it."""
    status_interval: float = 3.0
    """Seconds between status publications."""
    dead_letter_ttl: float = 7 * 86400.0
    """Seconds a dead letter is kept (default 7 days); every cluster drops older ones."""
    dead_letter_cap: int = 100_000
    """Most dead letters a queue keeps: past it the oldest go, so a flood of bad tasks can never
    fill a Redis that may not evict (``noeviction``)."""
    start_method: str = field(default_factory=default_start_method)
    """``fork``, ``forkserver`` or ``spawn``."""
    scheduler: bool = True
    """Whether this cluster fires schedules (any number may: each firing happens once)."""
    catch_up: bool = True
    """Missed occurrences of a schedule (no cluster was up) run once each; off: once in all."""
    time_zone: str = "UTC"
    """Where schedules declared to the cluster (``schedules=``, ``--schedule``) keep their
    wall-clock time and read cron expressions (an IANA name)."""
    log_json: bool = False
    """Log one JSON object per line (for a log collector) instead of coloured text."""
    log_level: str = "info"
    """``debug``, ``info``, ``warning``, ``error`` or ``critical``."""
    log_args: bool = False
    """Whether task args and results may appear in logs (off: they can hold personal data)."""
    fail_fast: bool = False
    """Exit with an error when Redis cannot be reached at start-up, instead of saying so and
    trying again (with backoff) until it answers."""
    metrics_port: int | None = None
    """Serve Prometheus metrics on this TCP port (the sentinel, for all its workers); None: no
    metrics. 0 takes a free port (the status says which)."""
    metrics_host: str = "0.0.0.0"
    """The address the metrics endpoint listens on (``127.0.0.1``: this host only)."""
    error_reporter: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Where failures are reported (django-q2's setting): ``{"sentry": {"dsn": ...}}`` (the
    ``sentry`` extra), or ``{"dotted.path.Class": {options}}``; see :mod:`qcluster.reporting`."""
    secret_names: tuple[str, ...] = ()
    """More names (besides ``password``, ``secret``, ``token``, ``api_key``...) whose values
    are masked wherever Q shows them: log fields, a task's keyword arguments, the admin."""

    def __post_init__(self) -> None:
        _check_text("name", self.name)
        _check_text("queue", self.queue)
        object.__setattr__(self, "queues", _queues(self.queues))
        _check_int("workers", self.workers, minimum=1)
        _check_int("shards", self.shards, minimum=1)
        _check_int("max_attempts", self.max_attempts, minimum=1)
        _check_int("prefetch", self.prefetch, minimum=1)
        _check_int("async_concurrency", self.async_concurrency, minimum=1)
        _check_int("retries", self.retries, minimum=0)
        for name in ("retry_backoff", "retry_backoff_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ConfigError(f"{name} must be a number of seconds >= 0, not {value!r}")
        object.__setattr__(self, "retry_on", retry_on_paths(self.retry_on))
        _check_int("dead_letter_cap", self.dead_letter_cap, minimum=1)
        _check_seconds("dead_letter_ttl", self.dead_letter_ttl)
        if self.recycle is not None:
            _check_int("recycle", self.recycle, minimum=1)
        if self.max_rss is not None:
            _check_int("max_rss", self.max_rss, minimum=1)
        if self.timeout is not None:
            _check_seconds("timeout", self.timeout)
        if self.metrics_port is not None:
            _check_int("metrics_port", self.metrics_port, minimum=0)
            if self.metrics_port > 65535:
                raise ConfigError(f"metrics_port must be at most 65535, not {self.metrics_port}")
        _check_text("metrics_host", self.metrics_host)
        _check_reporters(self.error_reporter)
        for name in ("retry", "guard_cycle", "heartbeat", "grace", "hook_timeout"):
            _check_seconds(name, getattr(self, name))
        _check_seconds("status_interval", self.status_interval)
        _check_text("time_zone", self.time_zone)
        check_time_zone(self.time_zone)
        for name in (
            "save",
            "log_json",
            "log_args",
            "fail_fast",
            "scheduler",
            "catch_up",
            "retry_jitter",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, not {getattr(self, name)!r}")
        if self.timeout is not None and not self.retry > self.timeout:
            raise ConfigError(
                f"retry ({_num(self.retry)}) must be greater than timeout "
                f"({_num(self.timeout)}): tasks would run twice"
            )
        if self.heartbeat * 2 > self.retry:
            raise ConfigError(
                f"heartbeat ({_num(self.heartbeat)}) must be at most half of retry "
                f"({_num(self.retry)}): one late heartbeat would let another cluster take "
                "tasks that are still running"
            )
        if self.start_method not in START_METHODS:
            raise ConfigError(
                f"start_method must be one of {', '.join(START_METHODS)}, not {self.start_method!r}"
            )
        if self.start_method not in multiprocessing.get_all_start_methods():
            raise ConfigError(f"start_method {self.start_method!r} is not available here")
        if isinstance(self.secret_names, str) or not all(
            isinstance(n, str) and n for n in self.secret_names
        ):
            raise ConfigError(
                f"secret_names must be a list of non-empty names, not {self.secret_names!r}"
            )
        object.__setattr__(self, "secret_names", tuple(self.secret_names))
        if not isinstance(self.log_level, str) or self.log_level.lower() not in LOG_LEVELS:
            raise ConfigError(
                f"log_level must be one of {', '.join(LOG_LEVELS)}, not {self.log_level!r}"
            )

    @classmethod
    def field_names(cls) -> frozenset[str]:
        """Every setting's name."""
        return frozenset(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ClusterConfig:
        """Build a config from a dict; unknown keys raise ConfigError naming them."""
        known = cls.field_names()
        unknown = sorted(str(k) for k in values if k not in known)
        if unknown:
            raise ConfigError(
                f"unknown cluster setting(s) {', '.join(unknown)}; "
                f"known settings are {', '.join(sorted(known))}"
            )
        return cls(**dict(values))

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, prefix: str = "Q_", **overrides: Any
    ) -> ClusterConfig:
        """Build a config from ``Q_WORKERS=4``-style variables, then apply ``overrides``.

        Only variables named after a setting are read (``Q_SECRET_KEY`` and friends are not
        settings and are left alone). ``Q_TIMEOUT=none`` means no timeout.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(prefix + f.name.upper())
            if raw is not None:
                values[f.name] = _parse(f.name, raw)
        values.update(overrides)
        return cls.from_mapping(values)

    def with_changes(self, **changes: Any) -> ClusterConfig:
        """A validated copy with some settings changed."""
        unknown = sorted(set(changes) - self.field_names())
        if unknown:
            raise ConfigError(f"unknown cluster setting(s) {', '.join(unknown)}")
        return replace(self, **changes)

    def retry_defaults(self) -> RetryDefaults:
        """What a task that sets no retry option of its own gets."""
        return RetryDefaults(
            retries=self.retries,
            retry_backoff=float(self.retry_backoff),
            retry_backoff_max=float(self.retry_backoff_max),
            retry_jitter=self.retry_jitter,
            retry_on=self.retry_on,
        )

    def queue_plan(self) -> tuple[tuple[str, ...], tuple[int, ...] | None]:
        """The queues served (``queues``, else ``queue``) and their weights (None: strict)."""
        if not self.queues:
            return (self.queue,), None
        pairs = [entry.partition("=") for entry in self.queues]
        names = tuple(name for name, _, _ in pairs)
        if not pairs[0][1]:
            return names, None
        return names, tuple(int(weight) for _, _, weight in pairs)

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (for status pages and logs): reporters by name only
        (their options hold a DSN)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["error_reporter"] = sorted(self.error_reporter)
        return out


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _check_reporters(value: object) -> None:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, Mapping) for k, v in value.items()
    ):
        raise ConfigError(
            "error_reporter must map a reporter's name to its options, such as "
            f"{{'sentry': {{'dsn': 'https://...'}}}}, not {value!r}"
        )


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value or value != value.strip():
        raise ConfigError(f"{name} must be a non-empty string without surrounding spaces")


def _queues(value: object) -> tuple[str, ...]:
    """``queues`` as ``("a", "b")`` or ``("a=3", "b=1")``, checked."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, Mapping):
        value = [f"{name}={weight}" for name, weight in value.items()]
    if not isinstance(value, list | tuple):
        raise ConfigError(f"queues must be a list of queue names (or name=weight), not {value!r}")
    entries: list[str] = []
    for entry in value:
        if isinstance(entry, list | tuple) and len(entry) == 2:
            entry = f"{entry[0]}={entry[1]}"
        if not isinstance(entry, str):
            raise ConfigError(f"queues must hold queue names (or name=weight), not {entry!r}")
        name, eq, weight = entry.partition("=")
        name, weight = name.strip(), weight.strip()
        if not name or any(c in name for c in "{}=") or any(c.isspace() for c in name):
            raise ConfigError(
                f"a queue name may not be empty or hold braces, '=' or whitespace: {entry!r}"
            )
        if eq and not (weight.isdigit() and int(weight) >= 1):
            raise ConfigError(f"the weight of queue {name} must be an integer >= 1: {entry!r}")
        entries.append(f"{name}={int(weight)}" if eq else name)
    names = [e.partition("=")[0] for e in entries]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"queues names a queue more than once: {', '.join(repeated)}")
    weighted = {"=" in e for e in entries}
    if len(weighted) > 1:
        raise ConfigError(
            "queues are either all weighted (name=weight) or none (strict order), "
            f"not a mix: {', '.join(entries)}"
        )
    return tuple(entries)


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, not {value!r}")


def _check_seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"{name} must be a positive number of seconds, not {value!r}")
    if value != value or value == float("inf"):
        raise ConfigError(f"{name} must be a finite number of seconds, not {value!r}")


_OPTIONAL = {"timeout", "recycle", "max_rss", "metrics_port"}
_INTS = {"workers", "max_attempts", "recycle", "max_rss", "prefetch", "retries", "dead_letter_cap"}
_INTS |= {"metrics_port", "shards", "async_concurrency"}
_BOOLS = {"save", "log_json", "log_args", "fail_fast", "scheduler", "catch_up", "retry_jitter"}
_FLOATS = {"timeout", "retry", "guard_cycle", "heartbeat", "grace", "hook_timeout"}
_FLOATS |= {"status_interval", "retry_backoff", "retry_backoff_max", "dead_letter_ttl"}


def _parse(name: str, raw: str) -> Any:
    text = raw.strip()
    if name in _OPTIONAL and text.lower() in ("", "none", "null"):
        return None
    parser: Callable[[str], Any]
    if name in _BOOLS:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, not {raw!r}")
    if name in ("secret_names", "retry_on"):
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if name == "error_reporter":
        import json

        try:
            return json.loads(text) if text else {}
        except ValueError:
            raise ConfigError(
                f'error_reporter must be JSON such as {{"sentry": {{"dsn": "..."}}}}, not {raw!r}'
            ) from None
    if name in _INTS:
        parser = int
    elif name in _FLOATS:
        parser = float
    else:
        return text
    try:
        return parser(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
