"""Django in the cluster's processes: set up once, on the same databases as the parent.

Objects the cluster pickles into its children (the result store, the hook runner) carry a
:class:`DjangoContext`. Under ``spawn`` and ``forkserver`` a child starts with no Django at
all: the context sets ``DJANGO_SETTINGS_MODULE`` and calls ``django.setup()``, then points each
database alias at the database the parent was really using (under a test runner that is the
test database, not the one named in settings). Under ``fork`` Django is already set up, but the
parent's database connections must not be shared: the parent closes them before it forks
(:func:`close_connections`), and a child never closes what it inherited.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from qcore import ConfigError

__all__ = ["DjangoContext", "close_connections"]


# Connections a forked child inherited. Kept referenced forever: were they garbage collected,
# the driver would say goodbye to the server over the parent's socket and end its session.
_inherited: list[Any] = []
_checked_pid = os.getpid()


def _forget_inherited_connections() -> None:
    global _checked_pid
    if _checked_pid == os.getpid():
        return
    _checked_pid = os.getpid()
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        _inherited.append(conn)
        del connections[conn.alias]


@dataclass(frozen=True)
class DjangoContext:
    settings_module: str | None
    database_names: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def capture(cls, *aliases: str) -> DjangoContext:
        """The settings module and the real database names of ``aliases``, in this process."""
        from django.db import connections

        names = {alias: connections[alias].settings_dict["NAME"] for alias in aliases}
        return cls(os.environ.get("DJANGO_SETTINGS_MODULE"), names)

    def ensure(self) -> None:
        """Set Django up in this process if it is not yet (cheap once it is)."""
        from django.apps import apps

        if apps.ready:
            _forget_inherited_connections()
            return
        import django
        from django.conf import settings

        if not settings.configured:
            if self.settings_module is None:
                raise ConfigError(
                    "Django is not set up in this process and DJANGO_SETTINGS_MODULE is "
                    "unknown: set it in the environment of the process that starts the cluster"
                )
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", self.settings_module)
        django.setup()
        from django.db import connections

        for alias, name in self.database_names.items():
            if alias in connections.settings:
                # Before any connection opens: the parent's database may be a test database.
                connections[alias].settings_dict["NAME"] = name


def close_connections() -> None:
    """Close this process's database connections (before forking, so none is shared)."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close()
