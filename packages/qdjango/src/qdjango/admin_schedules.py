"""The admin's "Scheduled tasks" page: create and edit with validation (cron, literals, paths
and time zones checked as you save), next run, last run with a link to its task and whether it
succeeded, and the "run now", "pause" and "resume" actions."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from qdjango.models import Schedule, Task

__all__ = ["ScheduleAdmin"]


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "name",
        "func",
        "schedule_type",
        "repeats",
        "cluster",
        "next_run",
        "last_run",
        "success",
    )
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

    def get_queryset(self, request: HttpRequest) -> QuerySet[Schedule]:
        queryset = super().get_queryset(request)
        # One query for the page's last runs, not one per row.
        ids = [t for t in queryset.values_list("task", flat=True) if t]
        self._runs = {t.pk: t for t in Task.objects.filter(pk__in=ids).only("pk", "success")}
        return queryset

    def _run(self, row: Schedule) -> Task | None:
        runs = getattr(self, "_runs", None)
        if runs is None or (row.task and row.task not in runs):
            return row.last_run()
        return runs.get(row.task) if row.task else None

    @admin.display(description="last run")
    def last_run(self, row: Schedule) -> str:
        run = self._run(row)
        if run is None:
            return row.task or "-"
        model = "success" if run.success else "failure"
        url = reverse(f"admin:qdjango_{model}_change", args=[run.pk])
        return format_html('<a href="{}">{}</a>', url, run.pk)

    @admin.display(description="success", boolean=True)
    def success(self, row: Schedule) -> bool | None:
        run = self._run(row)
        return None if run is None else run.success

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
