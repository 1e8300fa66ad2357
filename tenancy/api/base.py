"""The base classes of every /v1 view: the request pipeline and workspace scoping, written once.

DRF runs ``initial()`` as authenticate -> check_permissions (scopes) -> check_throttles; throttling
is replaced by our per-(workspace, key) sliding-window limiter, counted exactly once per request.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.viewsets import GenericViewSet

from config.api import RateLimited
from tenancy.models import Scope
from tenancy.ratelimit import rate_limit_hit

# Telemetry writes (logs, traces, spans, runs, OTLP) accept the least-privilege ``ingest`` scope too.
TELEMETRY_WRITE_SCOPES: tuple[str, ...] = (Scope.WRITE, Scope.INGEST)
ADMIN_SCOPES: tuple[str, ...] = (Scope.ADMIN,)


class PipelineMixin:
    """Scope check and rate limit for any /v1 view.

    ``scopes`` maps a viewset action (or a lower-case HTTP method for plain views) to the scopes
    that may call it; unlisted reads need ``read`` and unlisted writes need ``write``. An empty
    tuple means "any authenticated caller".
    """

    scopes: dict[str, tuple[str, ...]] = {}
    request: Request

    def get_required_scopes(self) -> tuple[str, ...]:
        action = getattr(self, "action", None) or self.request.method.lower()
        if action in self.scopes:
            return self.scopes[action]
        return (Scope.READ,) if self.request.method in SAFE_METHODS else (Scope.WRITE,)

    def check_throttles(self, request: Request) -> None:
        key_hash = getattr(request._request, "api_key_hash", None)
        if key_hash is None:
            return  # dashboard sessions are not rate limited
        result = rate_limit_hit(workspace_id=request._request.workspace_id, key_hash=key_hash)
        if result is None:
            return
        request._request.rate_limit_headers = result.headers
        if not result.allowed:
            raise RateLimited(result.headers)

    @property
    def default_response_headers(self) -> dict[str, str]:
        # DRF adds "Allow" to every response; only a 405 needs it (see config.api.exception_handler).
        return {}

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        for name, value in getattr(request._request, "rate_limit_headers", {}).items():
            response.setdefault(name, value)
        return response


class ScopedAPIView(PipelineMixin, APIView):
    """A plain /v1 endpoint (no model queryset)."""


class ScopedViewSet(PipelineMixin, GenericViewSet):
    """A /v1 resource owned by workspaces: every queryset is filtered to the request's workspace.

    Subclasses may not override ``get_queryset`` (PostHog's rule): they narrow the scoped queryset
    in ``narrow_queryset`` instead, so a forgotten filter cannot leak another tenant's rows. Objects
    of another workspace therefore 404 without any per-view code.
    """

    # Master keys see every workspace's rows on resources that say so (API keys, as upstream).
    master_sees_all_workspaces = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__} must not override get_queryset(); override narrow_queryset()")

    def get_queryset(self) -> QuerySet[Any]:
        queryset = super().get_queryset()
        if not (self.master_sees_all_workspaces and self.request.auth.is_master):
            queryset = queryset.filter(workspace_id=self.request.workspace_id)
        return self.narrow_queryset(queryset)

    def narrow_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        # A FilterSet deep-copies its filters and its form's fields when built: 1.6 ms of a 5 ms
        # page of logs. With no filter parameter in the query it would return the queryset as it
        # is, so it is not built at all.
        filterset_class = getattr(self, "filterset_class", None)
        if filterset_class is not None and not set(self.request.query_params) & set(
            filterset_class.base_filters
        ):
            return queryset
        return super().filter_queryset(queryset)
