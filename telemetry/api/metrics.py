"""``/v1/metrics/*`` (upstream §2.12): read-only aggregates of the request's workspace.

As upstream, these endpoints have no query validation: ``page`` and ``limit`` are clamped (junk
means the default); only a bad ``window`` is refused (400).
"""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import ApiError, parse_int
from telemetry import metrics
from tenancy.api.base import ScopedAPIView

DEFAULT_LIMIT, MAX_LIMIT = 50, 100


def _clamped(request: Request, name: str, default: int, low: int, high: int | None = None) -> int:
    raw = request.query_params.get(name)
    value = parse_int(raw) if raw else None
    if value is None:
        return default
    value = max(low, value)
    return min(high, value) if high is not None else value


def _window(request: Request) -> metrics.Window:
    return metrics.window_from(request.query_params.get("window"))


class TimeSeriesView(ScopedAPIView):
    def get(self, request: Request) -> Response:
        return Response(metrics.time_series(workspace_id=request.workspace_id, window=_window(request)))


class PromptMetricsView(ScopedAPIView):
    def get(self, request: Request) -> Response:
        window = _window(request)
        limit = _clamped(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        return Response(metrics.prompt_metrics(workspace_id=request.workspace_id, window=window, limit=limit))


class EvaluationMetricsView(ScopedAPIView):
    def get(self, request: Request) -> Response:
        window = _window(request)
        raw = request.query_params.get("evaluation_id")
        evaluation_id = None
        if raw:
            evaluation_id = parse_int(raw)
            if evaluation_id is None or evaluation_id <= 0:
                raise ApiError(400, "BAD_REQUEST", f"Invalid ID parameter: {raw}")
        return Response(
            metrics.evaluation_trends(
                workspace_id=request.workspace_id, window=window, evaluation_id=evaluation_id
            )
        )


class ActivityView(ScopedAPIView):
    def get(self, request: Request) -> Response:
        window = _window(request)
        page = _clamped(request, "page", 1, 1)
        limit = _clamped(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        return Response(
            metrics.activity(workspace_id=request.workspace_id, window=window, page=page, limit=limit)
        )


urlpatterns = [
    path("v1/metrics/time-series", TimeSeriesView.as_view(), name="metrics-time-series"),
    path("v1/metrics/prompts", PromptMetricsView.as_view(), name="metrics-prompts"),
    path("v1/metrics/evaluations", EvaluationMetricsView.as_view(), name="metrics-evaluations"),
    path("v1/metrics/activity", ActivityView.as_view(), name="metrics-activity"),
]
