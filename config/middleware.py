"""The first step of every request: request id, workspace header, body size, CORS.

Runs before routing, so even ``/health`` answers 400 on a malformed ``X-Workspace-Id`` (as upstream)
and an oversize body is refused before anything reads it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponse
from django.middleware import clickjacking, csrf

from config.errors import error_response
from tenancy.models import WORKSPACE_ID_RE

_WORKSPACE_RE = re.compile(WORKSPACE_ID_RE)
# Echo client ids that are safe to reflect in a header and a JSON body; mint one otherwise.
_REQUEST_ID_RE = re.compile(r"[\x21-\x7e]{1,200}")
_INVALID_WORKSPACE = "Invalid X-Workspace-Id header: must be 1-128 letters, digits, hyphens or underscores"
_API_PREFIX = "/v1/"
# OTLP exporters authenticate with an API key only: no session, CSRF or messages, ever.
_OTLP_PREFIX = "/otlp/"
_CORS_PREFIXES = (_API_PREFIX, "/health")
_CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": (
        "x-request-id, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After"
    ),
}
_PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, X-API-Key, X-Workspace-Id, x-request-id",
    "Access-Control-Max-Age": "600",
}


def _uuid4() -> str:
    """A random (version 4) UUID string, formatted without building a uuid.UUID (hot path)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request.request_id = incoming if _REQUEST_ID_RE.fullmatch(incoming) else _uuid4()  # type: ignore[attr-defined]
        response = self._handle(request)
        response["x-request-id"] = request.request_id  # type: ignore[attr-defined]
        if not response.streaming and "Content-Length" not in response:
            # Without it gunicorn falls back to chunked encoding: more writes, more bytes, and
            # clients cannot tell a truncated body from a complete one.
            response["Content-Length"] = str(len(response.content))
        # CORS headers matter only to browsers, which always send Origin; SDKs and exporters don't.
        if "HTTP_ORIGIN" in request.META and request.path.startswith(_CORS_PREFIXES):
            for name, value in _CORS_HEADERS.items():
                response[name] = value
        return response

    def _handle(self, request: HttpRequest) -> HttpResponse:
        workspace_id = request.META.get("HTTP_X_WORKSPACE_ID")
        if workspace_id is None:
            workspace_id = "default"
        elif not _WORKSPACE_RE.fullmatch(workspace_id):
            return error_response(
                request,
                400,
                message=_INVALID_WORKSPACE,
                code="BAD_REQUEST",
            )
        request.workspace_id = workspace_id  # type: ignore[attr-defined]
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            # No identifier or search term contains NUL, and PostgreSQL refuses it in text values.
            message = "NUL bytes are not allowed in URLs"
            return error_response(request, 400, message=message, code="BAD_REQUEST")

        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            return error_response(request, 400, message="Invalid Content-Length header", code="BAD_REQUEST")
        if length > settings.MAX_BODY_BYTES:
            return error_response(
                request,
                413,
                message=f"Request body too large (limit {settings.MAX_BODY_BYTES} bytes)",
                code="PAYLOAD_TOO_LARGE",
            )

        if (
            request.method == "OPTIONS"
            and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in request.META
            and request.path.startswith(_CORS_PREFIXES)
        ):
            response = HttpResponse(status=204)
            for name, value in _PREFLIGHT_HEADERS.items():
                response[name] = value
            return response
        return self.get_response(request)


class _PagesOnly:
    """Skip a page-oriented middleware on API requests that cannot use a session.

    Sessions, CSRF, ``request.user``, flash messages and X-Frame-Options serve the admin and the
    dashboard. A /v1 request that carries an API key, or no session cookie, never needs them, and
    skipping them is a quarter of the cost of the cheapest authenticated read.
    """

    get_response: Callable[[HttpRequest], HttpResponse]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(_OTLP_PREFIX) or (
            request.path.startswith(_API_PREFIX)
            and ("HTTP_X_API_KEY" in request.META or settings.SESSION_COOKIE_NAME not in request.COOKIES)
        ):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class SessionMiddleware(_PagesOnly, sessions.SessionMiddleware):
    pass


class CsrfViewMiddleware(_PagesOnly, csrf.CsrfViewMiddleware):
    pass


class AuthenticationMiddleware(_PagesOnly, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(_PagesOnly, messages.MessageMiddleware):
    pass


class XFrameOptionsMiddleware(_PagesOnly, clickjacking.XFrameOptionsMiddleware):
    pass
