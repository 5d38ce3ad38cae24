"""What the admin's task lists read of a large table, each bounded: their counts, their
filters' counts ("Show counts", Django's facets) and their search, so no page reads the whole
table.

A count stops at :data:`COUNT_CAP` (``SELECT COUNT(*) FROM (... LIMIT n)``) and reads
"10,000+" past it. Each keeps the list's ordering in its subquery, so PostgreSQL walks the
index the list is read from (``stopped, id``, or ``success, stopped, id``) for those rows
instead of scanning the table. Django's own facets count every choice in one aggregate over
the whole table (``COUNT(...) FILTER (WHERE ...)``, and for a
:class:`~django.contrib.admin.SimpleListFilter` ``id IN (subquery)`` per choice).

Django's search reads every row (``ILIKE '%term%'`` on each column): here a term finds every
task whose id, name or group it is (indexed), and, among the newest :data:`SEARCH_RECENT`
tasks of the list, those whose name or func contains it.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

__all__ = [
    "COUNT_CAP",
    "SEARCH_RECENT",
    "CappedPaginator",
    "FinishedFilter",
    "IndexSortedChangeList",
    "OutcomeFilter",
    "bounded_search",
    "capped_count",
]

COUNT_CAP = 10_000
"""A list, and each of its filters' choices, counts rows up to this many ("10,000+" past it)."""
SEARCH_RECENT = 10_000
"""A search looks for a part of a name or func among this many of the newest tasks."""


def capped_count(queryset: QuerySet[Any]) -> int:
    """Rows of ``queryset``, counted up to :data:`COUNT_CAP` + 1 (its ordering kept)."""
    return int(queryset[: COUNT_CAP + 1].count())


def count_text(count: int) -> str:
    return f"{COUNT_CAP:,}+" if count > COUNT_CAP else f"{count:,}"


class CappedPaginator(Paginator):
    """A paginator whose count is :func:`capped_count` (where PostgreSQL, without the list's
    ordering, scanned the table for a filter that keeps a tenth of it: the failures)."""

    @cached_property
    def count(self) -> int:
        objects: Any = self.object_list
        try:
            return capped_count(objects)
        except (AttributeError, TypeError):
            return len(objects)


def _choice_counts(
    list_filter: Any, changelist: Any, choices: dict[str, dict[str, Any]]
) -> dict[str, str]:
    """ "Show counts": each choice's rows among the list's other filters (and search), counted
    up to the cap; ``choices`` maps Django's facet key to the choice's filter arguments."""
    rest = changelist.get_queryset(
        list_filter.request, exclude_parameters=list_filter.expected_parameters()
    )
    return {key: count_text(capped_count(rest.filter(**kw))) for key, kw in choices.items()}


class FinishedFilter(admin.SimpleListFilter):
    """When tasks finished: a range on ``stopped`` (indexed), not a scan for distinct dates."""

    title = "finished"
    parameter_name = "finished"
    RANGES = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("hour", "Last hour"), ("day", "Last 24 hours"), ("week", "Last 7 days")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        span = self.RANGES.get(self.value() or "")
        return queryset if span is None else queryset.filter(stopped__gte=timezone.now() - span)

    def get_facet_queryset(self, changelist: Any) -> dict[str, str]:
        now = timezone.now()
        choices = {
            f"{i}__c": {"stopped__gte": now - self.RANGES[value]}
            for i, (value, _title) in enumerate(self.lookup_choices)
        }
        return _choice_counts(self, changelist, choices)


class OutcomeFilter(admin.BooleanFieldListFilter):
    """Succeeded or failed (``?success__exact=``), counted as :class:`FinishedFilter` is."""

    def get_facet_queryset(self, changelist: Any) -> dict[str, str]:
        choices: dict[str, dict[str, Any]] = {
            "true__c": {self.field_path: True},
            "false__c": {self.field_path: False},
        }
        if self.field.null:
            choices["null__c"] = {self.lookup_kwarg2: True}
        return _choice_counts(self, changelist, choices)


def bounded_search(queryset: QuerySet[Any], term: str) -> QuerySet[Any]:
    """The rows of ``queryset`` that ``term`` finds: its id, name or group (exactly, through
    their indexes, up to :data:`COUNT_CAP` + 1 of them), or a part of its name or func among
    the newest :data:`SEARCH_RECENT`: those that finished since the one that many back, a
    range of the ``stopped`` index (``id IN (the newest n)`` had PostgreSQL scan the table,
    and a list of the ids found cost more than the range on a common part)."""
    term = term.strip()
    if not term:
        return queryset
    exact = queryset.filter(Q(pk=term) | Q(name=term) | Q(group=term)).order_by()
    found = Q(pk__in=list(exact.values_list("pk", flat=True)[: COUNT_CAP + 1]))
    part = Q(name__icontains=term) | Q(func__icontains=term)
    newest = queryset.order_by("-stopped").values_list("stopped", flat=True)
    since = list(newest[SEARCH_RECENT - 1 : SEARCH_RECENT])
    if since:  # else fewer rows than that: all of them
        part &= Q(stopped__gte=since[0])
    return queryset.filter(found | part)


class IndexSortedChangeList(ChangeList):
    """A list sorted only by its ``sortable_by`` columns, whatever ``?o=`` asks: the headers
    offer no other, and a hand-made URL sorting by another column (func, outcome) would sort
    the whole table."""

    def get_ordering(self, request: HttpRequest, queryset: QuerySet[Any]) -> list[Any]:
        asked = self.params.get(ORDER_VAR)
        if asked and self.sortable_by is not None:
            kept = [p for p in str(asked).split(".") if self._sortable(p)]
            if kept:
                self.params[ORDER_VAR] = ".".join(kept)
            else:  # none it offers: the list's own order (newest first), not the pk's
                del self.params[ORDER_VAR]
        return super().get_ordering(request, queryset)  # type: ignore[no-any-return]

    def _sortable(self, param: str) -> bool:
        try:
            return self.list_display[int(param.rpartition("-")[2])] in self.sortable_by
        except (IndexError, ValueError):
            return False
