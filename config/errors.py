"""The one error envelope: ``{error, code, details?, detailsType, requestId}``.

Used by the DRF exception handler and by the plain-Django paths (middleware, 404/500 handlers), so
no endpoint ever answers bad input with HTML or a bare 500.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt


class Conflict(Exception):
    """A write that collides with existing state (a duplicate id): 409 CONFLICT with context."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


def error_body(
    request: HttpRequest | None,
    *,
    message: str,
    code: str,
    details: Any = None,
    details_type: str = "context",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message, "code": code}
    if details is not None:
        body["details"] = details
    body["detailsType"] = details_type
    body["requestId"] = getattr(request, "request_id", None) if request is not None else None
    if extra:
        body.update(extra)
    return body


def error_response(
    request: HttpRequest | None, status: int, *, message: str, code: str, **kwargs: Any
) -> JsonResponse:
    return JsonResponse(
        error_body(request, message=message, code=code, **kwargs),
        status=status,
        json_dumps_params={"separators": (",", ":")},
    )


# Exempt: an unknown route answers 404 whatever the method; CSRF's check (which runs as a view hook
# even where the middleware skips API requests) would otherwise answer POST/DELETE with a 403 page.
@csrf_exempt
def not_found_view(request: HttpRequest, exception: Exception | None = None, **kwargs: Any) -> JsonResponse:
    return error_response(
        request, 404, message=f"Route {request.method} {request.path} not found", code="NOT_FOUND"
    )


def bad_request_view(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(request, 400, message="Bad Request", code="BAD_REQUEST")


def server_error_view(request: HttpRequest) -> JsonResponse:
    return error_response(request, 500, message="Internal server error", code="INTERNAL_ERROR")
