"""The ``Q_CLUSTER`` keys only a Django site has (every other key is a field of
:class:`~qcluster.ClusterConfig`): their documentation (:class:`KeyDoc`, which the settings
reference is generated from), the check of each value, and the keys of django-q2 that Q does not
have, each with what to do instead. :mod:`qdjango.conf` parses with them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from qcore import WIRE_WRITES, ConfigError

__all__ = [
    "CHECKERS",
    "DJANGO_KEYS",
    "DJANGO_SETTINGS",
    "MIGRATION_PAGE",
    "SEED_ONLY_KEYS",
    "KeyDoc",
]


@dataclass(frozen=True, slots=True)
class KeyDoc:
    """The documentation of one ``Q_CLUSTER`` key that only a Django site has (the settings
    reference is generated from these, so a key cannot be added without one)."""

    type: str
    default: str
    """As Python would write it; a test checks it against what :func:`qdjango.conf.parse`
    gives."""
    doc: str


# Keys only qdjango understands; every other key must be a ClusterConfig field.
DJANGO_SETTINGS: Mapping[str, KeyDoc] = {
    "redis": KeyDoc(
        "str | dict",
        "None",
        "The Redis of the queue: a URL (``redis://``, ``rediss://`` for TLS, ``unix://``; "
        "``user:password@`` for an ACL user; ``redis+cluster://host:port[,host:port]`` for a "
        "Redis Cluster, ``redis+sentinel://host:port[,host:port]/service[/db]`` for a Sentinel "
        "group's master) or a dict of redis-py keyword arguments. "
        "None: ``$Q_REDIS_URL``, else ``redis://127.0.0.1:6379/0``.",
    ),
    "django_redis": KeyDoc(
        "str",
        "None",
        "The alias of a django-redis cache in ``CACHES`` whose connection pool Q borrows "
        "instead of opening its own (then ``redis`` is not used).",
    ),
    "compress": KeyDoc(
        "bool | int",
        "None",
        "zlib-compress payloads and stored values of at least this many bytes when it makes "
        "them smaller. True: from 1 KiB; False: never; None: from 64 KiB.",
    ),
    "sync": KeyDoc(
        "bool",
        "False",
        "Run every ``async_task`` at once in the calling process, through the worker's code "
        "(record saved, hook called, the task's exception re-raised). For tests.",
    ),
    "label": KeyDoc("str", "None", "The admin's name for Q's app (None: \"Q\")."),
    "save_limit": KeyDoc(
        "int",
        "250",
        "Successes kept in the database, the newest first: 0 keeps all, -1 none (and the "
        "cluster then does not even send them to the store). Failures are always kept.",
    ),
    "database": KeyDoc(
        "str",
        "None",
        "The database alias Q's records are written to, with ``qdjango.routers.QRouter`` in "
        "``DATABASE_ROUTERS`` (None: the routers' choice).",
    ),
    "producer_retry": KeyDoc(
        "float",
        "2.0",
        "Seconds ``async_task``, ``result``, ``qinfo`` and the admin keep retrying a Redis that "
        "refuses or drops the connection before they raise one clear error (the cluster "
        "itself is more patient: it rides out a restart).",
    ),
    "wait_replicas": KeyDoc(
        "int",
        "0",
        "``async_task`` returns only once this many replicas of the Redis master hold the task "
        "(Redis ``WAIT``, at most ``wait_timeout`` seconds, else ``qredis.ReplicationTimeout``), "
        "so a failover cannot lose it. 0: do not wait (a failover can lose the tasks queued "
        "just before it).",
    ),
    "wait_timeout": KeyDoc(
        "float",
        "2.0",
        "Seconds ``async_task`` waits for ``wait_replicas`` replicas before it raises.",
    ),
    "producer_timeout": KeyDoc(
        "float",
        "5.0",
        "Seconds ``async_task``, ``result``, ``qinfo`` and the admin wait for a Redis that "
        "accepts the connection and never answers (a black hole) before they raise.",
    ),
    "max_size": KeyDoc(
        "int",
        "16777216",
        "The largest signed payload or stored value, in bytes (at least 1024): a bigger "
        "task is refused when it is queued, a bigger result is saved as a Failure saying so.",
    ),
    "wire_version": KeyDoc(
        "int",
        "None",
        "The wire's major version this site's producers and cluster write (None: the current "
        "one). Set it to 1 while upgrading from Q 0.1 in either order (producers first: "
        "old clusters read version 1 only; clusters first: old producers read version 1 "
        "results only), and remove it once every process runs this Q.",
    ),
}
DJANGO_KEYS = frozenset(DJANGO_SETTINGS)

MIGRATION_PAGE = "docs/migration/django-q2.md#settings"
"""Where the documentation maps each django-q2 setting to Q's (named by system checks)."""

# Keys Django Q knew that Q does not have, with what to do instead.
SEED_ONLY_KEYS = {
    "cluster_name": "set 'name' (and 'queue') instead",
    "ALT_CLUSTERS": "list the queues in 'queues' (one cluster serves them), or run one "
    "`manage.py qcluster --queue NAME` per queue instead",
    "daemonize_workers": "Q's workers may always start child processes; remove it",
    "queue_limit": "use 'prefetch' (tasks a worker takes per fetch) instead",
    "cpu_affinity": "not supported; remove it",
    "orm": "Q's transport is Redis; remove it",
    "sqs": "Q's transport is Redis; remove it",
    "iron_mq": "Q's transport is Redis; remove it",
    "mongo": "Q's transport is Redis; remove it",
    "mongo_db": "Q's transport is Redis; remove it",
    "broker_class": "Q's transport is Redis; remove it",
    "bulk": "use 'prefetch' instead",
    "poll": "Q's transport is Redis and does not poll; remove it",
    "cache": "Q keeps results in the database; remove it",
    "cached": "Q keeps results in the database; remove it",
    "ack_failures": "Q always acknowledges a task once its Failure is saved; remove it",
    "testing": "not needed; remove it",
    "save_limit_per": "not supported; use 'save_limit'",
}


def _check_redis(value: object) -> None:
    if isinstance(value, str):
        if "://" not in value:
            raise ConfigError(f"a Redis URL looks like redis://host:6379/0, not {value!r}")
        return
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise ConfigError("the keys of a redis-py keyword dict must be strings")
        if value.get("decode_responses"):
            raise ConfigError("decode_responses must be off: Q's payloads are bytes")
        return
    raise ConfigError(
        f"must be a URL such as 'redis://127.0.0.1:6379/0' or a dict of redis-py keyword "
        f"arguments, not a {type(value).__name__}"
    )


def _check_alias(value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"must be a cache alias from CACHES, not {value!r}")
    from django.conf import settings

    if value not in getattr(settings, "CACHES", {}):
        raise ConfigError(f"{value!r} is not an alias in CACHES")
    backend = str(settings.CACHES[value].get("BACKEND", ""))
    if not backend.startswith("django_redis."):
        raise ConfigError(
            f"CACHES[{value!r}] uses {backend!r}, not django-redis "
            "('django_redis.cache.RedisCache'), so it has no Redis pool to share"
        )


def _check_database(value: object) -> None:
    from django.conf import settings

    if not isinstance(value, str) or value not in settings.DATABASES:
        raise ConfigError(f"must be an alias from DATABASES, not {value!r}")


def _check_compress(value: object) -> None:
    if isinstance(value, bool) or value is None:
        return
    if not isinstance(value, int) or value < 0:
        raise ConfigError(
            f"must be True, False or a size in bytes from which payloads are compressed, "
            f"not {value!r}"
        )


def _check_bool(value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"must be True or False, not {value!r}")


def _check_label(value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"must be a non-empty string, not {value!r}")


def _check_save_limit(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        raise ConfigError(
            f"must be an integer: the number of successes to keep, 0 for all, -1 for none; "
            f"not {value!r}"
        )


def _check_max_size(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1024:
        raise ConfigError(f"must be a number of bytes (at least 1024), not {value!r}")


def _check_wire_version(value: object) -> None:
    if value is not None and value not in WIRE_WRITES:
        raise ConfigError(
            f"must be None or a wire major version Q writes ({', '.join(map(str, WIRE_WRITES))})"
            f", not {value!r}"
        )


def _check_replicas(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"must be a whole number of replicas (0: do not wait), not {value!r}")


def _check_seconds(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 3600:
        raise ConfigError(f"must be a positive number of seconds, not {value!r}")


CHECKERS: dict[str, Callable[[object], None]] = {
    "redis": _check_redis,
    "django_redis": _check_alias,
    "compress": _check_compress,
    "sync": _check_bool,
    "label": _check_label,
    "save_limit": _check_save_limit,
    "database": _check_database,
    "max_size": _check_max_size,
    "producer_retry": _check_seconds,
    "producer_timeout": _check_seconds,
    "wire_version": _check_wire_version,
    "wait_replicas": _check_replicas,
    "wait_timeout": _check_seconds,
}
