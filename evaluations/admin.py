"""Operator screens for evaluations: suites, their results, datasets and evaluation runs.

Writes go through ``evaluations.services``, audited exactly as through the API: a suite is created
with ``evaluation_create`` (the form's values become the API body; criteria are edited as JSON) and
deleted with ``evaluation_delete``; a dataset is deleted with ``dataset_delete`` (datasets are
created through the API or ``manage.py import_dataset``). There is no update service, so a stored
suite is shown, not edited. Results and runs are written by scoring only: read-only here.

Results grow like telemetry: their list never counts the whole table (see
``telemetry.admin.CappedCountPaginator``), offers no sorting by arbitrary columns and no filter
built from ``SELECT DISTINCT`` over it, and reads newest first through an index.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from config.admin import ServiceDeleteAdminMixin, ViewOnlyAdminMixin
from evaluations import rules
from evaluations.models import Dataset, EvalRun, Evaluation, EvaluationResult
from evaluations.services import (
    PASS_LABELS_MAX,
    SCORE_MAX,
    dataset_delete,
    evaluation_create,
    evaluation_delete,
)
from telemetry.admin import CappedCountPaginator
from tenancy.context import actor_from_request

PREVIEW_ROWS = 10
PREVIEW_CELL_MAX = 2000
RUN_RESULTS_SHOWN = 50
# The API body of evaluation_create, in the add form's order.
BODY_FIELDS = (
    "name",
    "description",
    "prompt_name",
    "version_tag",
    "score_type",
    "threshold",
    "pass_rule",
    "pass_labels",
    "criteria",
)


def _pretty(value: Any, limit: int | None = None) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "\n…"
    return text


def _pre(value: Any, limit: int | None = None) -> str:
    if value is None:
        return "-"
    return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', _pretty(value, limit))


# --- suites ---------------------------------------------------------------------------------------


class EvaluationAddForm(forms.ModelForm):
    """A new suite; ``evaluation_create`` stores it. The checks below are the service's, made here
    so that a mistake shows on the form rather than as an error page."""

    criteria = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 14, "cols": 80, "style": "font-family: monospace"}),
        help_text='A JSON object; {"rules": [...]} is scored by the server. Blank: none.',
    )
    pass_labels = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80, "style": "font-family: monospace"}),
        help_text='Categorical suites: a JSON array of the labels that pass, e.g. ["good", "great"].',
    )
    threshold = forms.FloatField(required=False, min_value=-SCORE_MAX, max_value=SCORE_MAX)

    class Meta:
        model = Evaluation
        fields = ["workspace", *BODY_FIELDS]

    def clean_criteria(self) -> Any:
        value = self.cleaned_data.get("criteria")
        if value is not None and not isinstance(value, dict):
            raise forms.ValidationError('Criteria must be a JSON object, such as {"rules": []}.')
        return value

    def clean_pass_labels(self) -> list[str]:
        value = self.cleaned_data.get("pass_labels")
        if value is None:
            return []
        if not isinstance(value, list) or not all(
            isinstance(item, str) and 0 < len(item) <= 128 for item in value
        ):
            raise forms.ValidationError("A JSON array of strings of 1 to 128 characters.")
        if len(value) > PASS_LABELS_MAX:
            raise forms.ValidationError(f"At most {PASS_LABELS_MAX} labels.")
        return value


@admin.register(Evaluation)
class EvaluationAdmin(ServiceDeleteAdminMixin, admin.ModelAdmin):
    form = EvaluationAddForm
    list_display = [
        "name",
        "prompt_name",
        "version_tag",
        "score_type",
        "threshold",
        "workspace",
        "created_at",
    ]
    list_filter = ["workspace", "score_type"]
    list_select_related = ["workspace"]
    search_fields = ["name", "prompt_name"]
    search_help_text = "Part of a suite's name or of its prompt's name."
    autocomplete_fields = ["workspace"]
    readonly_fields = ["pretty_criteria", "criteria_warnings", "pretty_pass_labels"]
    view_fields = [
        "workspace",
        "name",
        "description",
        "prompt_name",
        "version_tag",
        "score_type",
        "threshold",
        "pass_rule",
        "pretty_pass_labels",
        "pretty_criteria",
        "criteria_warnings",
        "created_at",
    ]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # no update service: a suite is replaced (deleted and created), not edited

    def get_fields(self, request: HttpRequest, obj: Evaluation | None = None) -> list[str]:
        return list(self.form.Meta.fields) if obj is None else self.view_fields

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is not None:  # the view page: every field read-only, no service form needed
            kwargs["form"] = forms.ModelForm
        return super().get_form(request, obj, change=change, **kwargs)

    @admin.display(description="criteria")
    def pretty_criteria(self, obj: Evaluation) -> str:
        return _pre(obj.criteria)

    @admin.display(description="pass labels")
    def pretty_pass_labels(self, obj: Evaluation) -> str:
        return ", ".join(obj.pass_labels or []) or "-"

    @admin.display(description="criteria warnings")
    def criteria_warnings(self, obj: Evaluation) -> str:
        return "; ".join(rules.validate_criteria(obj.criteria)) or "-"

    def save_model(self, request: HttpRequest, obj: Evaluation, form: forms.Form, change: bool) -> None:
        body = {name: form.cleaned_data.get(name) for name in BODY_FIELDS}
        stored = evaluation_create(
            workspace_id=obj.workspace_id, body=body, actor=actor_from_request(request)
        )
        obj.pk, obj.created_at = stored.pk, stored.created_at
        for warning in rules.validate_criteria(stored.criteria):
            messages.warning(request, f"Stored, but these criteria cannot be scored: {warning}")

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, set[str], Any]:
        # A suite's results (maybe millions), rollups and runs go with it (as DELETE
        # /v1/evaluations/{id}); they cannot be deleted on their own, and are counted, not listed.
        suites = list(objs)
        results = EvaluationResult.objects.filter(evaluation__in=suites).count()
        runs = EvalRun.objects.filter(evaluation__in=suites).count()
        deleted = [f"Evaluation {suite.name} with its results and runs" for suite in suites]
        counts = {
            Evaluation._meta.verbose_name_plural: len(suites),
            EvaluationResult._meta.verbose_name_plural: results,
            EvalRun._meta.verbose_name_plural: runs,
        }
        return deleted, counts, set(), []

    def delete_model(self, request: HttpRequest, obj: Evaluation) -> None:
        evaluation_delete(evaluation=obj, actor=actor_from_request(request))


# --- results --------------------------------------------------------------------------------------


@admin.register(EvaluationResult)
class EvaluationResultAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "evaluation",
        "score",
        "passed",
        "label",
        "version_tag",
        "run_id",
        "eval_run_ref",
        "created_at",
    ]
    # Filters read the workspace and suite tables (and fixed choices), never DISTINCT over results.
    list_filter = ["workspace", "evaluation", "passed"]
    list_select_related = ["evaluation"]
    search_fields = ["run_id__exact", "trace_id__exact"]
    search_help_text = "An exact run id or trace id."
    show_full_result_count = False
    paginator = CappedCountPaginator
    sortable_by: tuple[str, ...] = ()
    fields = [
        "id",
        "workspace",
        "evaluation",
        "created_at",
        "version_tag",
        "score",
        "passed",
        "label",
        "run_id",
        "trace_id",
        "eval_run",
        "pretty_metadata",
    ]
    readonly_fields = fields

    def get_ordering(self, request: HttpRequest) -> list[str]:
        # Filtered by suite or workspace: the (evaluation | workspace, created_at) index; else by key.
        if request.GET.get("evaluation__id__exact") or request.GET.get("workspace__id__exact"):
            return ["-created_at", "-id"]
        return ["-id"]

    @admin.display(description="eval run")
    def eval_run_ref(self, obj: EvaluationResult) -> Any:
        return obj.eval_run_id if obj.eval_run_id is not None else "-"

    @admin.display(description="metadata")
    def pretty_metadata(self, obj: EvaluationResult) -> str:
        return _pre(obj.metadata)


# --- datasets -------------------------------------------------------------------------------------


@admin.register(Dataset)
class DatasetAdmin(ServiceDeleteAdminMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    deletable = True
    list_display = ["name", "workspace", "row_count", "description", "created_at"]
    list_filter = ["workspace"]
    list_select_related = ["workspace"]
    search_fields = ["name"]
    fields = ["workspace", "name", "description", "row_count", "created_at", "preview"]
    readonly_fields = fields

    @admin.display(description=f"first {PREVIEW_ROWS} rows")
    def preview(self, obj: Dataset) -> str:
        rows = list(obj.rows.order_by("position")[:PREVIEW_ROWS])
        if not rows:
            return "No rows."
        cells = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    row.position,
                    _pre(row.input, PREVIEW_CELL_MAX),
                    _pre(row.expected_output, PREVIEW_CELL_MAX),
                    _pre(row.output, PREVIEW_CELL_MAX),
                )
                for row in rows
            ),
        )
        more = obj.row_count - len(rows)
        return format_html(
            '<table class="dataset-preview"><thead><tr><th>position</th><th>input</th>'
            "<th>expected output</th><th>output</th></tr></thead><tbody>{}</tbody></table>{}",
            cells,
            format_html("<p>… and {} more rows.</p>", more) if more > 0 else "",
        )

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, set[str], Any]:
        # Its rows and the runs over it go too (as DELETE /v1/datasets/{id}): counted, not listed.
        datasets = list(objs)
        runs = EvalRun.objects.filter(dataset__in=datasets).count()
        deleted = [f"Dataset {dataset.name} with its {dataset.row_count} rows" for dataset in datasets]
        counts = {
            Dataset._meta.verbose_name_plural: len(datasets),
            "rows": sum(dataset.row_count for dataset in datasets),
            EvalRun._meta.verbose_name_plural: runs,
        }
        return deleted, counts, set(), []

    def delete_model(self, request: HttpRequest, obj: Dataset) -> None:
        dataset_delete(dataset=obj, actor=actor_from_request(request))


# --- evaluation runs ------------------------------------------------------------------------------


@admin.register(EvalRun)
class EvalRunAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "evaluation",
        "dataset",
        "version_tag",
        "status",
        "score",
        "passed_count",
        "row_count",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "workspace"]
    list_select_related = ["evaluation", "dataset"]
    search_fields = ["evaluation__name"]
    search_help_text = "Part of the evaluation's name."
    fields = [
        "id",
        "workspace",
        "evaluation",
        "dataset",
        "version_tag",
        "status",
        "reason",
        "score",
        "passed_count",
        "row_count",
        "created_at",
        "finished_at",
        "pretty_results",
    ]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[EvalRun]:
        queryset = super().get_queryset(request)
        # Per-row results can be megabytes: the list never reads them, nor the suite's criteria.
        match = request.resolver_match
        if match is not None and (match.url_name or "").endswith("_changelist"):
            queryset = queryset.select_related(*self.list_select_related).defer(
                "results", "evaluation__criteria"
            )
        return queryset

    @admin.display(description="per-row results")
    def pretty_results(self, obj: EvalRun) -> str:
        if obj.results is None:
            return "-"
        shown = obj.results[:RUN_RESULTS_SHOWN]
        more = len(obj.results) - len(shown)
        note = format_html("<p>… and {} more rows.</p>", more) if more > 0 else ""
        return format_html("{}{}", _pre(shown), note)
