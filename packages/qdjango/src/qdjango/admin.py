"""The admin: successful and failed tasks (read-only, searchable, filterable), a "retry"
action for failures ("run again" for successes), the "Queue" page (sizes, in-flight
tasks, dead letters) and the "Scheduled tasks" page (:mod:`qdjango.admin_schedules`).

A retry sends the stored task again through qcore's one enqueue path, with its own options,
under a new id that records which task it retries; each task's page links to the other. It
sends only rows whose signature verifies (:func:`qdjango.records.verified_records`): a row
changed in the database (its func, say) is refused, and nothing of the selection is queued.

Task data is shown as text, always escaped (see ``as_text``). Rights match actions: retry and
"run again" need the change permission, deleting rows the delete permission (Django's own
action), and on the Queue page requeueing needs change, purging delete."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from qcore import mask_mapping, retry_message, send_message
from qdjango.admin_queue import as_text, queue_view
from qdjango.admin_schedules import ScheduleAdmin
from qdjango.conf import get_settings
from qdjango.models import Failure, QueueStatus, Success, Task
from qdjango.records import verified_records

__all__ = ["FailureAdmin", "QueueAdmin", "ScheduleAdmin", "SuccessAdmin"]


def _resubmit(admin_: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> None:
    """Send each selected task again as it was sent (``qcore.retry_message``), when every one
    of them verifies; otherwise send none and say which were refused and why."""
    from qdjango.conf import task_codec
    from qdjango.connection import transport as site_transport

    records, refused = verified_records(queryset.values_list("pk", flat=True), using=queryset.db)
    if refused:
        listed = "; ".join(f"{as_text(r.name)} ({r.reason})" for r in refused[:10])
        more = f" and {len(refused) - 10} more" if len(refused) > 10 else ""
        admin_.message_user(
            request,
            f"Nothing was queued: Q sends a stored task again only if its record verifies, and "
            f"{len(refused)} of the selected did not: {listed}{more}.",
            messages.ERROR,
        )
        return
    transport, codec = site_transport(), task_codec()
    for record in records:
        send_message(transport, codec, retry_message(record))
    admin_.message_user(
        request,
        f"{len(records)} task(s) queued again as new tasks; each links to the one it retries.",
        messages.SUCCESS,
    )


def _task_link(task: Task) -> str:
    admin_name = "success" if task.success else "failure"
    url = reverse(f"admin:qdjango_{admin_name}_change", args=[task.pk])
    return format_html('<a href="{}">{}</a>', url, as_text(task.name))


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
        # Running code again is a change to the system, not something a viewer may do. The
        # proxy model's own permission (change_failure, change_success), as for its pages.
        codename = get_permission_codename("change", self.opts)
        return bool(request.user.has_perm(f"{self.opts.app_label}.{codename}"))

    @admin.display(description="args")
    def args_repr(self, task: Task) -> str:
        return as_text(repr(task.args))

    @admin.display(description="kwargs")
    def kwargs_repr(self, task: Task) -> str:
        # Secret-named keyword arguments (api_key=, password=...) are never shown.
        names = get_settings().cluster.secret_names
        return as_text(repr(mask_mapping(task.kwargs or {}, names)))

    @admin.display(description="options")
    def options_repr(self, task: Task) -> str:
        return as_text(repr(task.options or {}))

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
        return format_html(
            "<pre>{}</pre>", as_text(value if isinstance(value, str) else repr(value))
        )

    @admin.display(description="time taken (s)")
    def time_taken(self, task: Task) -> str:
        return f"{task.time_taken():.3f}"


@admin.register(Success)
class SuccessAdmin(_TaskAdmin):
    actions = ("run_again",)

    @admin.action(description="Run the selected tasks again", permissions=["retry"])
    def run_again(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        _resubmit(self, request, queryset)


@admin.register(Failure)
class FailureAdmin(_TaskAdmin):
    list_display = ("name", "func", "group", "stopped", "time_taken", "short_result")
    actions = ("retry",)

    @admin.action(
        description="Retry the selected tasks (queue each again as a new task)",
        permissions=["retry"],
    )
    def retry(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        _resubmit(self, request, queryset)

    @admin.display(description="result")
    def short_result(self, task: Task) -> str:
        return as_text(task.short_result)


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
