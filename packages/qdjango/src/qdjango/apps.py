"""The Django app: registers the system checks and follows setting changes."""

from __future__ import annotations

from django.apps import AppConfig


class QDjangoConfig(AppConfig):
    name = "qdjango"
    label = "qdjango"
    verbose_name = "Q"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from django.conf import settings

        from qdjango import checks, conf

        checks.register()
        conf.connect_signals()
        # The admin's label for the app (Django Q's ``label``); read here, never at import.
        raw = getattr(settings, "Q_CLUSTER", None)
        label = raw.get("label") if isinstance(raw, dict) else None
        if isinstance(label, str) and label.strip():
            self.verbose_name = label
