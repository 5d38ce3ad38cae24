"""The Django app: registers the system checks, follows setting changes and keeps URL
passwords off Django's error page (:mod:`qdjango.debug`)."""

from __future__ import annotations

from django.apps import AppConfig


class QDjangoConfig(AppConfig):
    name = "qdjango"
    label = "qdjango"
    default_auto_field = "django.db.models.AutoField"

    @property  # type: ignore[override]
    def verbose_name(self) -> str:
        """The admin's name for the app: ``Q_CLUSTER["label"]`` (Django Q's), else "Q".

        Read when shown, never at import, and never raising: ``manage.py check`` reports a
        bad value."""
        from django.conf import settings

        raw = getattr(settings, "Q_CLUSTER", None)
        label = raw.get("label") if isinstance(raw, dict) else None
        return label if isinstance(label, str) and label.strip() else "Q"

    def ready(self) -> None:
        from qdjango import checks, conf, debug, schedules

        checks.register()
        conf.connect_signals()
        debug.install()
        schedules.connect_signals()
