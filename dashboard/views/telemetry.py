"""Placeholder pages, replaced as the area is built."""

from __future__ import annotations

from django.urls import path

from dashboard.views.base import DashboardView


class _Placeholder(DashboardView):
    template_name = "dashboard/placeholder.html"


urlpatterns = [
    path("logs", _Placeholder.as_view(nav="logs", title="Logs"), name="logs"),
    path("traces", _Placeholder.as_view(nav="traces", title="Traces"), name="traces"),
    path("runs", _Placeholder.as_view(nav="runs", title="Runs"), name="runs"),
    path("runs/<str:run_id>", _Placeholder.as_view(nav="runs", title="Run"), name="run"),
]
