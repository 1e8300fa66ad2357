"""FilterSets of the telemetry lists, shared by the API and the dashboard.

Every filter is an equality on an indexed ``(workspace, field, created_at)`` column, or a
time-range, or ``q``: a case-insensitive substring of the names (the one unindexed filter, bounded
by the others and by the keyset page).
"""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from telemetry.models import LogRecord, Run, Trace
from tenancy.filters import TimestampFilter


class Search(django_filters.CharFilter):
    """``q``: a case-insensitive substring of any of ``fields``."""

    def __init__(self, *fields: str) -> None:
        super().__init__(max_length=256)
        self.fields = fields

    def filter(self, qs: QuerySet, value: str) -> QuerySet:
        if not value:
            return qs
        condition = Q()
        for name in self.fields:
            condition |= Q(**{f"{name}__icontains": value})
        return qs.filter(condition)


def _with_time_range(filterset: type[django_filters.FilterSet]) -> type[django_filters.FilterSet]:
    # ``from`` is a Python keyword, so the range filters cannot be declared as class attributes.
    filterset.base_filters["from"] = TimestampFilter(field_name="created_at", lookup_expr="gte")
    filterset.base_filters["to"] = TimestampFilter(field_name="created_at", lookup_expr="lte")
    return filterset


@_with_time_range
class LogFilter(django_filters.FilterSet):
    prompt = django_filters.CharFilter(field_name="prompt_name")
    prompt_name = django_filters.CharFilter(field_name="prompt_name")
    version = django_filters.CharFilter(field_name="version_tag")
    version_tag = django_filters.CharFilter(field_name="version_tag")
    model = django_filters.CharFilter(field_name="model")
    provider = django_filters.CharFilter(field_name="provider")
    status = django_filters.ChoiceFilter(
        field_name="status", choices=LogRecord._meta.get_field("status").choices
    )
    session = django_filters.CharFilter(field_name="session_id")
    session_id = django_filters.CharFilter(field_name="session_id")
    user = django_filters.CharFilter(field_name="user_id")
    user_id = django_filters.CharFilter(field_name="user_id")
    trace_id = django_filters.CharFilter(field_name="trace_id")
    run_id = django_filters.CharFilter(field_name="run_id")
    q = Search("prompt_name", "model")

    class Meta:
        model = LogRecord
        fields: list[str] = []


@_with_time_range
class TraceFilter(django_filters.FilterSet):
    prompt = django_filters.CharFilter(field_name="prompt_name")
    prompt_name = django_filters.CharFilter(field_name="prompt_name")
    version = django_filters.CharFilter(field_name="version_tag")
    version_tag = django_filters.CharFilter(field_name="version_tag")
    status = django_filters.ChoiceFilter(field_name="status", choices=Trace._meta.get_field("status").choices)
    session = django_filters.CharFilter(field_name="session_id")
    session_id = django_filters.CharFilter(field_name="session_id")
    user = django_filters.CharFilter(field_name="user_id")
    user_id = django_filters.CharFilter(field_name="user_id")
    q = Search("name", "prompt_name")

    class Meta:
        model = Trace
        fields: list[str] = []


@_with_time_range
class RunFilter(django_filters.FilterSet):
    workflow = django_filters.CharFilter(field_name="workflow_name")
    workflow_name = django_filters.CharFilter(field_name="workflow_name")
    status = django_filters.ChoiceFilter(field_name="status", choices=Run._meta.get_field("status").choices)
    trace_id = django_filters.CharFilter(field_name="trace__trace_id")
    q = Search("workflow_name", "run_id")

    class Meta:
        model = Run
        fields: list[str] = []
