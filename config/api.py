"""/v1 plumbing shared by every app: router, pagination envelope, exception handler."""

from __future__ import annotations

import base64
import binascii
import logging
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import set_rollback

from config.errors import Conflict, error_body

logger = logging.getLogger(__name__)

router = SimpleRouter(trailing_slash=False)


class ApiError(exceptions.APIException):
    """An error with an explicit envelope code and optional context details."""

    def __init__(self, status_code: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.message = message
        self.details = details


def parse_int(raw: str) -> int | None:
    """An ASCII, optionally negative integer, or None: int() would also take "1_0", "+5", " 1" or
    full-width digits, which no client means as a number."""
    return int(raw) if _INTEGER_RE.fullmatch(raw) else None


def not_found(resource: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"{resource} not found")


def validation_failed(messages: Sequence[str]) -> ApiError:
    return ApiError(422, "VALIDATION_FAILED", "Validation failed", {"fields": list(messages)})


class RateLimited(exceptions.APIException):
    status_code = 429

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("Rate limit exceeded")
        self.headers = headers


_REQUIRED_CODES = {"required", "null", "blank"}
_INTEGER_RE = re.compile(r"-?[0-9]{1,30}")


def field_messages(detail: Any, prefix: str = "") -> list[str]:
    """Flatten DRF's nested error dict into Joi-style lines: ``"name" is required``."""
    if isinstance(detail, dict):
        lines: list[str] = []
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            lines += field_messages(value, f"{prefix}.{name}" if prefix and name else (name or prefix))
        return lines
    if isinstance(detail, list):
        lines = []
        for index, item in enumerate(detail):
            nested = isinstance(item, dict | list)
            lines += field_messages(item, f"{prefix}[{index}]" if nested else prefix)
        return lines
    code = getattr(detail, "code", None)
    text = str(detail)
    if not prefix:
        return [text]
    if code in _REQUIRED_CODES:
        return [f'"{prefix}" is required']
    return [f'"{prefix}" {text[0].lower() + text[1:] if text else text}']


def _django_validation_messages(exc: DjangoValidationError) -> list[str]:
    if hasattr(exc, "error_dict"):
        return [f'"{field}" {msg}' for field, msgs in exc.message_dict.items() for msg in msgs]
    return list(exc.messages)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map every exception raised in a /v1 view to the error envelope."""
    request = context.get("request")
    headers: dict[str, str] = {}
    details: Any = None
    details_type = "context"
    extra: dict[str, Any] | None = None
    if isinstance(exc, ApiError):
        code, message, status_code, details = exc.error_code, exc.message, exc.status_code, exc.details
        if code == "VALIDATION_FAILED":
            details_type = "fields"
    elif isinstance(exc, exceptions.ValidationError):
        status_code, code, message = 422, "VALIDATION_FAILED", "Validation failed"
        details, details_type = {"fields": field_messages(exc.detail)}, "fields"
    elif isinstance(exc, DjangoValidationError):
        status_code, code, message = 422, "VALIDATION_FAILED", "Validation failed"
        details, details_type = {"fields": _django_validation_messages(exc)}, "fields"
    elif isinstance(exc, exceptions.ParseError):
        status_code, code, message = 400, "BAD_REQUEST", "Bad Request"
        extra = {"message": "Invalid JSON body"}
    elif isinstance(exc, RequestDataTooBig):
        status_code, code, message = 413, "PAYLOAD_TOO_LARGE", "Request body too large"
    elif isinstance(exc, SuspiciousOperation):
        # Too many query fields, malformed multipart and the like: the client's fault, never a 500.
        status_code, code, message = 400, "BAD_REQUEST", "Bad Request"
    elif isinstance(exc, DjangoPermissionDenied):
        status_code, code, message = 403, "FORBIDDEN", str(exc) or "Forbidden"
    elif isinstance(exc, exceptions.NotAuthenticated):
        status_code, code, message = 401, "UNAUTHORIZED", "Missing X-API-Key header"
    elif isinstance(exc, exceptions.AuthenticationFailed):
        status_code, code, message = 401, "UNAUTHORIZED", str(exc.detail)
    elif isinstance(exc, exceptions.PermissionDenied):
        status_code, code, message = 403, "FORBIDDEN", str(exc.detail)
    elif isinstance(exc, Http404 | exceptions.NotFound):
        status_code, code, message = 404, "NOT_FOUND", "Not found"
    elif isinstance(exc, exceptions.MethodNotAllowed):
        status_code, code, message = 405, "METHOD_NOT_ALLOWED", str(exc.detail)
        view = context.get("view")
        if view is not None:
            headers = {"Allow": ", ".join(view.allowed_methods)}
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        status_code, code, message = 415, "UNSUPPORTED_MEDIA_TYPE", str(exc.detail)
    elif isinstance(exc, exceptions.NotAcceptable):
        status_code, code, message = 406, "NOT_ACCEPTABLE", str(exc.detail)
    elif isinstance(exc, RateLimited):
        status_code, code, message = 429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded"
        headers = exc.headers
    elif isinstance(exc, Conflict):
        status_code, code, message, details = 409, "CONFLICT", exc.message, exc.details
    elif isinstance(exc, IntegrityError):
        status_code, code, message = 409, "CONFLICT", "Conflict with an existing resource"
    elif isinstance(exc, exceptions.APIException):
        status_code, code, message = exc.status_code, "ERROR", str(exc.detail)
    else:
        logger.exception("unhandled error in %s", getattr(request, "path", "?"), exc_info=exc)
        status_code, code, message = 500, "INTERNAL_ERROR", "Internal server error"
    set_rollback()
    body = error_body(
        request, message=message, code=code, details=details, details_type=details_type, extra=extra
    )
    return Response(body, status=status_code, headers=headers)


class PagePagination(BasePagination):
    """Upstream's page/limit pagination: ``{items, total, page, limit, totalPages}``.

    Out-of-range or non-integer ``page``/``limit`` are refused with 422, as on the upstream
    endpoints that validate their query.
    """

    default_limit = 50
    max_limit = 100

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        self.page, self.limit = self.parse(request)
        self.total = queryset.count()
        offset = (self.page - 1) * self.limit
        if offset >= self.total:
            # Past the end: no query, so an absurd page number cannot overflow the SQL OFFSET (a 500).
            return []
        return list(queryset[offset : offset + self.limit])

    @classmethod
    def parse(cls, request: Request) -> tuple[int, int]:
        errors: list[str] = []
        page = cls._int(request, "page", 1, 1, None, errors)
        limit = cls._int(request, "limit", cls.default_limit, 1, cls.max_limit, errors)
        if errors:
            raise validation_failed(errors)
        return page, limit

    @staticmethod
    def _int(request: Request, name: str, default: int, low: int, high: int | None, errors: list[str]) -> int:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return default
        value = parse_int(raw)
        if value is None:
            errors.append(f'"{name}" must be a number')
            return default
        if value < low:
            errors.append(f'"{name}" must be greater than or equal to {low}')
        elif high is not None and value > high:
            errors.append(f'"{name}" must be less than or equal to {high}')
        return value

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {
                "items": data,
                "total": self.total,
                "page": self.page,
                "limit": self.limit,
                "totalPages": math.ceil(self.total / self.limit) if self.total else 0,
            },
            status=status.HTTP_200_OK,
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "items": schema,
                "total": {"type": "integer"},
                "page": {"type": "integer"},
                "limit": {"type": "integer"},
                "totalPages": {"type": "integer"},
            },
        }


class KeysetPagination(PagePagination):
    """Upstream's page/limit envelope, plus keyset pages for deep reads of big tables.

    Without ``cursor`` it answers like ``PagePagination`` and adds ``nextCursor``; with ``cursor``
    (empty for the first page) it returns ``{items, limit, nextCursor}`` read by an index seek on
    ``(created_at, id)``: no OFFSET and no COUNT, so page 10,000 costs what page 1 does.
    """

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        raw = request.query_params.get("cursor")
        self.keyset = raw is not None
        if not self.keyset:
            counted = getattr(view, "unfiltered_total", None)
            total = counted() if counted is not None else None
            if total is not None:
                # The view knows the total without a COUNT(*) over millions of rows.
                queryset = _Counted(queryset, total)
            page = super().paginate_queryset(queryset.order_by("-created_at", "-id"), request, view)
            more = self.page * self.limit < self.total
            self.next_cursor = _encode_cursor(page[-1]) if page and more else None
            return page
        _, self.limit = self.parse(request)
        rows, self.next_cursor = keyset_rows(queryset, raw, self.limit)
        return rows

    def get_paginated_response(self, data: Any) -> Response:
        if not self.keyset:
            response = super().get_paginated_response(data)
            response.data["nextCursor"] = self.next_cursor
            return response
        return Response({"items": data, "limit": self.limit, "nextCursor": self.next_cursor})


class _Counted:
    """A queryset whose count() is already known."""

    def __init__(self, queryset: Any, total: int) -> None:
        self.queryset, self.total = queryset, total

    def order_by(self, *fields: str) -> _Counted:
        return _Counted(self.queryset.order_by(*fields), self.total)

    def count(self) -> int:
        return self.total

    def __getitem__(self, item: Any) -> Any:
        return self.queryset[item]


def keyset_rows(queryset: Any, cursor: str, limit: int) -> tuple[list[Any], str | None]:
    """One page newest first after ``cursor`` (empty: the first page), and the next page's cursor."""
    if cursor:
        created, pk = _decode_cursor(cursor)
        # "created_at <= c, minus the rows at c already shown" rather than "created_at < c OR
        # (created_at = c AND id < pk)": SQLite cannot seek an index on the OR form and scans
        # from the top of the table, which made a page deep in a million rows take a second.
        queryset = queryset.filter(created_at__lte=created).exclude(created_at=created, id__gte=pk)
    rows = list(queryset.order_by("-created_at", "-id")[: limit + 1])
    next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def _encode_cursor(row: Any) -> str:
    created, pk = (row["created_at"], row["id"]) if isinstance(row, dict) else (row.created_at, row.pk)
    raw = f"{created.isoformat()}|{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, pk = raw.split("|")
        parsed = datetime.fromisoformat(created)
        if parsed.tzinfo is None:
            raise ValueError(created)
        # Normalised here: year 1 at +14:00 (or 9999 at -14:00) overflows in UTC, which would
        # otherwise happen inside the database adapter (a 500 on SQLite).
        return parsed.astimezone(UTC), int(pk)
    except (ValueError, OverflowError, UnicodeDecodeError, binascii.Error):
        raise validation_failed(['"cursor" is not a cursor this server issued']) from None


class UnixSecondsField(serializers.ReadOnlyField):
    """Render a DateTimeField as integer Unix seconds, the wire format for ``created_at`` & co."""

    def to_representation(self, value: datetime | None) -> int | None:
        return int(value.timestamp()) if value is not None else None


class BlankAsNullField(serializers.ReadOnlyField):
    """Render empty strings as null, as upstream returns its nullable text columns."""

    def to_representation(self, value: str | None) -> str | None:
        return value or None
