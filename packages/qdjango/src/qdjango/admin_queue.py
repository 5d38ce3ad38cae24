"""The admin's "Queue" page: what is in Redis right now, and what to do with dead letters."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse

from qcluster import running_tasks
from qcore import (
    DEAD_REASONS_LIMIT,
    PayloadError,
    QError,
    TaskMessage,
    TaskRunning,
    UnknownTask,
    mask_mapping,
)
from qdjango.conf import get_settings, task_codec

__all__ = ["as_text", "describe_payload", "queue_snapshot", "queue_view", "short_path"]

LIST_LIMIT = 100
REFRESH = 5
"""Seconds between the Queue page's refreshes of its live part."""


def as_text(value: Any) -> str:
    """``value`` as a plain ``str``, which templates and ``format_html`` always escape.

    A task's data is never markup: a ``SafeString`` (from ``mark_safe``, ``format_html``,
    ``render_to_string``) would be rendered as HTML, and ``str()`` of one is a SafeString
    again; ``str.__str__`` gives a plain copy.
    """
    return str.__str__(str(value))


def short_path(dotted: str) -> str:
    """A dotted path as its module's last part and its name (``…jobs.add``): what a list has
    room for on a 1280 px screen (the full path goes in the cell's title)."""
    parts = dotted.split(".")
    return dotted if len(parts) <= 2 else "…" + ".".join(parts[-2:])


def describe_payload(payload: bytes | None) -> dict[str, Any]:
    """Name, func, args and kwargs of a queued payload, if it verifies with our keys."""
    if payload is None:
        return {"readable": False, "problem": "the payload is gone"}
    try:
        message: TaskMessage = task_codec().decode_message(payload)
    except PayloadError as exc:
        return {"readable": False, "problem": str(exc)}
    names = get_settings().cluster.secret_names  # secret-named kwargs are never shown
    return {
        "readable": True,
        "started": message.started,
        "priority": getattr(message.options, "priority", None),
        "name": as_text(message.name),
        "func": as_text(message.func_path),
        "func_short": as_text(short_path(message.func_path)),
        "args": as_text(repr(message.args))[:200],
        "kwargs": as_text(repr(mask_mapping(message.kwargs, names)))[:200],
        "group": None if message.group is None else as_text(message.group),
    }


def queue_snapshot(limit: int = LIST_LIMIT) -> dict[str, Any]:
    """Sizes, clusters, in-flight tasks and dead letters of ``Q_CLUSTER``'s queue."""
    from qdjango import connection

    transport = connection.transport()
    dead = []
    for letter in transport.dead_letters(limit):
        dead.append(
            {
                "task_id": letter.task_id,
                "reason": as_text(letter.reason),
                "attempts": letter.attempts,
                "failed_at": dt.datetime.fromtimestamp(letter.failed_at, dt.UTC),
                **describe_payload(letter.payload),
            }
        )
    clusters = []
    for status in connection.status_board().clusters():
        workers = status.get("workers") or []
        started = status.get("started_at")
        clusters.append(
            {
                **status,
                "busy": sum(1 for w in workers if w.get("state") in ("running", "saving", "hook")),
                "started": None if started is None else dt.datetime.fromtimestamp(started, dt.UTC),
            }
        )
    inflight = [
        {
            "task_id": t.task_id,
            "consumer": t.consumer,
            # A worker's consumer id is <cluster id>.<worker index>.<generation>.
            "cluster": t.consumer.rsplit(".", 2)[0],
            "attempt": t.attempt,
        }
        for t in transport.inflight(limit)
    ]
    dead_size = transport.dead_size()
    return {
        "queue": transport.queue,
        "url": transport.url,
        "sizes": {
            "queued": transport.queue_size(),
            "in flight": transport.inflight_size(),
            "delayed": transport.delayed_size(),
            "dead letters": dead_size,
        },
        # Counted by the kind of their reason (UnknownKey, WorkerLost, ...), the newest only.
        "dead_reasons": transport.dead_reasons(DEAD_REASONS_LIMIT) if dead_size else {},
        "dead_reasons_of": DEAD_REASONS_LIMIT if dead_size > DEAD_REASONS_LIMIT else None,
        "clusters": clusters,
        "running": [
            {
                "task_id": task.task_id,
                "name": as_text(task.name or ""),
                "func": as_text(task.func or ""),
                "func_short": as_text(short_path(task.func or "")),
                "consumer": task.consumer,
                "started": None
                if task.started_at is None
                else dt.datetime.fromtimestamp(task.started_at, dt.UTC),
                "attempt": task.attempt,
            }
            for task in running_tasks(clusters)[:limit]
        ],
        "inflight": inflight,
        "dead": dead,
    }


def _act(request: HttpRequest, action: str) -> str:
    from qdjango import connection

    if action == "cancel":
        return _cancel(request)
    everything = request.POST.get("scope") == "all"
    ids = None if everything else request.POST.getlist("task_id")
    if ids == []:
        return "Select some dead letters first (or use the buttons for all of them)."
    transport = connection.transport()
    if action == "requeue":
        count = transport.requeue_dead(ids)
        return f"{count} dead letter(s) queued again."
    count = transport.purge_dead(ids)
    return f"{count} dead letter(s) deleted."


def _cancel(request: HttpRequest) -> str:
    from qdjango.tasks import cancel

    task_id = request.POST.get("cancel_id", "").strip()
    if not task_id:
        return "Give the id of the task to cancel."
    terminate = request.POST.get("terminate") == "1"
    where = cancel(task_id, terminate=terminate)
    if where == "terminating":
        return (
            f"Task {task_id} is running: its cluster stops it within about half a second "
            "(killing its worker process, which is replaced, or, for an async def task awaited "
            "beside others, cancelling it in its worker's event loop) and it ends as a Failure "
            "'Cancelled', unless it finishes first."
        )
    return f"Task {task_id} ({where}) is cancelled: it will not run, and ends as a Failure."


def _may(request: HttpRequest, model_admin: Any, action: str) -> bool:
    """Requeueing runs tasks again and cancelling stops them: a change. Purging deletes them
    for good: a delete."""
    opts = model_admin.model._meta
    codename = {"requeue": "change", "cancel": "change", "purge": "delete"}[action]
    return bool(request.user.has_perm(f"{opts.app_label}.{codename}_{opts.model_name}"))


def queue_view(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """GET (view or change permission): the page. POST: requeue dead letters or cancel a task
    (change permission), or purge dead letters (delete permission)."""
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action not in ("requeue", "purge", "cancel") or not _may(request, model_admin, action):
            raise PermissionDenied
        try:
            model_admin.message_user(request, _act(request, action), messages.SUCCESS)
        except (UnknownTask, TaskRunning) as exc:
            model_admin.message_user(request, str(exc), messages.ERROR)
        except QError as exc:
            model_admin.message_user(request, f"Redis refused: {exc}", messages.ERROR)
        return HttpResponseRedirect(request.path)
    if not model_admin.has_view_or_change_permission(request):
        raise PermissionDenied
    can_requeue = _may(request, model_admin, "requeue")
    can_purge = _may(request, model_admin, "purge")
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "title": "Queue",
        "opts": model_admin.model._meta,
        "can_requeue": can_requeue,
        "can_purge": can_purge,
        "can_act": can_requeue or can_purge,
        "cluster_name": get_settings().cluster.name,
        "refresh": REFRESH,
    }
    try:
        context.update(queue_snapshot())
    except QError as exc:
        context["error"] = str(exc)
    live = request.GET.get("live") == "1"
    template = "admin/qdjango/queue_live.html" if live else "admin/qdjango/queue.html"
    return TemplateResponse(request, template, context)


def chart_view(model_admin: Any, request: HttpRequest, name: str) -> HttpResponse:
    """One chart of the Queue page, as SVG (the view permission of the page)."""
    from django.http import Http404

    from qdjango.admin_charts import CHARTS, chart_response

    if not model_admin.has_view_or_change_permission(request):
        raise PermissionDenied
    if name not in CHARTS:
        raise Http404(name)
    return chart_response(name)
