from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt

from config.api import router
from config.errors import not_found_view
from config.health import health, health_deep
from evaluations.api.views import DatasetViewSet, EvaluationViewSet
from registry.api.views import (
    PromptLabelHistoryViewSet,
    PromptLabelViewSet,
    PromptVersionViewSet,
    PromptViewSet,
)
from registry.githttp import git_http_view
from telemetry.api.metrics import urlpatterns as metrics_urls
from telemetry.api.views import LogViewSet, RunViewSet, SpanViewSet, TraceViewSet
from telemetry.otlp.views import otlp_traces_view
from tenancy.api.views import ApiKeyViewSet, AuditLogViewSet, WorkspaceViewSet

# Registered with the full "v1/..." prefix rather than under include("v1/"): one resolver level
# less on every API request.
router.register("v1/api-keys", ApiKeyViewSet, basename="api-key")
router.register("v1/audit-logs", AuditLogViewSet, basename="audit-log")
router.register("v1/workspaces", WorkspaceViewSet, basename="workspace")
router.register("v1/logs", LogViewSet, basename="log")
router.register("v1/traces", TraceViewSet, basename="trace")
router.register(r"v1/traces/(?P<trace_id>[^/]+)/spans", SpanViewSet, basename="span")
router.register("v1/runs", RunViewSet, basename="run")
router.register("v1/evaluations", EvaluationViewSet, basename="evaluation")
router.register("v1/datasets", DatasetViewSet, basename="dataset")
router.register("v1/prompts", PromptViewSet, basename="prompt")
_PROMPT = r"v1/prompts/(?P<prompt_name>[^/]+)"
router.register(f"{_PROMPT}/versions", PromptVersionViewSet, basename="prompt-version")
router.register(f"{_PROMPT}/labels", PromptLabelViewSet, basename="prompt-label")
router.register(
    f"{_PROMPT}/labels/(?P<label>[^/]+)/history", PromptLabelHistoryViewSet, basename="label-history"
)

# The API first: URL resolution tries patterns in order and /v1 is the hot path.
urlpatterns = [
    *router.urls,
    *metrics_urls,
    # Exempt from CSRF, which would answer a POST with an HTML 403 page before the JSON 405 (these
    # views change nothing; the middleware's view hook runs even where its request hook is skipped).
    path("health", csrf_exempt(health), name="health"),
    path("health/deep", csrf_exempt(health_deep), name="health-deep"),
    path("admin/", admin.site.urls),
    re_path(r"^git/(?P<workspace>[A-Za-z0-9_-]{1,128})\.git/(?P<service_path>.*)$", git_http_view),
    path("otlp/v1/traces", otlp_traces_view, name="otlp-traces"),
    path("", include("dashboard.urls")),
    # Anything else is a JSON 404 (also with DEBUG on, where handler404 is not used).
    re_path(r"^", not_found_view),
]

handler400 = "config.errors.bad_request_view"
handler404 = "config.errors.not_found_view"
handler500 = "config.errors.server_error_view"
