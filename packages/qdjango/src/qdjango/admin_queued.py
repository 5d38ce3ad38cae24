"""The admin's "Queued tasks" page: what waits in Redis for a worker, decoded and verified.

Ready tasks head first (the next a worker takes), delayed tasks by due time, and the next due
schedules; each waiting task with its name, func, a preview of its arguments, when it was
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
from qdjango.admin_queue import LIST_LIMIT, as_text, describe_payload

__all__ = ["queued_snapshot", "queued_view"]


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


def queued_snapshot(limit: int = LIST_LIMIT) -> dict[str, Any]:
    """The head of the queue, the first delayed tasks and the next schedules."""
    from qdjango import connection
    from qdjango.schedules import store

    transport = connection.transport()
    try:
        upcoming = [
            {
                "id": state.spec.id,
                "name": as_text(state.spec.name or state.spec.func),
                "func": as_text(state.spec.func),
                "due": state.next_run,
            }
            for state in store().upcoming(20)
        ]
    except QError:
        upcoming = []
    return {
        "queue": transport.queue,
        "queued_size": transport.queue_size(),
        "delayed_size": transport.delayed_size(),
        "queued": _rows(transport.waiting(limit)),
        "delayed": _rows(transport.delayed(limit)),
        "schedules": upcoming,
        "limit": limit,
    }


def queued_view(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """GET (view permission): the page. POST (delete permission): take the selected out."""
    opts = model_admin.model._meta
    may_delete = request.user.has_perm(f"{opts.app_label}.delete_{opts.model_name}")
    if request.method == "POST":
        if not may_delete:
            raise PermissionDenied
        from qdjango import connection

        ids = request.POST.getlist("task_id")
        if not ids:
            model_admin.message_user(request, "Select some tasks first.", messages.WARNING)
            return HttpResponseRedirect(request.path)
        try:
            removed = connection.transport().remove_waiting(ids)
        except QError as exc:
            model_admin.message_user(request, f"Redis refused: {exc}", messages.ERROR)
            return HttpResponseRedirect(request.path)
        left = len(set(ids) - set(removed))
        note = f"; {left} had already been taken by a worker (or were gone)" if left else ""
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
