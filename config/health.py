"""Unauthenticated health endpoints: ``/health`` (liveness) and ``/health/deep`` (dependencies)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from config.errors import error_response
from registry.storage import storage_healthy

logger = logging.getLogger(__name__)


def require_safe(view: Callable[[HttpRequest], JsonResponse]) -> Callable[[HttpRequest], JsonResponse]:
    """GET/HEAD only, refusing other methods with the JSON envelope (Django's own answers HTML)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest) -> JsonResponse:
        if request.method not in ("GET", "HEAD"):
            response = error_response(
                request, 405, message=f'Method "{request.method}" not allowed.', code="METHOD_NOT_ALLOWED"
            )
            response["Allow"] = "GET, HEAD"
            return response
        return view(request)

    return wrapper


@require_safe
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        logger.exception("health: database check failed")
        return False


def _redis_ok() -> bool:
    from django_redis import get_redis_connection

    try:
        return bool(get_redis_connection("default").ping())
    except Exception:
        logger.exception("health: Redis check failed")
        return False


def dependency_checks() -> dict[str, bool]:
    """Each dependency and whether it answers: the database (named ``sqlite`` on every backend, as
    the original's clients expect), the prompt store and Redis when configured."""
    checks = {"sqlite": _database_ok(), "driver": storage_healthy()}
    if settings.REDIS_URL:
        checks["redis"] = _redis_ok()
    return checks


@require_safe
def health_deep(request: HttpRequest) -> JsonResponse:
    """Checks the database, the prompt store and Redis (when configured); 503 when any fails."""
    checks = dependency_checks()
    healthy = all(checks.values())
    body = {
        "status": "ok" if healthy else "degraded",
        "checks": {name: "ok" if ok else "error" for name, ok in checks.items()},
        "dbType": "postgresql" if connection.vendor == "postgresql" else "sqlite",
        "dbConnected": checks["sqlite"],
        "driverType": settings.DRIVER,
        "reconciliationRunning": False,
    }
    return JsonResponse(body, status=200 if healthy else 503)
