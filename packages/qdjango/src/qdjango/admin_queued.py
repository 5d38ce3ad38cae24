"""The admin's "Queued tasks" page: what waits in Redis for a worker, decoded and verified.

For each queue of ``Q_CLUSTER`` (its ``queue``, then those of ``queues``): ready tasks head
first (the next a worker takes) and delayed tasks by due time; then the next due schedules;
each waiting task with its name, func, a preview of its arguments, when it was
enqueued and its attempts so far. A payload that does not verify is listed as such, never
unpickled. Deleting takes tasks out before a worker runs them (the delete permission); a task a
worker took meanwhile is left alone, and the message says so.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse

from qcore import QError
from qdjango.admin_queue import LIST_LIMIT, as_text, describe_payload, short_path

__all__ = ["configured_queues", "queued_snapshot", "queued_view"]


def configured_queues() -> list[str]:
    """``Q_CLUSTER``'s queue, then the other queues of its ``queues``, each once."""
    from qdjango.conf import get_settings

    conf = get_settings()
    return list(dict.fromkeys([conf.queue, *conf.cluster.queue_plan()[0]]))


def _when(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC)


def _rows(entries: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for entry in entries:
        described = describe_payload(entry.payload)
        rows.append(
            {
                "task_id": entry.task_id,
                "attempts": entry.attempts,
                "due": _when(entry.due),
                "enqueued": _when(described.pop("started", None)),
                **described,
            }
        )
    return rows


def _queue(name: str, limit: int) -> dict[str, Any]:
    from qdjango import connection

    transport = connection.queue_transport(name)
    return {
        "name": name,
        "queued_size": transport.queue_size(),
        "delayed_size": transport.delayed_size(),
        "queued": _rows(transport.waiting(limit)),
        "delayed": _rows(transport.delayed(limit)),
    }


def queued_snapshot(limit: int = LIST_LIMIT) -> dict[str, Any]:
    """For each configured queue its head and first delayed tasks; the next schedules."""
    from qdjango.schedules import store

    queues = [_queue(name, limit) for name in configured_queues()]
    try:
        upcoming = [
            {
                "id": state.spec.id,
                "name": as_text(state.spec.name or state.spec.func),
                "func": as_text(state.spec.func),
                "func_short": as_text(short_path(state.spec.func)),
                "due": state.next_run,
            }
            for state in store().upcoming(20)
        ]
    except QError:
        upcoming = []
    return {
        "queues": queues,
        "any_waiting": any(q["queued"] or q["delayed"] for q in queues),
        "schedules": upcoming,
        "limit": limit,
    }


def _delete(selected: list[str]) -> tuple[list[str], int]:
    """Take the selected (``"<queue> <task id>"``: a queue name has no whitespace) out of
    their queues; returns what was removed and how many were not (taken meanwhile, gone, or
    of a queue ``Q_CLUSTER`` does not name)."""
    from qdjango import connection

    known = set(configured_queues())
    by_queue: dict[str, list[str]] = {}
    for value in selected:
        queue, _, task_id = value.partition(" ")
        if queue in known and task_id:
            by_queue.setdefault(queue, []).append(task_id)
    removed = []
    for queue, ids in by_queue.items():
        removed += connection.queue_transport(queue).remove_waiting(ids)
    return removed, len(selected) - len(removed)


def queued_view(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """GET (view permission): the page. POST (delete permission): take the selected out."""
    opts = model_admin.model._meta
    may_delete = request.user.has_perm(f"{opts.app_label}.delete_{opts.model_name}")
    if request.method == "POST":
        if not may_delete:
            raise PermissionDenied
        selected = request.POST.getlist("task_id")
        if not selected:
            model_admin.message_user(request, "Select some tasks first.", messages.WARNING)
            return HttpResponseRedirect(request.path)
        try:
            removed, left = _delete(selected)
        except QError as exc:
            model_admin.message_user(request, f"Redis refused: {exc}", messages.ERROR)
            return HttpResponseRedirect(request.path)
        note = (
            f"; {left} were not waiting there (taken by a worker meanwhile, gone, or named "
            "under a queue that does not hold them)"
            if left
            else ""
        )
        model_admin.message_user(
            request, f"{len(removed)} waiting task(s) deleted{note}.", messages.SUCCESS
        )
        return HttpResponseRedirect(request.path)
    if not model_admin.has_view_or_change_permission(request):
        raise PermissionDenied
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "title": "Queued tasks",
        "opts": opts,
        "can_delete": may_delete,
    }
    try:
        context.update(queued_snapshot())
    except QError as exc:
        context["error"] = str(exc)
    return TemplateResponse(request, "admin/qdjango/queued.html", context)
