"""Operator screens for telemetry: custom model prices and retention (editable), and read-only views of
logs, traces with their spans, spans, runs and the hourly rollups.

Telemetry tables grow to tens of millions of rows, so their lists never do what is slow there: no
COUNT(*) of the whole table (``show_full_result_count = False`` and a paginator that counts at most
``CAPPED_COUNT`` rows), no ``date_hierarchy`` and no filters built from ``SELECT DISTINCT`` over the
table (only workspace and choice fields), no sorting by arbitrary columns. A list filtered by
workspace is ordered by the indexed ``(workspace, -created_at, -id)``; an unfiltered list by the
primary key (newest first too, and the only index that serves an unfiltered "latest rows" page).
Searches are exact id lookups. Rows are written by ingest only: nothing here adds or edits a log,
span, trace, run or rollup; traces (with their spans) and runs may be deleted, through the same
audited services as ``DELETE /v1/traces/{id}`` and ``/v1/runs/{id}``.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from config.admin import ServiceDeleteAdminMixin, ViewOnlyAdminMixin
from telemetry.models import LogRecord, LogRollup, ModelPrice, Run, Span, TelemetrySettings, Trace
from telemetry.pricing import prices_changed
from telemetry.services import run_delete, trace_delete
from tenancy.context import actor_from_request

CAPPED_COUNT = 10_000
WORKSPACE_PARAM = "workspace__id__exact"


class CappedCountPaginator(Paginator):
    """Counts at most CAPPED_COUNT rows (a bounded ``COUNT(*) FROM (… LIMIT n)``): the changelist
    shows "10000" and pages up to there instead of counting millions of rows on every load."""

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        return self.object_list.order_by()[:CAPPED_COUNT].count()


class _TelemetryListAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    """Read-only, cheap on huge tables (see the module docstring)."""

    show_full_result_count = False
    paginator = CappedCountPaginator
    sortable_by: tuple[str, ...] = ()
    time_ordering: tuple[str, ...] = ("-created_at", "-id")

    def get_ordering(self, request: HttpRequest) -> list[str]:
        if request.GET.get(WORKSPACE_PARAM):
            return list(self.time_ordering)
        return ["-id"]


@admin.register(LogRecord)
class LogRecordAdmin(_TelemetryListAdmin):
    list_display = [
        "id",
        "created_at",
        "workspace",
        "prompt_name",
        "version_tag",
        "provider",
        "model",
        "tokens_in",
        "tokens_out",
        "cached_tokens",
        "cost_usd",
        "cost_source",
        "latency_ms",
        "status",
    ]
    list_filter = ["workspace", "status", "cost_source"]
    list_select_related = ["workspace"]
    search_fields = ["trace_id__exact", "session_id__exact", "run_id__exact"]
    search_help_text = "An exact trace, session or run id (choose a workspace first on large tables)."


class SpanInline(ViewOnlyAdminMixin, admin.TabularInline):
    model = Span
    fields = [
        "span_id",
        "parent_id",
        "name",
        "kind",
        "status",
        "start_time",
        "end_time",
        "model",
        "tokens_in",
        "tokens_out",
        "cost_usd",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[Span]:
        return super().get_queryset(request).defer("metadata", "events")


@admin.register(Trace)
class TraceAdmin(ServiceDeleteAdminMixin, _TelemetryListAdmin):
    list_display = [
        "trace_id",
        "name",
        "workspace",
        "status",
        "source",
        "span_count",
        "error_count",
        "tokens_in",
        "tokens_out",
        "cost_usd",
        "start_time",
        "created_at",
    ]
    list_filter = ["workspace", "status", "source"]
    list_select_related = ["workspace"]
    search_fields = ["trace_id__exact", "session_id__exact"]
    search_help_text = "An exact trace or session id."
    inlines = [SpanInline]
    deletable = True

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, set[str], Any]:
        # A trace's spans go with it by design (as with DELETE /v1/traces/{id}), although spans
        # cannot be deleted on their own here; and a trace may hold thousands of spans: the
        # confirmation page counts them rather than listing each one.
        traces = list(objs)
        spans = Span.objects.filter(trace__in=traces).count()
        deleted = [f"Trace {trace.trace_id} and its spans" for trace in traces]
        counts = {Trace._meta.verbose_name_plural: len(traces), Span._meta.verbose_name_plural: spans}
        return deleted, counts, set(), []

    def delete_model(self, request: HttpRequest, obj: Trace) -> None:
        trace_delete(trace=obj, actor=actor_from_request(request))


@admin.register(Span)
class SpanAdmin(_TelemetryListAdmin):
    list_display = [
        "span_id",
        "name",
        "kind",
        "trace",
        "workspace",
        "status",
        "model",
        "tokens_in",
        "tokens_out",
        "cost_usd",
        "start_time",
    ]
    list_filter = ["workspace", "status"]
    list_select_related = ["workspace", "trace"]
    search_fields = ["span_id__exact"]
    search_help_text = "An exact span id."
    # Spans have no (workspace, created_at) index: newest first by primary key, filtered or not.
    time_ordering = ("-id",)


@admin.register(Run)
class RunAdmin(ServiceDeleteAdminMixin, _TelemetryListAdmin):
    list_display = ["run_id", "workflow_name", "workspace", "status", "trace", "created_at", "updated_at"]
    list_filter = ["status", "workspace"]
    list_select_related = ["workspace", "trace"]
    search_fields = ["run_id__exact", "workflow_name"]
    search_help_text = "An exact run id, or part of a workflow name."
    deletable = True

    def delete_model(self, request: HttpRequest, obj: Run) -> None:
        run_delete(run=obj, actor=actor_from_request(request))


@admin.register(LogRollup)
class LogRollupAdmin(_TelemetryListAdmin):
    list_display = [
        "hour",
        "workspace",
        "prompt_name",
        "version_tag",
        "request_count",
        "error_count",
        "tokens_in",
        "tokens_out",
        "cost_usd",
        "latency_count",
    ]
    list_filter = ["workspace"]
    list_select_related = ["workspace"]
    search_fields = ["prompt_name__exact"]
    search_help_text = "An exact prompt name."
    time_ordering = ("-hour", "-id")


# --- editable: prices and retention -----------------------------------------------------------------


class ModelPriceForm(forms.ModelForm):
    class Meta:
        model = ModelPrice
        fields = [
            "workspace",
            "model_pattern",
            "provider",
            "input_per_mtok",
            "output_per_mtok",
            "cached_input_per_mtok",
            "reasoning_per_mtok",
            "effective_from",
        ]

    def clean_model_pattern(self) -> str:
        value = self.cleaned_data["model_pattern"].strip()
        if not value:
            raise forms.ValidationError("Name a model or a pattern.")
        return value

    def clean_provider(self) -> str:
        return self.cleaned_data["provider"].strip().lower()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "reasoning_per_mtok"):
            value = data.get(name)
            if value is not None and value < 0:
                self.add_error(name, "A price cannot be negative.")
        return data


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    """A workspace's own prices, taking precedence over the built-in book (telemetry.pricing)."""

    form = ModelPriceForm
    list_display = [
        "model_pattern",
        "provider",
        "workspace",
        "input_per_mtok",
        "output_per_mtok",
        "cached_input_per_mtok",
        "reasoning_per_mtok",
        "effective_from",
    ]
    list_filter = ["workspace", "provider"]
    list_select_related = ["workspace"]
    search_fields = ["model_pattern"]
    autocomplete_fields = ["workspace"]

    def save_model(self, request: HttpRequest, obj: ModelPrice, form: forms.Form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        _prices_changed(obj.workspace_id)
        messages.info(
            request,
            "Logs stored before this change keep their cost; to re-price them run "
            f"`manage.py recompute_costs --since {obj.effective_from:%Y-%m-%d} "
            f"--workspace {obj.workspace_id}`.",
        )

    def delete_model(self, request: HttpRequest, obj: ModelPrice) -> None:
        super().delete_model(request, obj)
        _prices_changed(obj.workspace_id)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ModelPrice]) -> None:
        workspaces = set(queryset.values_list("workspace_id", flat=True))
        super().delete_queryset(request, queryset)
        for workspace_id in workspaces:
            _prices_changed(workspace_id)


def _prices_changed(workspace_id: str) -> None:
    # Now (this process, so the next page load already prices with it) and again at commit, so a
    # request of this process that read the old rows in between does not keep them for the TTL.
    prices_changed(workspace_id)
    transaction.on_commit(lambda: prices_changed(workspace_id))


@admin.register(TelemetrySettings)
class TelemetrySettingsAdmin(admin.ModelAdmin):
    list_display = ["workspace", "retention_days"]
    list_editable = ["retention_days"]
    list_select_related = ["workspace"]
    search_fields = ["workspace__id", "workspace__name"]
    autocomplete_fields = ["workspace"]
