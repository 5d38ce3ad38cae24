"""``manage.py check`` for ``Q_CLUSTER``: unknown keys and bad values, each with its id.

qdjango.E001  Q_CLUSTER is not a dict
qdjango.E002  an unknown key (Django Q keys that Q dropped say what to use instead)
qdjango.E003  a bad value of a qdjango setting (redis, django_redis, save_limit, ...)
qdjango.E004  the cluster settings were refused (workers, timeout, retry, ...)
qdjango.E005  an error_reporter whose package is missing (names the extra to install)
qdjango.W001  a django-q2 key, ignored while django_q is installed beside qdjango (a switch)
"""

from __future__ import annotations

from typing import Any

from django.core import checks

__all__ = ["check_error_reporter", "check_q_cluster", "register"]

_HINTS = {
    "qdjango.E001": "Q_CLUSTER = {'name': 'mysite', 'workers': 4, ...}",
    "qdjango.E002": "Remove the key or correct its spelling.",
    "qdjango.E003": None,
    "qdjango.E004": None,
    "qdjango.E005": "Install the extra, or remove the reporter from Q_CLUSTER['error_reporter'].",
    "qdjango.W001": "Remove it together with django_q from INSTALLED_APPS.",
}


def check_q_cluster(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report every problem of ``settings.Q_CLUSTER``."""
    from django.conf import settings

    from qdjango.conf import problems

    raw = getattr(settings, "Q_CLUSTER", None)
    if raw is None:
        return []
    return [
        (checks.Warning if cid.startswith("qdjango.W") else checks.Error)(
            message, hint=_HINTS.get(cid), obj="settings.Q_CLUSTER", id=cid
        )
        for cid, message in problems(raw)
    ]


def check_error_reporter(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """An ``error_reporter`` whose package is not installed (``sentry``: ``sentry-sdk``)."""
    from django.conf import settings

    from qcluster.reporting import check_reporters
    from qcore import ConfigError

    raw = getattr(settings, "Q_CLUSTER", None)
    reporters = raw.get("error_reporter") if isinstance(raw, dict) else None
    if not isinstance(reporters, dict):
        return []  # absent, or refused by check_q_cluster (qdjango.E004)
    try:
        check_reporters(reporters, dist="qtq-django")
    except ConfigError as exc:
        cid = "qdjango.E005"
        return [checks.Error(str(exc), hint=_HINTS[cid], obj="settings.Q_CLUSTER", id=cid)]
    return []


def register() -> None:
    checks.register(check_q_cluster, "qdjango")
    checks.register(check_error_reporter, "qdjango")
