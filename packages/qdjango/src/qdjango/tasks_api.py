"""Django's tasks framework, from where this Django has it: ``django.tasks`` (Django 6) or the
``django-tasks`` backport (Django 5.2), which has the same API under other module names.

Imported only by the ``django.tasks`` backend's modules, so a site that does not use the
framework never needs the backport.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qcore import unchecked_constructor

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
    ``__post_init__`` normalizes the arguments again): through the slots' descriptors where
    this Django's ``TaskResult`` has the layout Q knows, else by ``set_fields``."""
    fields = tuple(getattr(TaskResult, "__dataclass_fields__", ()))
    if fields == _RESULT_FIELDS and "__slots__" in TaskResult.__dict__:
        return _twin_builder() or unchecked_constructor(TaskResult)

    def build(*values: Any) -> Any:
        result = object.__new__(TaskResult)
        set_fields(result, **dict(zip(_RESULT_FIELDS, values, strict=True)))
        return result

    return build


def _twin_builder() -> Callable[..., Any] | None:
    """A constructor that builds an object of a twin class (the same bases and slots, not
    frozen: its ``__init__`` stores each field as a plain attribute, which the interpreter
    specializes) and then makes it a ``TaskResult`` by setting ``__class__``, which Python
    allows between classes of the same layout: half the cost of a call to each slot's
    descriptor (tools/bench/README.md, 'issue 14'). None where this Python refuses it."""
    params = ", ".join(_RESULT_FIELDS)
    lines = [
        "class Twin(*bases):",
        f"    __slots__ = {_RESULT_FIELDS!r}",
        f"    def __init__(self, {params}):",
        *(f"        self.{name} = {name}" for name in _RESULT_FIELDS),
        f"def build({params}):",
        f"    obj = Twin({params})",
        "    obj.__class__ = target",
        "    return obj",
    ]
    bases = TaskResult.__dict__.get("__orig_bases__", TaskResult.__bases__)  # Generic[T]
    namespace: dict[str, Any] = {"bases": bases, "target": TaskResult}
    try:
        exec("\n".join(lines), namespace)  # the source is built from field names only
        build: Callable[..., Any] = namespace["build"]
        probe = build(*_RESULT_FIELDS)
    except TypeError:  # a layout __class__ cannot change between
        return None
    if type(probe) is not TaskResult or probe._return_value != "_return_value":
        return None
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
