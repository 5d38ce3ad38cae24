"""The hook runner a cluster uses for a Django site: ``hook(task)`` with the saved ``Task``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qcore import TaskResult
from qdjango.process import DjangoContext
from qdjango.records import task_from_record
from qdjango.store import was_saved

__all__ = ["DjangoHookRunner"]


class DjangoHookRunner:
    """Calls ``hook(task)`` where ``task`` is the :class:`~qdjango.models.Task` the record was
    saved as. The instance is built from the record the cluster just saved, so running a
    hook costs no query; a record that was not saved (``save=False``, ``save_limit=-1``)
    gives an unsaved instance. Picklable: a child process sets Django up on first use.
    """

    def __init__(self, *, using: str | None = None, context: DjangoContext | None = None) -> None:
        if using is None:
            from django.db import router

            from qdjango.models import Task

            using = router.db_for_write(Task) or "default"
        self.using = using
        self.context = context or DjangoContext.capture(using)

    @classmethod
    def from_settings(cls) -> DjangoHookRunner:
        from qdjango.conf import get_settings

        return cls(using=get_settings().database)

    def __call__(self, hook: Callable[..., Any], record: TaskResult) -> None:
        self.context.ensure()
        hook(task_from_record(record, using=self.using, saved=was_saved(record.id)))

    def __repr__(self) -> str:
        return f"DjangoHookRunner(using={self.using!r})"
