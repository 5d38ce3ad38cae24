"""The admin: successful and failed tasks (read-only, searchable, filterable), a "retry"
action for failures ("run again" for successes), and the "Queue" page (sizes, in-flight
tasks, dead letters).

A retry sends the stored task again through qcore's one enqueue path, with its own options,
under a new id that records which task it retries; each task's page links to the other."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from qcore import retry_message, send_message
from qdjango.admin_queue import queue_view
from qdjango.models import Failure, QueueStatus, Success, Task

__all__ = ["FailureAdmin", "QueueAdmin", "SuccessAdmin"]


def _resubmit(tasks: QuerySet[Any]) -> list[str]:
    """Send each task again as it was sent (see ``qcore.retry_message``); returns the new ids."""
    from qdjango.conf import task_codec
    from qdjango.connection import transport as site_transport
    from qdjango.store import record_from_task

    transport, codec = site_transport(), task_codec()
    ids = []
    for task in tasks:
        message = retry_message(record_from_task(task))
        send_message(transport, codec, message)
        ids.append(message.id)
    return ids


def _task_link(task: Task) -> str:
    admin_name = "success" if task.success else "failure"
    url = reverse(f"admin:qdjango_{admin_name}_change", args=[task.pk])
    return format_html('<a href="{}">{}</a>', url, task.name)


class _TaskAdmin(admin.ModelAdmin):
    """Records are written by clusters only: viewable, deletable, never edited here."""

    list_display: Any = ("name", "func", "group", "cluster", "started", "stopped", "time_taken")
    search_fields = ("name", "func", "group", "id")
    list_filter: Any = ("group", "cluster")
    date_hierarchy = "stopped"
    list_per_page = 50
    fields = (
        "id",
        "name",
        "func",
        "hook",
        "group",
        "cluster",
        "args_repr",
        "kwargs_repr",
        "result_text",
        "started",
        "stopped",
        "time_taken",
        "attempt_count",
        "success",
        "options_repr",
        "retried_from_link",
        "retries",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        # Running code again is a change to the system, not something a viewer may do.
        return bool(request.user.has_perm("qdjango.change_task"))

    @admin.display(description="args")
    def args_repr(self, task: Task) -> str:
        return repr(task.args)

    @admin.display(description="kwargs")
    def kwargs_repr(self, task: Task) -> str:
        return repr(task.kwargs)

    @admin.display(description="options")
    def options_repr(self, task: Task) -> str:
        return repr(task.options or {})

    @admin.display(description="retry of")
    def retried_from_link(self, task: Task) -> str:
        if not task.retried_from:
            return "-"
        original = Task.objects.filter(pk=task.retried_from).first()
        return task.retried_from if original is None else _task_link(original)

    @admin.display(description="retried as")
    def retries(self, task: Task) -> str:
        found = Task.objects.filter(retried_from=task.pk).order_by("started")
        links = [_task_link(retry) for retry in found]
        return format_html_join(", ", "{}", ((link,) for link in links)) if links else "-"

    @admin.display(description="result")
    def result_text(self, task: Task) -> str:
        value = task.result
        return format_html("<pre>{}</pre>", value if isinstance(value, str) else repr(value))

    @admin.display(description="time taken (s)")
    def time_taken(self, task: Task) -> str:
        return f"{task.time_taken():.3f}"


@admin.register(Success)
class SuccessAdmin(_TaskAdmin):
    actions = ("run_again",)

    @admin.action(description="Run the selected tasks again", permissions=["retry"])
    def run_again(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        ids = _resubmit(queryset)
        self.message_user(request, f"{len(ids)} task(s) queued again.", messages.SUCCESS)


@admin.register(Failure)
class FailureAdmin(_TaskAdmin):
    list_display = ("name", "func", "group", "stopped", "time_taken", "short_result")
    actions = ("retry",)

    @admin.action(
        description="Retry the selected tasks (queue each again as a new task)",
        permissions=["retry"],
    )
    def retry(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        ids = _resubmit(queryset)
        self.message_user(
            request,
            f"{len(ids)} task(s) queued again as new tasks; each failure links to its retry.",
            messages.SUCCESS,
        )


@admin.register(QueueStatus)
class QueueAdmin(admin.ModelAdmin):
    """The queue in Redis: a page of its own rather than a list of rows."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return queue_view(self, request)

    def get_urls(self) -> list[Any]:
        # Only the page itself: there are no rows to add, change or delete.
        return [u for u in super().get_urls() if (u.name or "").endswith("_changelist")]
