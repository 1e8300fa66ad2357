"""The overview: a window's traffic, cost and latency, top prompts by tokens, recent runs, health."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.urls import path
from django.utils import timezone

from config.health import dependency_checks
from dashboard import charts
from dashboard.views.base import DashboardView
from evaluations import selectors as evaluation_selectors
from evaluations.models import Evaluation
from telemetry import metrics
from telemetry.models import LogRecord, Run

# The API's windows (7/30/90 days) and a last-24-hours view for the day's incident.
WINDOWS = {"24h": 1, "7d": 7, "30d": 30, "90d": 90}
DEFAULT_WINDOW = "7d"
RECENT_RUNS = 10


def health_panel() -> list[dict[str, Any]]:
    """The rows of the system health panel, shared by the overview and operations."""
    checks = dependency_checks()
    return [
        {"name": "Database", "detail": connection.vendor, "ok": checks["sqlite"]},
        {"name": "Prompt storage", "detail": f"{settings.DRIVER} driver", "ok": checks["driver"]},
        {
            "name": "Redis",
            "detail": "cache and rate limits" if settings.REDIS_URL else "not configured (per-process cache)",
            "ok": checks.get("redis"),
        },
        # Logs, spans and results are committed before the API answers: nothing queues.
        {"name": "Ingest lag", "detail": "none: ingest is synchronous", "ok": True},
    ]


class OverviewView(DashboardView):
    template_name = "dashboard/overview.html"
    nav = "overview"
    title = "Overview"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        name = self.request.GET.get("window", DEFAULT_WINDOW)
        if name not in WINDOWS:
            name = DEFAULT_WINDOW
        now = timezone.now()
        window = metrics.Window(name=name, start=now - timedelta(days=WINDOWS[name]), end=now)
        figures = metrics.overview(workspace_id=self.workspace_id, window=window)
        runs = (
            self.scoped(Run)
            .filter(created_at__gte=window.first_hour)
            .order_by("-created_at", "-id")[:RECENT_RUNS]
        )
        evaluation = evaluation_selectors.most_recently_scored(self.scoped(Evaluation))
        trend = None
        if evaluation is not None:
            # The trend's shortest window is a week; the 24h view shows that week.
            days = "7d" if name == "24h" else name
            points = evaluation_selectors.trend(evaluation=evaluation, window=days, bucket="day")["points"]
            trend = charts.score_trend(points, threshold=evaluation.threshold)
        context.update(
            evaluation=evaluation,
            evaluation_trend=trend,
            windows=list(WINDOWS),
            window=name,
            figures=figures,
            cost_latency=charts.cost_latency(figures["daily"]),
            tokens_by_prompt=charts.tokens_by_prompt(figures["top_prompts"])
            if figures["top_prompts"]
            else None,
            recent_runs=list(runs),
            health=health_panel(),
            # Only a window without requests asks whether the workspace ever logged (an index probe).
            has_logs=figures["requests"] > 0 or self.scoped(LogRecord).exists(),
        )
        return context


urlpatterns = [path("", OverviewView.as_view(), name="overview")]
