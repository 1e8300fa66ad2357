"""The dashboard's pages, one module per area."""

from __future__ import annotations

from dashboard.views import auth, evaluations, operations, overview, prompts, telemetry

app_name = "dashboard"

urlpatterns = [
    *auth.urlpatterns,
    *overview.urlpatterns,
    *prompts.urlpatterns,
    *telemetry.urlpatterns,
    *evaluations.urlpatterns,
    *operations.urlpatterns,
]
