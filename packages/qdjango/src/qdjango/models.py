"""The task records: :class:`Task`, and its proxies :class:`Success` and :class:`Failure`; and
:class:`Schedule`, Django Q's scheduled tasks.

As in Django Q, ``started`` is the time the task was *enqueued*, so :meth:`Task.time_taken`
includes the time it waited in the queue; ``result`` holds the return value, or for a failure
the error text with its traceback.
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.db import models
from django.utils import timezone

from qdjango.fields import PickledField

__all__ = ["Failure", "QueueStatus", "QueuedTask", "Schedule", "Success", "Task"]

ID_LENGTH = 32


def _by_id_or_name(task_id: str) -> dict[str, str]:
    # Ids are 32 hex digits; anything else is a humanized name (never 32 characters long
    # and hex at once: names contain dashes).
    return {"pk": task_id} if len(task_id) == ID_LENGTH else {"name": task_id}


class Task(models.Model):
    """One executed task: what ran, with what, and how it ended."""

    id = models.CharField(max_length=ID_LENGTH, primary_key=True, editable=False)
    name = models.CharField(max_length=100, editable=False)
    func = models.CharField(max_length=256)
    hook = models.CharField(max_length=256, null=True, blank=True)
    args = PickledField(null=True)
    kwargs = PickledField(null=True)
    result = PickledField(null=True)
    group = models.CharField(max_length=100, null=True, blank=True)
    started = models.DateTimeField(editable=False, help_text="When the task was enqueued.")
    stopped = models.DateTimeField(editable=False)
    success = models.BooleanField(default=True, editable=False)
    attempt_count = models.IntegerField(default=0)
    cluster = models.CharField(max_length=100, null=True, blank=True)
    options = PickledField(null=True, help_text="The task's own options (timeout, save, ...).")
    retried_from = models.CharField(
        max_length=ID_LENGTH,
        null=True,
        blank=True,
        editable=False,
        help_text="The id of the task this one retries.",
    )
    signature = models.BinaryField(
        null=True,
        editable=False,
        help_text="Q's signature of what the row holds: a retry sends only a verified task.",
    )
    run_time = models.FloatField(
        null=True,
        editable=False,
        help_text="Seconds the function ran (time_taken also counts the wait in the queue).",
    )
    fence = models.BigIntegerField(
        default=0,
        editable=False,
        help_text="The fencing token of the delivery that saved the row (0: none): a save of "
        "a superseded delivery, whose token is lower, never replaces it.",
    )

    class Meta:
        app_label = "qdjango"
        ordering = ["-stopped"]
        verbose_name = "task"
        verbose_name_plural = "all tasks"
        indexes = [
            # The retries of a task, for its admin page; only retries are in the index.
            models.Index(
                fields=["retried_from"],
                name="qdjango_task_retried_from",
                condition=models.Q(retried_from__isnull=False),
            ),
            models.Index(fields=["name"], name="qdjango_task_name"),
            models.Index(fields=["group", "success"], name="qdjango_task_group"),
            # Success/Failure lists, save_limit pruning and the 24-hour counts of qinfo. The id
            # too: the admin orders its lists by (stopped, id), so a page is read from the index
            # instead of sorting the table.
            models.Index(fields=["success", "stopped", "id"], name="qdjango_task_success_stop_id"),
            models.Index(fields=["stopped", "id"], name="qdjango_task_stopped_id"),
        ]

    def __str__(self) -> str:
        return f"{self.name or self.id}"

    def time_taken(self) -> float:
        """Seconds from enqueue to finish (queue time included, as in Django Q)."""
        return (self.stopped - self.started).total_seconds()

    time_taken.short_description = "time taken (s)"  # type: ignore[attr-defined]

    @property
    def short_result(self) -> str:
        text = str.__str__(str(self.result))  # plain text, even for a SafeString result
        return text if len(text) <= 100 else text[:99] + "…"

    @classmethod
    def get_task(cls, task_id: str) -> Task | None:
        """The task with this id, or the most recent one with this humanized name."""
        return cls.objects.filter(**_by_id_or_name(task_id)).order_by("-stopped").first()

    @classmethod
    def get_result(cls, task_id: str) -> Any:
        """The result of the task with this id or name, or None."""
        task = cls.get_task(task_id)
        return None if task is None else task.result

    @classmethod
    def get_task_group(cls, group_id: str, failures: bool = True) -> models.QuerySet[Task]:
        """The tasks of a group; ``failures=False`` leaves failures out."""
        tasks = cls.objects.filter(group=group_id)
        return tasks if failures else tasks.filter(success=True)

    @classmethod
    def get_result_group(cls, group_id: str, failures: bool = False) -> list[Any]:
        """The results of a group, oldest first; failures included only when asked."""
        tasks = cls.get_task_group(group_id, failures).order_by("stopped")
        return list(tasks.values_list("result", flat=True))

    @classmethod
    def get_group_count(cls, group_id: str, failures: bool = False) -> int:
        """How many tasks of a group were saved; ``failures=True`` counts failures only."""
        tasks = cls.objects.filter(group=group_id)
        return (tasks.filter(success=False) if failures else tasks).count()

    @classmethod
    def delete_group(cls, group_id: str, objects: bool = False) -> int:
        """Clear the group label of its tasks, or with ``objects=True`` delete the tasks."""
        tasks = cls.objects.filter(group=group_id)
        if objects:
            return tasks.delete()[0]
        return tasks.update(group=None)

    def group_result(self, failures: bool = False) -> list[Any] | None:
        return None if self.group is None else self.get_result_group(self.group, failures)

    def group_count(self, failures: bool = False) -> int | None:
        return None if self.group is None else self.get_group_count(self.group, failures)

    def group_delete(self, tasks: bool = False) -> int | None:
        return None if self.group is None else self.delete_group(self.group, tasks)


class SuccessManager(models.Manager["Success"]):
    def get_queryset(self) -> models.QuerySet[Success]:
        return super().get_queryset().filter(success=True)


class FailureManager(models.Manager["Failure"]):
    def get_queryset(self) -> models.QuerySet[Failure]:
        return super().get_queryset().filter(success=False)


class Success(Task):
    """Tasks that finished without raising."""

    objects = SuccessManager()

    class Meta:
        app_label = "qdjango"
        proxy = True
        verbose_name = "successful task"
        verbose_name_plural = "successful tasks"


class Failure(Task):
    """Tasks that raised, could not be found, timed out or lost their worker."""

    objects = FailureManager()

    class Meta:
        app_label = "qdjango"
        proxy = True
        verbose_name = "failed task"
        verbose_name_plural = "failed tasks"


class QueueStatus(Task):
    """No rows of its own: it gives the admin its "Queue" page (sizes, in-flight, dead letters)."""

    class Meta:
        app_label = "qdjango"
        proxy = True
        verbose_name = "queue"
        verbose_name_plural = "queue"
        # change: requeue dead letters; delete: purge them (for good).
        default_permissions = ("view", "change", "delete")


class QueuedTask(Task):
    """No rows of its own: it gives the admin its "Queued tasks" page (what waits in Redis)."""

    class Meta:
        app_label = "qdjango"
        proxy = True
        verbose_name = "queued task"
        verbose_name_plural = "queued tasks"
        # delete: take a waiting task out of the queue before a worker runs it.
        default_permissions = ("view", "delete")


class Schedule(models.Model):
    """A scheduled task, as in Django Q: the source of truth for a Django site, mirrored into
    the Redis index the clusters fire from when saved or deleted (``qdjango.schedules``).

    ``args`` and ``kwargs`` are Python literals (``1, 'a'`` and ``x=1, y='a'`` or a dict); a
    ``q_options`` dict among the kwargs sets the firing's task options. ``repeats``: -1 forever,
    0 paused, n more times. ``task`` is the id of the last firing.
    """

    ONCE = "O"
    MINUTES = "I"
    HOURLY = "H"
    DAILY = "D"
    WEEKLY = "W"
    BIWEEKLY = "BW"
    MONTHLY = "M"
    BIMONTHLY = "BM"
    QUARTERLY = "Q"
    YEARLY = "Y"
    CRON = "C"
    TYPE = (
        (ONCE, "Once"),
        (MINUTES, "Minutes"),
        (HOURLY, "Hourly"),
        (DAILY, "Daily"),
        (WEEKLY, "Weekly"),
        (BIWEEKLY, "Biweekly"),
        (MONTHLY, "Monthly"),
        (BIMONTHLY, "Bimonthly"),
        (QUARTERLY, "Quarterly"),
        (YEARLY, "Yearly"),
        (CRON, "Cron"),
    )

    name = models.CharField(max_length=100, null=True, blank=True)
    func = models.CharField(max_length=256, help_text="e.g. module.tasks.function")
    hook = models.CharField(
        max_length=256, null=True, blank=True, help_text="e.g. module.tasks.result_function"
    )
    args = models.TextField(null=True, blank=True, help_text="e.g. 1, 2, 'John'")
    kwargs = models.TextField(null=True, blank=True, help_text="e.g. x=1, y=2, name='John'")
    schedule_type = models.CharField(max_length=2, choices=TYPE, default=ONCE, verbose_name="type")
    minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Number of minutes for the Minutes type"
    )
    repeats = models.IntegerField(default=-1, help_text="n = n times, -1 = forever, 0 = paused")
    next_run = models.DateTimeField(default=timezone.now, null=True, verbose_name="next run")
    cron = models.CharField(
        max_length=100, null=True, blank=True, help_text="Cron expression, e.g. '30 2 * * *'"
    )
    task = models.CharField(max_length=100, null=True, editable=False)
    cluster = models.CharField(max_length=100, null=True, blank=True)
    intended_date_kwarg = models.CharField(
        max_length=100,
        null=True,
        blank=True,
        help_text="Name of a keyword argument that receives the intended run time (ISO 8601)",
    )
    signature = models.BinaryField(null=True, editable=False)
    """What the row runs, signed when Q saves it (:mod:`qdjango.schedule_rows`)."""

    class Meta:
        app_label = "qdjango"
        ordering = ["next_run"]
        verbose_name = "scheduled task"
        verbose_name_plural = "scheduled tasks"

    def __str__(self) -> str:
        return self.name or self.func

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is None and self.schedule_type == self.CRON and self.cron:
            from qcore import ConfigError
            from qdjango.schedules import first_run

            # An invalid row (saved without full_clean) keeps its next_run; the mirror logs it.
            with contextlib.suppress(ConfigError, ValueError, SyntaxError):
                self.next_run = first_run(self)
        from qdjango.schedule_rows import sign_schedule

        sign_schedule(self)
        fields = kwargs.get("update_fields")
        if fields is not None:
            kwargs["update_fields"] = {*fields, "signature"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        """Every problem a firing would hit, as a ValidationError now (never at firing time)."""
        from qdjango.schedules import validate

        validate(self)

    def last_run(self) -> Task | None:
        """The saved record of the last firing, when there is one."""
        return None if not self.task else Task.objects.filter(pk=self.task).first()

    def success(self) -> bool | None:
        run = self.last_run()
        return None if run is None else run.success
