"""Placeholder pages, replaced as the area is built."""

from __future__ import annotations

from django.urls import path

from dashboard.views.base import DashboardView


class _Placeholder(DashboardView):
    template_name = "dashboard/placeholder.html"


urlpatterns = [
    path("prompts", _Placeholder.as_view(nav="prompts", title="Prompts"), name="prompts"),
]
