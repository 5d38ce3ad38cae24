"""Q as a ``django.tasks`` backend (Django 6, or the ``django-tasks`` backport on Django 5.2)::

    TASKS = {
        "default": {
            "BACKEND": "qdjango.backends.QBackend",
            "QUEUES": ["default", "emails"],
            "OPTIONS": {"timeout": 60, "max_attempts": 3},
        }
    }

A task goes through Q's one enqueue path as an ordinary message (signed, one Redis call), so
its record is an ordinary ``Task`` row: the admin, ``fetch`` and ``qinfo`` show it, and
``get_result`` shows a task sent with ``async_task``. Django's queue ``"default"`` is
``Q_CLUSTER``'s queue; any other queue name is the Q queue of that name (``manage.py qcluster
--queue emails``). ``run_after`` goes through Q's delayed set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.core import checks
from django.core.signals import setting_changed

from qcore import ConfigError, TaskMessage, TaskOptions, send_message, task_options
from qdjango import connection
from qdjango.conf import get_settings, task_codec
from qdjango.task_results import (
    RUNNER,
    message_result,
    moment,
    row_result,
)
from qdjango.tasks import running
from qdjango.tasks_api import (
    DEFAULT_TASK_QUEUE_NAME,
    BaseTaskBackend,
    InvalidTask,
    Task,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    json_args,
    json_kwargs,
    new_result,
    task_enqueued,
)

__all__ = ["OPTION_NAMES", "QBackend", "QTask"]

READY = TaskResultStatus.READY
_fromtimestamp = datetime.fromtimestamp

OPTION_NAMES = frozenset(
    {
        "timeout",
        "max_attempts",
        "save",
        "retries",
        "retry_backoff",
        "retry_backoff_max",
        "retry_jitter",
        "retry_on",
    }
)
"""What a ``TASKS`` entry's ``OPTIONS`` may set: Q's options for every task it sends."""


def option_problems(options: object) -> list[str]:
    """What is wrong with a ``TASKS`` entry's ``OPTIONS`` (nothing: an empty list)."""
    if not isinstance(options, Mapping):
        return [f"OPTIONS must be a dict, not {type(options).__name__}"]
    out = []
    unknown = sorted(set(map(str, options)) - OPTION_NAMES)
    if unknown:
        out.append(
            f"unknown OPTIONS {', '.join(unknown)}; known are {', '.join(sorted(OPTION_NAMES))}"
        )

    for name in sorted(OPTION_NAMES & set(options)):
        try:
            task_options(**{name: options[name]})
        except ConfigError as exc:
            out.append(f"OPTIONS: {exc}")
    return out


def queue_problems(queues: object) -> list[str]:
    """What is wrong with a ``TASKS`` entry's ``QUEUES`` for Q."""
    from qredis.keys import check_name

    if isinstance(queues, str) or not isinstance(queues, Iterable):
        return [f"QUEUES must be a list of queue names, not {queues!r}"]
    out = []
    for name in queues:
        try:
            check_name("queue", name)
        except ConfigError as exc:
            out.append(f"QUEUES: {exc}")
    return out


_shared: dict[str, QBackend] = {}
"""Q's backends by alias, once Django made them (see :meth:`QTask.get_backend`)."""


def _forget_backends(*, setting: str, **kwargs: Any) -> None:
    if setting == "TASKS":
        _shared.clear()


setting_changed.connect(_forget_backends, dispatch_uid="qdjango.backends.forget")


class QTask(Task):  # type: ignore[misc]
    """The ``Task`` a ``@task`` of Q's backend makes (its ``task_class``): Django's own, whose
    ``get_backend`` keeps the Q backend it found.

    Django looks a task's backend up on every ``enqueue`` (through a thread-local handler:
    about a fifth of Django's own cost of an enqueue, tools/bench/README.md, 'issue 14'). A
    Q backend holds nothing of a thread's, so one is shared; the next ``TASKS`` (a changed
    setting) is looked up again, and another backend (``using(backend=...)``) is Django's.
    """

    __slots__ = ()

    def enqueue(self, *args: Any, **kwargs: Any) -> TaskResult:
        # Django's, without the call to get_backend when the Q backend is known already.
        backend = _shared.get(self.backend)
        if backend is None:
            backend = self.get_backend()
        return backend.enqueue(self, args, kwargs)

    def get_backend(self) -> BaseTaskBackend:
        found = _shared.get(self.backend)
        if found is None:
            backend = super().get_backend()
            if not isinstance(backend, QBackend):
                return backend
            found = _shared[self.backend] = backend
        return found


class QBackend(BaseTaskBackend):
    """``django.tasks`` on Q: a cluster runs the tasks, the ``Task`` table keeps the results."""

    task_class = QTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True  # Q's priorities: -100 to 100, higher first, as Django's

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        # Nothing is refused here: a bad entry would break every module declaring a @task at
        # import. `manage.py check` reports it, and enqueue raises it.
        self._raw_queues = params.get("QUEUES", [DEFAULT_TASK_QUEUE_NAME])
        self._problems: list[str] | None = None
        # Tasks (frozen, hashable) validated already: Django's checks read the function's
        # signature, which costs more than the rest of an enqueue (tools/bench/tasks_ab.py).
        self._valid: set[Task] = set()
        self._options: dict[int, TaskOptions] = {}  # by priority, for tasks without run_after
        # What each task object sends every time (its module path, Q's options), by id(task)
        # (the entry holds the task, so its id is not reused): one look-up instead of hashing
        # the frozen Task (all its fields) and reading the rest again on every enqueue.
        self._plans: dict[int, tuple[Task, str, TaskOptions]] = {}

    # -- checks -----------------------------------------------------------------------------

    def problems(self) -> list[str]:
        """What is wrong with this entry of ``TASKS`` (read once: an entry does not change)."""
        if self._problems is None:
            self._problems = option_problems(self.options) + queue_problems(self._raw_queues)
        return self._problems

    def check(self, **kwargs: Any) -> Iterable[checks.CheckMessage]:
        obj = f"settings.TASKS[{self.alias!r}]"
        return [
            checks.Error(problem, obj=obj, id="qdjango.E101", hint="See Q's django.tasks guide.")
            for problem in self.problems()
        ]

    def validate_task(self, task: Task) -> None:
        if task in self._valid:
            return
        super().validate_task(task)
        problems = self.problems()
        if problems:
            raise InvalidTask(f"TASKS[{self.alias!r}] is misconfigured: {'; '.join(problems)}")
        if task.run_after is None and len(self._valid) < 1024:
            self._valid.add(task)

    # -- sending ----------------------------------------------------------------------------

    def queue_of(self, queue_name: str) -> str:
        """The Q queue a Django queue name maps to."""
        if queue_name == DEFAULT_TASK_QUEUE_NAME:
            return get_settings().queue
        return queue_name

    def _plan(self, task: Task) -> tuple[Task, str, TaskOptions]:
        """``(task, module path, Q's options)`` for a valid task (else Django's error)."""
        plan = self._plans.get(id(task))
        if plan is not None and plan[0] is task:
            return plan
        self.validate_task(task)
        plan = (task, task.module_path, self._task_options(task))
        if task.run_after is None and len(self._plans) < 1024:
            self._plans[id(task)] = plan
        return plan

    def build(self, task: Task, args: Any, kwargs: Any) -> tuple[TaskMessage, TaskResult]:
        """The message to send and the READY result to return, or Django's error for an
        argument its JSON rules refuse (nothing is sent)."""
        _, path, options = self._plan(task)
        args, kwargs = json_args(args), json_kwargs(kwargs)  # or Django's TypeError/ValueError
        message = TaskMessage.new(path, tuple(args), kwargs, options=options)
        result = new_result(
            task,
            message.id,
            READY,
            _fromtimestamp(message.started, UTC),  # moment(), a call less
            None,
            None,
            None,
            args,
            kwargs,
            self.alias,
            [],
            [],
            None,
        )
        return message, result

    def _task_options(self, task: Task) -> TaskOptions:
        """Q's options for a task of this backend, read and checked by ``task_options`` (the
        reader of every entry point); made once per priority for tasks without ``run_after``
        (they are the same each time: reading them cost more than the rest of the message,
        tools/bench/README.md, 'issue 14')."""
        run_after = task.run_after
        if run_after is not None:
            return task_options(
                eta=run_after.timestamp(),
                runner=RUNNER,
                priority=task.priority or None,
                **self._q_options(),
            )
        found = self._options.get(task.priority)
        if found is None:
            found = task_options(runner=RUNNER, priority=task.priority or None, **self._q_options())
            self._options[task.priority] = found
        return found

    def _q_options(self) -> dict[str, Any]:
        """Q's options from ``OPTIONS`` (read once it is known valid: see validate_task)."""
        names = OPTION_NAMES & set(self.options)
        return {name: self.options[name] for name in names}

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        message, result = self.build(task, args, kwargs)
        if get_settings().sync:
            from qdjango.tasks import _run_sync

            _run_sync(message, reraise=False)
            result = self.get_result(message.id)
        else:
            queue_name = task.queue_name
            transport = (
                connection.transport()  # queue_of's answer, without reading the settings twice
                if queue_name == DEFAULT_TASK_QUEUE_NAME
                else connection.queue_transport(queue_name)
            )
            send_message(transport, task_codec(), message, connection.events())
        task_enqueued.send(type(self), task_result=result)
        return result

    async def aenqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        """:meth:`enqueue` on ``redis.asyncio`` (:mod:`qdjango.aio`): no thread per call."""
        if get_settings().sync:
            return await sync_to_async(self.enqueue, thread_sensitive=True)(task, args, kwargs)
        from qdjango import aio

        message, result = self.build(task, args, kwargs)
        await aio.send(message, queue=self.queue_of(task.queue_name))
        await task_enqueued.asend(type(self), task_result=result)
        return result

    # -- results ----------------------------------------------------------------------------

    def get_result(self, result_id: str) -> TaskResult:
        from qdjango.models import Task as Row

        conf = get_settings()
        rows = Row.objects.using(conf.database) if conf.database else Row.objects
        row = rows.filter(pk=result_id).first() if len(result_id) == 32 else None
        if row is not None:
            return row_result(row, backend=self)
        for queue in self._q_queues():
            transport = connection.queue_transport(queue)
            payload = transport.payload(result_id)
            if payload is None:
                continue
            message = task_codec().decode_message(payload)
            now = running(result_id, queue=queue)
            if not now:
                return message_result(message, backend=self)
            return message_result(
                message,
                status=TaskResultStatus.RUNNING,
                started_at=moment(now[0].started_at),
                worker_ids=[now[0].cluster_id] * max(1, now[0].attempt or 1),
                backend=self,
            )
        row = rows.filter(pk=result_id).first() if len(result_id) == 32 else None
        if row is not None:  # it finished while we looked
            return row_result(row, backend=self)
        raise TaskResultDoesNotExist(result_id)

    def _q_queues(self) -> list[str]:
        names = self.queues or {DEFAULT_TASK_QUEUE_NAME}
        return sorted({self.queue_of(name) for name in names})
