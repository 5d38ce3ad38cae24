"""The admin: all tasks, successful and failed tasks (:mod:`qdjango.admin_tasks`), the
"Queue" page (sizes, clusters, in-flight tasks, dead letters, charts: :mod:`qdjango.admin_queue`)
and the "Scheduled tasks" page (:mod:`qdjango.admin_schedules`).

Rights match actions: retry and "run again" need the change permission, deleting rows the
delete permission (Django's own action), and on the Queue page requeueing needs change,
purging delete."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from qdjango.admin_queue import chart_view, queue_view
from qdjango.admin_queued import queued_view
from qdjango.admin_schedules import ScheduleAdmin
from qdjango.admin_tasks import AllTasksAdmin, FailureAdmin, SuccessAdmin
from qdjango.models import Failure, QueuedTask, QueueStatus, Success, Task

__all__ = [
    "AllTasksAdmin",
    "FailureAdmin",
    "QueueAdmin",
    "QueuedAdmin",
    "ScheduleAdmin",
    "SuccessAdmin",
]

admin.site.register(Task, AllTasksAdmin)
admin.site.register(Success, SuccessAdmin)
admin.site.register(Failure, FailureAdmin)


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
        from django.urls import path

        # The page and its charts: there are no rows to add, change or delete.
        chart = path(
            "chart/<str:name>.svg",
            self.admin_site.admin_view(lambda request, name: chart_view(self, request, name)),
            name="qdjango_queuestatus_chart",
        )
        return [chart, *(u for u in super().get_urls() if (u.name or "").endswith("_changelist"))]


@admin.register(QueuedTask)
class QueuedAdmin(admin.ModelAdmin):
    """What waits in Redis: a page of its own (deleting needs the delete permission)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return queued_view(self, request)

    def get_urls(self) -> list[Any]:
        return [u for u in super().get_urls() if (u.name or "").endswith("_changelist")]
