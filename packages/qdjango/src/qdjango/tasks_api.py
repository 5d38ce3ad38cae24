"""Django's tasks framework, from where this Django has it: ``django.tasks`` (Django 6) or the
``django-tasks`` backport (Django 5.2), which has the same API under other module names.

Imported only by the ``django.tasks`` backend's modules, so a site that does not use the
framework never needs the backport.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qcore.slots import retyped_constructor

try:
    from django.tasks import (
        DEFAULT_TASK_QUEUE_NAME,
        Task,
        TaskContext,
        TaskResult,
        TaskResultStatus,
        task,
        task_backends,
    )
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import TaskError
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json
except ImportError:  # Django 5.2: the backport
    from django_tasks import (  # type: ignore[no-redef]
        DEFAULT_TASK_QUEUE_NAME,
        TaskContext,
        TaskResult,
        TaskResultStatus,
        task,
        task_backends,
    )
    from django_tasks.backends.base import BaseTaskBackend  # type: ignore[no-redef]
    from django_tasks.base import Task, TaskError  # type: ignore[no-redef]
    from django_tasks.exceptions import (  # type: ignore[no-redef]
        InvalidTaskError as InvalidTask,
    )
    from django_tasks.exceptions import TaskResultDoesNotExist  # type: ignore[no-redef]
    from django_tasks.signals import (  # type: ignore[no-redef]
        task_enqueued,
        task_finished,
        task_started,
    )
    from django_tasks.utils import normalize_json  # type: ignore[no-redef]

__all__ = [
    "DEFAULT_TASK_QUEUE_NAME",
    "BaseTaskBackend",
    "InvalidTask",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultStatus",
    "json_args",
    "json_kwargs",
    "json_value",
    "new_result",
    "normalize_json",
    "set_fields",
    "task",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_started",
]


def set_fields(result: Any, **values: Any) -> None:
    """Set fields of a frozen ``TaskResult``, as Django's own backends do."""
    for name, value in values.items():
        object.__setattr__(result, name, value)


_RESULT_FIELDS = (
    "task",
    "id",
    "status",
    "enqueued_at",
    "started_at",
    "finished_at",
    "last_attempted_at",
    "args",
    "kwargs",
    "backend",
    "errors",
    "worker_ids",
    "_return_value",
)


def _result_builder() -> Callable[..., Any]:
    """A constructor of ``TaskResult`` from its fields, skipping ``__init__`` (its
    ``__post_init__`` normalizes the arguments again): through a twin class's slots
    (:func:`qcore.slots.retyped_constructor`) where this Django's ``TaskResult`` has the
    layout Q knows, else by ``set_fields``."""
    fields = tuple(getattr(TaskResult, "__dataclass_fields__", ()))
    if fields == _RESULT_FIELDS and "__slots__" in TaskResult.__dict__:
        return retyped_constructor(TaskResult)  # a third of unchecked_constructor's cost

    def build(*values: Any) -> Any:
        result = object.__new__(TaskResult)
        set_fields(result, **dict(zip(_RESULT_FIELDS, values, strict=True)))
        return result

    return build


new_result = _result_builder()
"""``new_result(task, id, status, enqueued_at, started_at, finished_at, last_attempted_at,
args, kwargs, backend, errors, worker_ids, return_value)``: a ``TaskResult`` whose arguments
were held to Django's JSON rules already (:func:`json_args`)."""

_PLAIN = frozenset({str, int, float, bool, type(None)})


def json_args(args: Any) -> list[Any]:
    """``normalize_json(args)``: Django's JSON rules for a task's arguments (its own error for
    what they refuse), with the common case of plain values taken as they are (what
    ``normalize_json`` returns for them) instead of matched one by one."""
    if type(args) is tuple or type(args) is list:
        for value in args:  # a loop, not all(<generator>): half the cost for a few values
            if type(value) not in _PLAIN:
                return normalize_json(args)  # type: ignore[no-any-return]
        return list(args)
    return normalize_json(args)  # type: ignore[no-any-return]


def json_kwargs(kwargs: Any) -> dict[str, Any]:
    """``normalize_json(kwargs)``, plain values taken as they are (see :func:`json_args`)."""
    if type(kwargs) is dict:
        for key, value in kwargs.items():
            if type(key) is not str or type(value) not in _PLAIN:
                return normalize_json(kwargs)  # type: ignore[no-any-return]
        return dict(kwargs)
    return normalize_json(kwargs)  # type: ignore[no-any-return]


def json_value(value: Any) -> Any:
    """``normalize_json(value)`` for a task's return value, a plain value as it is."""
    return value if type(value) in _PLAIN else normalize_json(value)
