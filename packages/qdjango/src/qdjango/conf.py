"""``settings.Q_CLUSTER``: one dict, mapped onto qcluster's :class:`~qcluster.ClusterConfig`
plus the few settings that only a Django site has (the result store's ``save_limit``, the admin
``label``, ``sync``, ``django_redis``...).

Nothing is read at import. :func:`get_settings` parses the dict once and caches the result
until Django's ``setting_changed`` signal says ``Q_CLUSTER`` or a secret changed (tests);
the callbacks registered with :func:`on_change` drop whatever was derived from them (codecs,
transports). :func:`problems` lists every problem at once, for ``manage.py check``. The keys
only a Django site has, documented and checked one by one, are :mod:`qdjango.setting_keys`'s
(re-exported here).
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from qcluster import ClusterConfig
from qcore import (
    DEFAULT_COMPRESS_THRESHOLD,
    DEFAULT_MAX_SIZE,
    Codec,
    ConfigError,
    Signer,
    mask_mapping,
    mask_url,
)
from qdjango.setting_keys import (
    CHECKERS,
    DJANGO_KEYS,
    DJANGO_SETTINGS,
    MIGRATION_PAGE,
    SEED_ONLY_KEYS,
    KeyDoc,
)

__all__ = [
    "DJANGO_KEYS",
    "DJANGO_SETTINGS",
    "MIGRATION_PAGE",
    "SEED_ONLY_KEYS",
    "KeyDoc",
    "QSettings",
    "get_settings",
    "on_change",
    "parse",
    "problems",
    "record_codec",
    "task_codec",
]


@dataclass(frozen=True, slots=True)
class QSettings:
    """``Q_CLUSTER``, validated."""

    cluster: ClusterConfig
    redis_url: str | None = None
    """A redis URL (``redis://``, ``rediss://``, ``unix://``), or None."""
    redis_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """redis-py keyword arguments, when ``redis`` is a dict."""
    django_redis: str | None = None
    """A cache alias whose django-redis pool the producer borrows."""
    compress_threshold: int | None = DEFAULT_COMPRESS_THRESHOLD
    max_size: int = DEFAULT_MAX_SIZE
    sync: bool = False
    label: str | None = None
    save_limit: int = 250
    """Successes kept in the database: 0 keeps all, -1 none; failures are always kept."""
    database: str | None = None
    """The database alias the result store writes to (None: the router's choice)."""
    producer_retry: float = 2.0
    """Seconds the site's own Redis calls retry a refused connection before raising."""
    producer_timeout: float = 5.0
    """Seconds the site's own Redis calls wait for an answer before raising."""
    wire_version: int | None = None
    """The wire's major version written (None: the current one), for a rolling upgrade."""
    wait_replicas: int = 0
    """Replicas an enqueue waits for (Redis WAIT); 0: none."""
    wait_timeout: float = 2.0
    """Seconds an enqueue waits for them."""

    @property
    def queue(self) -> str:
        return self.cluster.queue

    @property
    def redis_display(self) -> str:
        """Where the queue's Redis is, for people: passwords and secret-named keyword
        arguments masked."""
        names = self.cluster.secret_names
        if self.django_redis is not None:
            return f"the django-redis cache {self.django_redis!r}"
        if self.redis_kwargs:
            return repr(mask_mapping(self.redis_kwargs, names))
        return mask_url(self.redis_url, names) if self.redis_url else "$Q_REDIS_URL or default"

    def __repr__(self) -> str:  # the dataclass's would show the Redis password
        return f"QSettings(cluster={self.cluster!r}, redis={self.redis_display})"


def _raw() -> Mapping[str, Any]:
    from django.conf import settings

    raw = getattr(settings, "Q_CLUSTER", None)
    return {} if raw is None else raw


def problems(raw: object) -> list[tuple[str, str]]:
    """Every problem with a ``Q_CLUSTER`` value, as ``(check id, message)`` pairs."""
    if not isinstance(raw, Mapping):
        return [("qdjango.E001", f"Q_CLUSTER must be a dict, not a {type(raw).__name__}")]
    found: list[tuple[str, str]] = []
    known = DJANGO_KEYS | ClusterConfig.field_names()
    beside = _django_q_installed()
    for key in sorted(map(str, raw)):
        if key in known:
            continue
        hint = SEED_ONLY_KEYS.get(key)
        if hint is not None and beside:
            # Both run side by side during a switch: the key is django-q2's, Q ignores it.
            found.append(
                (
                    "qdjango.W001",
                    f"Q_CLUSTER[{key!r}] is django-q2's, ignored by Q while django_q is "
                    f"installed; then {hint} (see {MIGRATION_PAGE})",
                )
            )
            continue
        if hint is not None:
            message = (
                f"Q_CLUSTER[{key!r}] is a Django Q setting that Q does not have: {hint} "
                f"(see {MIGRATION_PAGE})"
            )
        else:
            close = difflib.get_close_matches(key, known, n=1)
            guess = f"did you mean {close[0]!r}? " if close else ""
            message = (
                f"Q_CLUSTER[{key!r}] is not a setting; {guess}known settings are "
                f"{', '.join(sorted(known))}"
            )
        found.append(("qdjango.E002", message))
    for key in sorted(DJANGO_KEYS & set(raw)):
        try:
            CHECKERS[key](raw[key])
        except ConfigError as exc:
            found.append(("qdjango.E003", f"Q_CLUSTER[{key!r}]: {exc}"))
    try:
        _cluster_config(raw)
    except ConfigError as exc:
        found.append(("qdjango.E004", f"Q_CLUSTER: {exc}"))
    return found


def _django_q_installed() -> bool:
    """Whether django-q2's app is installed beside Q's (a site in the middle of a switch)."""
    from django.apps import apps

    return apps.ready and apps.is_installed("django_q")


def parse(raw: object) -> QSettings:
    """Validate a ``Q_CLUSTER`` value; raise ConfigError listing every problem (warnings,
    ``qdjango.W...``, are ``manage.py check``'s only)."""
    found = [(cid, message) for cid, message in problems(raw) if cid.startswith("qdjango.E")]
    if found:
        raise ConfigError("; ".join(f"{message} ({cid})" for cid, message in found))
    assert isinstance(raw, Mapping)
    redis = raw.get("redis")
    compress = raw.get("compress")
    return QSettings(
        cluster=_cluster_config(raw),
        redis_url=redis if isinstance(redis, str) else None,
        redis_kwargs=dict(redis) if isinstance(redis, Mapping) else {},
        django_redis=raw.get("django_redis"),
        compress_threshold=_compress_threshold(compress),
        max_size=raw.get("max_size", DEFAULT_MAX_SIZE),
        sync=bool(raw.get("sync", False)),
        label=raw.get("label"),
        save_limit=raw.get("save_limit", 250),
        database=raw.get("database"),
        producer_retry=float(raw.get("producer_retry", 2.0)),
        producer_timeout=float(raw.get("producer_timeout", 5.0)),
        wire_version=raw.get("wire_version"),
        wait_replicas=raw.get("wait_replicas", 0),
        wait_timeout=float(raw.get("wait_timeout", 2.0)),
    )


def _cluster_config(raw: Mapping[str, Any]) -> ClusterConfig:
    values = {k: v for k, v in raw.items() if k in ClusterConfig.field_names()}
    # As in Django Q, the cluster's name is also its queue unless a queue is named; with
    # several queues, the first is where async_task sends by default.
    if "queues" in values and "queue" not in values:
        values["queue"] = ClusterConfig(queues=values["queues"]).queue_plan()[0][0]
    if "name" in values and "queue" not in values:
        values["queue"] = values["name"]
    if "time_zone" not in values:
        # Schedules keep their wall-clock time in Django's time zone unless told otherwise.
        from django.conf import settings

        values["time_zone"] = getattr(settings, "TIME_ZONE", None) or "UTC"
    if raw.get("save_limit") == -1:
        # Keep no successes at all: the cluster need not even send them to the store.
        values.setdefault("save", False)
    return ClusterConfig.from_mapping(values)


def _compress_threshold(value: object) -> int | None:
    if value is None:
        return DEFAULT_COMPRESS_THRESHOLD
    if value is False:
        return None
    if value is True:
        return 1024
    assert isinstance(value, int)
    return value


# Derived objects, dropped whenever a setting they depend on changes.
_lock = threading.Lock()
_cache: dict[str, Any] = {}
_callbacks: list[Callable[[], None]] = []
WATCHED = frozenset({"Q_CLUSTER", "SECRET_KEY", "SECRET_KEY_FALLBACKS", "CACHES", "DATABASES"})


def on_change(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` whenever a setting Q derives state from changes (decorator-friendly)."""
    _callbacks.append(callback)
    return callback


def reset(**_: Any) -> None:
    """Forget everything derived from settings."""
    with _lock:
        _cache.clear()
    for callback in _callbacks:
        callback()


def _setting_changed(*, setting: str, **_: Any) -> None:
    if setting in WATCHED:
        reset()


def connect_signals() -> None:
    from django.core.signals import setting_changed

    setting_changed.connect(_setting_changed, dispatch_uid="qdjango.conf.setting_changed")


def get_settings() -> QSettings:
    """``Q_CLUSTER`` parsed and validated (cached); raises ConfigError naming each problem."""
    found = _cache.get("settings")
    if found is None:
        with _lock:
            found = _cache.get("settings")
            if found is None:
                found = _cache["settings"] = parse(_raw())
    return found  # type: ignore[no-any-return]


def _secrets() -> tuple[str, list[str]]:
    from django.conf import settings

    return settings.SECRET_KEY, list(getattr(settings, "SECRET_KEY_FALLBACKS", []) or [])


def task_codec() -> Codec:
    """The codec that signs task messages: keys derived from SECRET_KEY (+ fallbacks)."""
    found = _cache.get("task_codec")
    if found is None:
        conf = get_settings()
        secret, fallbacks = _secrets()
        found = Codec(
            Signer.from_secret(secret, fallbacks),
            max_size=conf.max_size,
            compress_threshold=conf.compress_threshold,
            write_version=conf.wire_version,
        )
        _cache["task_codec"] = found
    return found  # type: ignore[no-any-return]


def record_codec() -> Codec:
    """The codec of pickled database columns: a key derived for that purpose alone, so a
    row written by hand into the table is never unpickled."""
    found = _cache.get("record_codec")
    if found is None:
        secret, fallbacks = _secrets()
        found = Codec(
            Signer.from_secret(secret, fallbacks, purpose="qdjango.records"),
            max_size=1 << 31,
            compress_threshold=DEFAULT_COMPRESS_THRESHOLD,
        )
        _cache["record_codec"] = found
    return found  # type: ignore[no-any-return]


def __getattr__(name: str) -> Any:
    # ``from qdjango.conf import redis_client``, as Django Q's Tasks page shows it.
    if name == "redis_client":
        from qdjango.connection import redis_client

        return redis_client()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
