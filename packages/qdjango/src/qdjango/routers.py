"""A database router that keeps Q's tables where ``Q_CLUSTER["database"]`` says.

Add ``"qdjango.routers.QRouter"`` to ``DATABASE_ROUTERS`` to store task records in another
database than ``default``. Without ``database`` in ``Q_CLUSTER`` it has no opinion.
"""

from __future__ import annotations

from typing import Any

__all__ = ["QRouter"]


def _alias(model: Any) -> str | None:
    if model._meta.app_label != "qdjango":
        return None
    from qdjango.conf import get_settings

    return get_settings().database


class QRouter:
    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return _alias(model)

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return _alias(model)
