"""Django Q's task API: ``async_task`` (Django Q's ``async``), ``result``, ``fetch`` and the
group helpers.

The hot path is :func:`async_task`: ``qcore``'s one enqueue path (build the message, sign it,
one Redis call). Everything
derived from settings (the codec, the transport) is built once per process and dropped when a
setting changes. Models are imported inside functions, so importing this module (and
``qdjango``) never needs the app registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from qcluster import RunningTask, join, running_tasks
from qcore import (
    Q_OPTION_NAMES,
    ConfigError,
    TaskMessage,
    TaskRunning,
    UnknownTask,
    apply_q_options,
    build_message,
    send_message,
)
from qcore import cancel as qcore_cancel
from qdjango import connection
from qdjango.conf import get_settings, task_codec

__all__ = [
    "Q_OPTIONS",
    "async_task",
    "cancel",
    "count_group",
    "delete_group",
    "fetch",
    "fetch_group",
    "queue_size",
    "result",
    "result_group",
    "running",
]

TaskFunc = Callable[..., Any] | str

_OWN_OPTIONS = frozenset({"sync", "redis", "transport", "broker", "queue"})
Q_OPTIONS = Q_OPTION_NAMES | _OWN_OPTIONS
"""Names ``q_options`` accepts (they win over the keywords of the same name); ``broker`` is
django-q2's name for a transport; ``queue`` names one of ``Q_CLUSTER``'s queues."""


def async_task(
    func: TaskFunc,
    *args: Any,
    hook: TaskFunc | None = None,
    group: str | None = None,
    timeout: float | None = None,
    save: bool | None = None,
    sync: bool | None = None,
    redis: Any = None,
    q_options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> str:
    """Queue ``func(*args, **kwargs)`` for the cluster and return the task's id.

    ``func`` and ``hook`` are callables or dotted paths; ``hook(task)`` is called with the
    saved :class:`~qdjango.models.Task`. ``timeout`` (seconds) and ``save`` override
    ``Q_CLUSTER`` for this task. ``sync=True`` (default: ``Q_CLUSTER["sync"]``) runs the task
    here and now through the worker's code path, saves it and calls its hook, then re-raises
    the task's exception if it raised. ``redis`` reuses a redis client or pool. ``q_options``
    carries the same options (plus ``task_name``, ``max_attempts``, ``eta``, ``countdown``,
    ``transport`` or django-q2's name for it, ``broker``) for tasks whose own kwargs use those
    names: a keyword named in ``q_options`` is passed to the task instead (when it is not None).
    ``q_options`` also takes ``priority`` (-100 to 100, higher runs first) and ``queue`` (one
    of ``Q_CLUSTER``'s ``queue`` and ``queues``; another name is refused).

    Like Django Q, a dotted path is not checked here: a path that does not resolve becomes a
    Failure record naming it.
    """
    transport = None
    if q_options:
        # This call's own options; build_message reads the rest the way every producer does.
        chosen = apply_q_options(q_options, {"sync": sync, "redis": redis}, kwargs, Q_OPTIONS)
        sync, redis = chosen["sync"], chosen["redis"]
        transport = _one_transport(chosen.get("transport"), chosen.get("broker"))
        queue = chosen.get("queue")
        if queue is not None:
            if transport is not None:
                raise ConfigError("pass q_options queue or transport (broker), not both")
            transport = connection.served_queue_transport(queue)
        q_options = {k: v for k, v in q_options.items() if k not in _OWN_OPTIONS}
    message = build_message(
        func, args, kwargs, hook=hook, group=group, timeout=timeout, save=save, q_options=q_options
    )
    if sync if sync is not None else get_settings().sync:
        _run_sync(message)
        return message.id
    if transport is None:
        transport = connection.transport() if redis is None else connection.transport_for(redis)
    codec = task_codec()
    task_id = send_message(transport, codec, message, connection.events())
    connection.key_watch().check(codec, transport.queue)
    return task_id


def _run_sync(message: TaskMessage, *, reraise: bool = True) -> None:
    """Run the task here and now (see :func:`run_in_process`); ``reraise=False``: the
    django.tasks backend, whose result says it failed."""
    run_in_process(
        lambda transport, codec: send_message(transport, codec, message), reraise=reraise
    )


def run_in_process(send: Callable[[Any, Any], object], *, reraise: bool = True) -> None:
    """Run what ``send(transport, codec)`` queues here and now, through a cluster worker's own
    code: sign and verify, execute, save, hook with the saved ``Task``; then re-raise the
    first task's exception (unless ``reraise=False``). (``sync=True``: one task; a chain's
    links one after the other; an iteration's calls.)

    The signed message goes through an in-memory transport and :func:`qcluster.join`, so what
    could not travel to a cluster (an unpicklable argument) fails here too, and a delayed
    task runs at once. As in django-q2, ``pre_execute`` and ``post_execute`` are sent, not
    ``pre_enqueue``.
    """
    from qcore.testing import MemoryTransport
    from qdjango.hooks import DjangoHookRunner
    from qdjango.store import DjangoResultStore

    codec = task_codec()
    transport = MemoryTransport(max_attempts=1)
    send(transport, codec)  # the one enqueue path; no bus: no pre_enqueue
    store = DjangoResultStore.from_settings(notify=False)
    try:
        join(
            transport,
            store,
            codec=codec,
            hook_runner=DjangoHookRunner(using=store.using),
            events=connection.events(),
            config=get_settings().cluster,
            run_delayed=True,
            reraise=reraise,
        )
    finally:
        store.close()  # prunes to save_limit: this store saves nothing more


def cancel(task_id: str, terminate: bool = False) -> str:
    """Cancel a task that has not run: it never runs, and ends as a Failure "Cancelled" with
    its hook. Returns ``"queued"`` or ``"delayed"``; with ``terminate=True`` a running task's
    worker is killed (and replaced, as after a timeout): ``"terminating"``. Raises
    :class:`~qcore.TaskRunning` for a running task without ``terminate``, and
    :class:`~qcore.UnknownTask` for an id that is not queued, delayed or running (one that
    finished already says so, as does a held one whose record is saved: its ack is on its
    way)."""
    from qdjango.models import Task

    try:
        return qcore_cancel(connection.transport(), task_codec(), task_id, terminate=terminate)
    except (UnknownTask, TaskRunning):
        task = Task.objects.filter(id=task_id).only("success", "result").first()
        if task is None:
            raise
        if not task.success and str(task.result).startswith("Cancelled:"):
            raise UnknownTask(f"task {task_id!r} was cancelled already") from None
        outcome = "a Success" if task.success else "a Failure"
        raise UnknownTask(f"task {task_id!r} has finished already ({outcome})") from None


# -- results --------------------------------------------------------------------------------


def _is_id(task_id: str) -> bool:
    return len(task_id) == 32


def _wait(task_id: str, wait: float, check: Callable[[], Any], *, any_message: bool) -> Any:
    """``check()`` now, or, with ``wait`` (ms; negative: forever), until it finds something:
    woken by the store's notice that results were saved, not by polling."""
    if wait == 0:
        return check()
    timeout = None if wait < 0 else wait / 1000.0
    return connection.notifier().wait_for(task_id, timeout, check, any_message=any_message)


def fetch(task_id: str, wait: float = 0, *, include_running: bool = False) -> Any:
    """The :class:`~qdjango.models.Task` with this id or humanized name, or None.

    ``wait``: milliseconds to wait for it (-1: forever), woken as soon as it is saved.
    ``include_running``: a task that has no row yet but runs now is returned as a
    :class:`qcluster.RunningTask` (see :func:`running`).
    """
    from qdjango.models import Task

    found = _wait(task_id, wait, lambda: Task.get_task(task_id), any_message=not _is_id(task_id))
    if found is None and include_running:
        now = [task for task in running() if task_id in (task.task_id, task.name)]
        return now[0] if now else None
    return found


def running(task_id: str | None = None, *, queue: str | None = None) -> list[RunningTask]:
    """The tasks the workers of ``queue`` (default ``Q_CLUSTER``'s) run now, or only
    ``task_id``: from the status their clusters publish every ``status_interval`` seconds (no
    write per task), so a task is seen running at most that long after it started."""
    return running_tasks(connection.status_board(queue).clusters(), task_id)


def result(task_id: str, wait: float = 0) -> Any:
    """The task's result (a failure's is its error text), or None while it has not run.

    ``wait`` as in :func:`fetch`. A falsy result (``[]``, ``0``) is returned as it is.
    """
    task = fetch(task_id, wait)
    return None if task is None else task.result


def _group_wait(group_id: str, wait: float, count: int | None, check: Callable[[], Any]) -> Any:
    from qdjango.models import Task

    if count is None:
        return _wait(group_id, wait, check, any_message=True)

    def enough() -> Any:
        return check() if Task.get_group_count(group_id) >= count else None

    return _wait(group_id, wait, enough, any_message=True)


def result_group(
    group_id: str, failures: bool = False, wait: float = 0, count: int | None = None
) -> list[Any] | None:
    """The results of a group (oldest first), or None when there are none yet.

    ``failures`` includes the failures' errors. ``count``: wait (up to ``wait`` ms) until the
    group has that many saved tasks; None if it does not get there.
    """
    from qdjango.models import Task

    def check() -> list[Any] | None:
        return Task.get_result_group(group_id, failures) or None

    return _group_wait(group_id, wait, count, check)  # type: ignore[no-any-return]


def fetch_group(
    group_id: str, failures: bool = True, wait: float = 0, count: int | None = None
) -> Any:
    """The tasks of a group as a QuerySet, or None when there are none yet (``count`` and
    ``wait`` as in :func:`result_group`)."""
    from qdjango.models import Task

    def check() -> Any:
        tasks = Task.get_task_group(group_id, failures)
        return tasks if tasks.exists() else None

    return _group_wait(group_id, wait, count, check)


def count_group(group_id: str, failures: bool = False) -> int:
    """How many tasks of the group were saved (``failures=True``: how many failed)."""
    from qdjango.models import Task

    return Task.get_group_count(group_id, failures)


def delete_group(group_id: str, tasks: bool = False) -> int:
    """Clear a group's label (``tasks=True``: delete its tasks); returns how many."""
    from qdjango.models import Task

    return Task.delete_group(group_id, tasks)


def queue_size(transport: Any = None, redis: Any = None, *, broker: Any = None) -> int:
    """Tasks waiting in the queue (not those already handed to a cluster): ``Q_CLUSTER``'s,
    or ``transport``'s (``broker`` is django-q2's name for it), through ``redis`` (a client or
    pool) if given."""
    transport = _one_transport(transport, broker)
    if transport is None:
        transport = connection.transport() if redis is None else connection.transport_for(redis)
    return int(transport.queue_size())


def _one_transport(transport: Any, broker: Any) -> Any:
    """``transport``, or django-q2's ``broker`` keyword for the same thing (not both)."""
    if broker is None:
        return transport
    if transport is not None and transport is not broker:
        raise ConfigError("pass transport or broker (django-q2's name for it), not both")
    return broker
