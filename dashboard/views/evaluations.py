"""Evaluations: the suites with their latest score, one suite's trend, results, version comparison and
runs, and the datasets. Everything is read through the evaluation selectors, FilterSets and the
hourly ``ResultRollup`` sums; suites are created through ``evaluations.services`` only."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse

from config.api import ApiError
from config.errors import Conflict
from dashboard import charts
from dashboard.filtering import apply_filters
from dashboard.paging import Page, keyset_page, numbered_page, page_url
from dashboard.templatetags.dashboard import pretty_json
from dashboard.views.base import DashboardView, error_messages
from evaluations import selectors, services
from evaluations.filters import DatasetFilter, EvaluationFilter
from evaluations.models import (
    Dataset,
    DatasetRow,
    EvalRun,
    Evaluation,
    EvaluationResult,
    PassRule,
    ScoreType,
)

PAGE_SIZE = 50
RESULTS_PAGE = 25
RUNS_PAGE = 20
DATASET_ROWS_PAGE = 50
DATASETS_USED = 20
DEFAULT_WINDOW = "30d"
RULE_SIGNS = {PassRule.GTE: "≥", PassRule.GT: ">", PassRule.LTE: "≤", PassRule.LT: "<"}
# The form's text fields, in the order of the API's body.
FORM_TEXT = ("name", "prompt_name", "version_tag", "description")


def _trace_url(trace_id: str) -> str | None:
    return reverse("dashboard:trace", args=[trace_id]) if trace_id else None


# --- the list and the create form -----------------------------------------------------------------


def _form_body(data: Any) -> tuple[dict[str, Any], list[str]]:
    """The API body of the create form, and what could not even be read (bad JSON). Everything
    else (required fields, lengths, choices, numbers) is the service's to judge."""
    body: dict[str, Any] = {name: data.get(name, "").strip() for name in FORM_TEXT}
    body["score_type"] = data.get("score_type") or ScoreType.NUMERIC
    body["pass_rule"] = data.get("pass_rule") or PassRule.GTE
    errors: list[str] = []
    threshold = data.get("threshold", "").strip()
    if threshold:
        try:
            body["threshold"] = float(threshold)
        except ValueError:
            # The service words the message, as the API would for a non-number.
            body["threshold"] = threshold
    labels = [label.strip() for label in data.get("pass_labels", "").split(",") if label.strip()]
    if labels:
        body["pass_labels"] = labels
    criteria = data.get("criteria", "").strip()
    if criteria:
        try:
            body["criteria"] = json.loads(criteria)
        except ValueError as exc:
            errors.append(f'"criteria" is not valid JSON: {exc}')
    return body, errors


class EvaluationsView(DashboardView):
    template_name = "dashboard/evaluations/list.html"
    nav = "evaluations"
    title = "Evaluations"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        filtered = apply_filters(
            EvaluationFilter,
            self.request,
            self.scoped(Evaluation).order_by("-created_at", "-id"),
            {"q": "Search", "prompt": "Prompt"},
        )
        page = numbered_page(selectors.with_last_hour(filtered.queryset), self.request, limit=PAGE_SIZE)
        latest = selectors.latest_day_scores(page.rows)
        context.update(
            filtered=filtered,
            page=page,
            rows=[
                {"evaluation": e, "latest": latest.get(e.pk), "rule": RULE_SIGNS.get(e.pass_rule, "")}
                for e in page.rows
            ],
            score_types=ScoreType.choices,
            pass_rules=PassRule.choices,
        )
        context.setdefault("form", {"score_type": ScoreType.NUMERIC, "pass_rule": PassRule.GTE})
        context.setdefault("form_errors", [])
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        body, errors = _form_body(request.POST)
        status = 422
        if not errors:
            try:
                evaluation = services.evaluation_create(
                    workspace_id=self.workspace_id, body=body, actor=self.actor()
                )
            except ApiError as exc:
                errors, status = error_messages(exc), exc.status_code
            except Conflict as exc:
                errors, status = error_messages(exc), 409
            else:
                messages.success(request, f"Evaluation {evaluation.name} created.")
                return redirect("dashboard:evaluation", pk=evaluation.pk)
        form = {
            name: request.POST.get(name, "") for name in (*FORM_TEXT, "threshold", "pass_labels", "criteria")
        }
        form.update(score_type=body["score_type"], pass_rule=body["pass_rule"])
        context = self.get_context_data(form=form, form_errors=errors)
        return self.render_to_response(context, status=status)


# --- one evaluation -------------------------------------------------------------------------------


def _day_start(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _signed(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:+.{digits}f}"


def _p_value(value: float | None) -> str:
    if value is None:
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def comparison_rows(comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """The compare endpoint's differences as table rows: the means as scores, the pass rates in
    percentage points; the selector's figures unchanged, only formatted."""
    rows = []
    for pair in comparison["comparisons"]:
        for metric, label, scale, unit in (
            ("mean", "Mean score", 1, ""),
            ("pass_rate", "Pass rate", 100, " pp"),
        ):
            diff = pair[metric]
            scaled = [
                None if diff[k] is None else diff[k] * scale for k in ("difference", "ci_low", "ci_high")
            ]
            digits = 3 if scale == 1 else 1
            interval = (
                "–"
                if scaled[1] is None or scaled[2] is None
                else f"{_signed(scaled[1], digits)} to {_signed(scaled[2], digits)}{unit}"
            )
            rows.append(
                {
                    "baseline": pair["baseline"],
                    "candidate": pair["candidate"],
                    "metric": label,
                    "difference": _signed(scaled[0], digits) + (unit if scaled[0] is not None else ""),
                    "interval": interval,
                    "p_value": _p_value(diff["p_value"]),
                    "test": "Welch t" if diff["test"] == "welch_t" else "two-proportion z",
                    "df": diff["df"] if diff["df"] is not None and math.isfinite(diff["df"]) else None,
                    "note": diff["note"],
                }
            )
    return rows


class EvaluationView(DashboardView):
    template_name = "dashboard/evaluations/detail.html"
    nav = "evaluations"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        evaluation = self.scoped_or_404(Evaluation, pk=kwargs["pk"])
        window = self.request.GET.get("window", DEFAULT_WINDOW)
        if window not in selectors.WINDOWS:
            window = DEFAULT_WINDOW
        trend = selectors.trend(evaluation=evaluation, window=window, bucket="day")
        results = keyset_page(
            self.scoped(EvaluationResult).filter(evaluation=evaluation).defer("metadata"),
            self.request,
            limit=RESULTS_PAGE,
        )
        runs = numbered_page(
            self.scoped(EvalRun)
            .filter(evaluation=evaluation)
            .select_related("dataset")
            .defer("results")
            .order_by("-created_at", "-id"),
            self.request,
            limit=RUNS_PAGE,
        )
        datasets = (
            self.scoped(Dataset)
            .filter(runs__evaluation=evaluation)
            .distinct()
            .order_by("-created_at", "-id")[:DATASETS_USED]
        )
        context.update(
            title=evaluation.name,
            evaluation=evaluation,
            criteria_json=pretty_json(evaluation.criteria),
            windows=list(selectors.WINDOWS),
            window=window,
            has_results=any(point["count"] for point in trend["points"]),
            trend_figure=charts.score_trend(trend["points"], threshold=evaluation.threshold),
            totals=selectors.window_totals(evaluation=evaluation, since=_day_start(trend["start"])),
            results=results,
            result_rows=[{"result": r, "trace_url": _trace_url(r.trace_id)} for r in results.rows],
            runs=runs,
            datasets=list(datasets),
            **self._comparison(evaluation),
        )
        return context

    def _comparison(self, evaluation: Evaluation) -> dict[str, Any]:
        """The version comparison: the versions asked for in ``?versions=``, else every version
        with results (the most recent 10), oldest first so the first is the baseline."""
        known = selectors.versions_by_first_result(evaluation=evaluation)[-selectors.COMPARE_MAX_VERSIONS :]
        asked = self.request.GET.get("versions", "").strip()
        versions = asked or ",".join(known)
        result: dict[str, Any] = {
            "known_versions": known,
            "versions_asked": versions,
            "comparison": None,
            "comparison_rows": [],
            "comparison_errors": [],
        }
        if not asked and len(known) < 2:
            return result
        try:
            comparison = selectors.compare(evaluation=evaluation, versions=versions)
        except ApiError as exc:
            result["comparison_errors"] = error_messages(exc)
            return result
        result.update(comparison=comparison, comparison_rows=comparison_rows(comparison))
        return result


# --- datasets -------------------------------------------------------------------------------------


class DatasetsView(DashboardView):
    template_name = "dashboard/evaluations/datasets.html"
    nav = "evaluations"
    title = "Datasets"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        # ``row_count`` is stored with the dataset (its rows are never changed afterwards), so
        # only the runs are counted, in the page's one query.
        queryset = self.scoped(Dataset).annotate(run_count=Count("runs")).order_by("-created_at", "-id")
        filtered = apply_filters(DatasetFilter, self.request, queryset, {"q": "Search"})
        context.update(
            filtered=filtered, page=numbered_page(filtered.queryset, self.request, limit=PAGE_SIZE)
        )
        return context


def _json(value: Any) -> str | None:
    # A dataset's text input is shown as it is; structured values compactly indented.
    if value is None or isinstance(value, str):
        return value
    return pretty_json(value, indent=1)


class DatasetView(DashboardView):
    template_name = "dashboard/evaluations/dataset.html"
    nav = "evaluations"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        dataset = self.scoped_or_404(Dataset, pk=kwargs["pk"])
        context.update(
            title=dataset.name,
            dataset=dataset,
            page=self._rows(dataset),
            runs=list(
                self.scoped(EvalRun)
                .filter(dataset=dataset)
                .select_related("evaluation")
                .defer("results")
                .order_by("-created_at", "-id")[:RUNS_PAGE]
            ),
        )
        return context

    def _rows(self, dataset: Dataset) -> Page:
        """A page of rows by position (0 to row_count - 1, dense): a range seek on the
        (dataset, position) index, with no COUNT over a dataset that may hold a million rows."""
        pages = max(1, math.ceil(dataset.row_count / DATASET_ROWS_PAGE))
        raw = self.request.GET.get("page", "1")
        number = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else 1
        number = min(max(number, 1), pages)
        first = (number - 1) * DATASET_ROWS_PAGE
        rows = DatasetRow.objects.filter(
            dataset=dataset, position__gte=first, position__lt=first + DATASET_ROWS_PAGE
        ).order_by("position")
        return Page(
            rows=[
                {"position": row.position, "input": _json(row.input), "expected": _json(row.expected_output)}
                for row in rows
            ],
            next_url=page_url(self.request, page=number + 1) if number < pages else None,
            prev_url=page_url(self.request, page=number - 1) if number > 1 else None,
            summary=f"Page {number} of {pages}" if pages > 1 else "",
        )


urlpatterns = [
    path("evaluations", EvaluationsView.as_view(), name="evaluations"),
    path("evaluations/<int:pk>", EvaluationView.as_view(), name="evaluation"),
    path("datasets", DatasetsView.as_view(), name="datasets"),
    path("datasets/<int:pk>", DatasetView.as_view(), name="dataset"),
]
