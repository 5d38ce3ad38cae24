"""The admin's "Scheduled tasks" page: create and edit with validation (cron, literals, paths
and time zones checked as you save), next run, last run with a link to its task and whether it
succeeded, and the "run now", "pause" and "resume" actions.

The list fits a 1280 px screen as the task lists do (:mod:`qdjango.admin_tasks`): the name is
the link to a schedule (its id is in the title), paths and task ids are cut, times compact."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from qdjango.admin_queue import as_text
from qdjango.admin_tasks import moment_cell, path_cell
from qdjango.models import Schedule, Task

__all__ = ["ScheduleAdmin"]


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = (
        "name_cell",
        "func_cell",
        "schedule_type",
        "repeats",
        "cluster",
        "next_run_cell",
        "last_run",
        "success",
    )
    list_display_links = ("name_cell",)
    list_filter = ("next_run", "schedule_type", "cluster")
    search_fields = ("name", "func")
    list_per_page = 50
    actions = ("run_now", "pause", "resume")
    readonly_fields = ("task",)
    fieldsets = (
        (None, {"fields": ("name", "func", "hook", "args", "kwargs")}),
        (
            "Schedule",
            {
                "fields": (
                    "schedule_type",
                    "minutes",
                    "cron",
                    "repeats",
                    "next_run",
                    "cluster",
                    "intended_date_kwarg",
                    "task",
                )
            },
        ),
    )

    class Media:
        css = {"all": ("qdjango/admin.css",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Schedule]:
        # The last run's outcome in the same query (Django Q's subqueries), not one per row.
        runs = Task.objects.filter(pk=OuterRef("task"))
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_found=Exists(runs),
                last_success=Subquery(runs.values("success")[:1]),
                last_name=Subquery(runs.values("name")[:1]),
            )
        )

    @admin.display(description="name", ordering="name")
    def name_cell(self, row: Schedule) -> str:
        return format_html('<span title="id {}">{}</span>', row.pk, as_text(row.name or "-"))

    @admin.display(description="func", ordering="func")
    def func_cell(self, row: Schedule) -> str:
        return path_cell(row.func)

    @admin.display(description="next run", ordering="next_run")
    def next_run_cell(self, row: Schedule) -> str:
        return moment_cell(row.next_run)

    @admin.display(description="last run")
    def last_run(self, row: Schedule) -> str:
        if not getattr(row, "last_found", False):
            return format_html('<span title="{0}">{0}</span>', row.task) if row.task else "-"
        model = "success" if row.last_success else "failure"  # type: ignore[attr-defined]
        url = reverse(f"admin:qdjango_{model}_change", args=[row.task])
        name = as_text(row.last_name or row.task)  # type: ignore[attr-defined]
        return format_html('<a href="{}" title="{}">{}</a>', url, row.task, name)

    @admin.display(description="success", boolean=True)
    def success(self, row: Schedule) -> bool | None:
        if not getattr(row, "last_found", False):
            return None
        return bool(row.last_success)  # type: ignore[attr-defined]

    @admin.action(description="Run the selected schedules now (their timing is unchanged)")
    def run_now(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        from qdjango.schedules import run_now

        ids = [run_now(row) for row in queryset]
        self.message_user(request, f"{len(ids)} schedule(s) queued to run now.", messages.SUCCESS)

    @admin.action(description="Pause the selected schedules (repeats = 0)")
    def pause(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        count = 0
        for row in queryset:  # saved one by one: each save is mirrored to Redis
            row.repeats = 0
            row.save(update_fields=["repeats"])
            count += 1
        self.message_user(request, f"{count} schedule(s) paused.", messages.SUCCESS)

    @admin.action(description="Resume the selected paused schedules (repeat forever)")
    def resume(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        count = 0
        for row in queryset.filter(repeats=0):
            row.repeats = -1
            row.save(update_fields=["repeats"])
            count += 1
        self.message_user(request, f"{count} schedule(s) resumed.", messages.SUCCESS)
