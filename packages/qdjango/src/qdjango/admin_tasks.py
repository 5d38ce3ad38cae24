"""The admin's task lists: all tasks, successful and failed (read-only, searchable), with a
"retry" action for failures ("run again" for successes and in the list of all tasks).

Each list answers in constant time on a large table: ordered by ``stopped`` (indexed, with
``success`` for the two filtered lists), counted up to :data:`COUNT_CAP` rows only, its
filters' "Show counts" too (:mod:`qdjango.admin_bounded`: never a ``COUNT(*)`` of the whole
table), and filtered by outcome and by how recently tasks finished instead of by distinct
values of a column (a scan).

A retry sends the stored task again through qcore's one enqueue path, with its own options,
under a new id that records which task it retries; each task's page links to the other. It
sends only rows whose signature verifies (:func:`qdjango.records.verified_records`): a row
changed in the database (its func, say) is refused, and nothing of the selection is queued.
Task data is shown as text, always escaped (``as_text``)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_permission_codename
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from qcluster.monitor import seconds_text
from qcore import mask_mapping, retry_message, send_message
from qdjango.admin_bounded import (
    COUNT_CAP,
    CappedPaginator,
    FinishedFilter,
    IndexSortedChangeList,
    OutcomeFilter,
    bounded_search,
)
from qdjango.admin_queue import as_text, short_path
from qdjango.conf import get_settings
from qdjango.models import Task
from qdjango.records import verified_records

__all__ = ["COUNT_CAP", "CappedPaginator", "TaskAdmin", "error_line", "moment_cell", "path_cell"]

SHORT = 120


def error_line(result: Any) -> str:
    """The line that says what went wrong: ``Type: message`` (a Failure's first line), or the
    last line of a bare traceback (a record written by something else)."""
    text = as_text(result if isinstance(result, str) else repr(result)).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1] if lines[0].startswith("Traceback (most recent call last)") else lines[0]
    return line if len(line) <= SHORT else line[: SHORT - 1] + "…"


def path_cell(dotted: str) -> str:
    """A dotted path as its module's last part and its name (the full path in the title): a
    list keeps to one line on a 1280 px screen."""
    path = as_text(dotted)
    return format_html('<span title="{}">{}</span>', path, short_path(path))


def moment_cell(moment: Any) -> str:
    """A time as ``2026-11-30 15:44`` in the site's zone (to the microsecond in the title)."""
    if moment is None:
        return "-"
    local = timezone.localtime(moment)
    return format_html(
        '<span title="{}">{}</span>', local.isoformat(), local.strftime("%Y-%m-%d %H:%M")
    )


def resubmit(admin_: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> None:
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


def task_link(task: Task) -> str:
    admin_name = "success" if task.success else "failure"
    url = reverse(f"admin:qdjango_{admin_name}_change", args=[task.pk])
    return format_html('<a href="{}">{}</a>', url, as_text(task.name))


def _seconds(value: float | None) -> str:
    return "-" if value is None else seconds_text(value)


class TaskAdmin(admin.ModelAdmin):
    """Records are written by clusters only: viewable, deletable, never edited here."""

    list_display: Any = (
        "name_cell", "func_cell", "group", "stopped_cell", "run_time_cell", "time_taken",
    )  # fmt: skip
    search_fields = ("name", "func", "group", "id")
    search_help_text = (
        "A task's id, name or group (whole), or a part of its name or func among the newest "
        "10,000 tasks."
    )
    # Sorting by another column (func, run time, outcome) sorts the whole table: the lists
    # sort by what their indexes order (finished, name) only.
    sortable_by = ("name_cell", "stopped_cell")
    list_filter: Any = (FinishedFilter,)
    list_per_page = 50
    paginator = CappedPaginator
    show_full_result_count = False
    actions: Any = ("run_again",)
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
        "run_time_cell",
        "time_taken",
        "attempt_count",
        "success",
        "options_repr",
        "retried_from_link",
        "retries",
    )
    readonly_fields = fields

    class Media:
        css = {"all": ("qdjango/admin.css",)}

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return IndexSortedChangeList

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        return bounded_search(queryset, search_term), False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        # Running code again is a change to the system, not something a viewer may do. The
        # model's own permission (change_task, change_failure, change_success), as for its pages.
        codename = get_permission_codename("change", self.opts)
        return bool(request.user.has_perm(f"{self.opts.app_label}.{codename}"))

    @admin.action(description="Run the selected tasks again", permissions=["retry"])
    def run_again(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        resubmit(self, request, queryset)

    @admin.display(description="name", ordering="name")
    def name_cell(self, task: Task) -> str:
        return format_html('<span title="{}">{}</span>', as_text(task.id), as_text(task.name))

    @admin.display(description="func")
    def func_cell(self, task: Task) -> str:
        return path_cell(task.func)

    @admin.display(description="finished", ordering="stopped")
    def stopped_cell(self, task: Task) -> str:
        return moment_cell(task.stopped)

    @admin.display(description="run time")
    def run_time_cell(self, task: Task) -> str:
        return _seconds(task.run_time)

    @admin.display(description="time taken")
    def time_taken(self, task: Task) -> str:
        return _seconds(task.time_taken())

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
        return task.retried_from if original is None else task_link(original)

    @admin.display(description="retried as")
    def retries(self, task: Task) -> str:
        found = Task.objects.filter(retried_from=task.pk).order_by("started")
        links = [task_link(retry) for retry in found]
        return format_html_join(", ", "{}", ((link,) for link in links)) if links else "-"

    @admin.display(description="result")
    def result_text(self, task: Task) -> str:
        value = task.result
        return format_html(
            "<pre>{}</pre>", as_text(value if isinstance(value, str) else repr(value))
        )

    @admin.display(description="error")
    def error_cell(self, task: Task) -> str:
        line = error_line(task.result)
        return format_html('<span title="{0}">{0}</span>', line)


class AllTasksAdmin(TaskAdmin):
    list_display = (
        "name_cell", "func_cell", "success", "stopped_cell", "run_time_cell", "time_taken",
    )  # fmt: skip
    list_filter = (("success", OutcomeFilter), FinishedFilter)


class SuccessAdmin(TaskAdmin):
    actions = ("run_again",)


class FailureAdmin(TaskAdmin):
    list_display = ("name_cell", "func_cell", "stopped_cell", "error_cell")
    actions = ("retry",)

    @admin.action(
        description="Retry the selected tasks (queue each again as a new task)",
        permissions=["retry"],
    )
    def retry(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        resubmit(self, request, queryset)
