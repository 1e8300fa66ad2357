"""``POST /otlp/v1/traces``: the OTLP/HTTP trace receiver (a plain Django view, not DRF).

Any OpenTelemetry SDK exports here with ``OTEL_EXPORTER_OTLP_ENDPOINT=http://HOST:PORT/otlp``.
Bodies are ``application/x-protobuf`` or ``application/json`` (OTLP/JSON), optionally gzipped;
the answer is an ``ExportTraceServiceResponse`` in the request's encoding, with ``partial_success``
counting the spans that were not stored (invalid ids, or already stored: exporters retry). Spans go
through ``telemetry.services.spans_ingest`` like REST spans, in one transaction: when the response
arrives, every accepted span is queryable.

Errors follow the OTLP/HTTP specification: a protobuf request gets a ``google.rpc.Status`` body,
a JSON (or unidentifiable) request the API's JSON error envelope. 400 for an undecodable body (the
exporter must not retry it), 401/403 for the key, 413 for an oversize body (compressed: the
request middleware; inflated: here), 415 for another content type or encoding, 429 with
``Retry-After`` past the rate limit, and 503 with ``Retry-After`` when the database is briefly
unavailable or a concurrent export of the same spans won a race (the retry then reports those spans
as duplicates), both of which exporters retry.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, OperationalError
from django.http import HttpRequest, HttpResponse, UnreadablePostError
from django.views.decorators.csrf import csrf_exempt
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from config.errors import error_response
from telemetry.models import TraceSource
from telemetry.otlp.auth import KeyAccess, Refused, authorize, request_actor
from telemetry.otlp.decode import JSON, PROTOBUF, OtlpError, decode, inflate
from telemetry.otlp.mapping import to_span_input
from telemetry.services import spans_ingest
from tenancy.api.base import TELEMETRY_WRITE_SCOPES

logger = logging.getLogger(__name__)

PROTOBUF_CONTENT_TYPE = "application/x-protobuf"
JSON_CONTENT_TYPE = "application/json"
_FORMATS = {
    "application/x-protobuf": PROTOBUF,
    "application/protobuf": PROTOBUF,
    "application/json": JSON,
}
# An inflated body may be this many times MAX_BODY_BYTES (the cap on the compressed body).
INFLATE_FACTOR = 4
# How many rejection reasons partial_success.error_message spells out.
_REASONS_SHOWN = 5
_ERROR_CODES = {
    400: "BAD_REQUEST",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    503: "SERVICE_UNAVAILABLE",
}
# google.rpc.Code of each HTTP status we answer with.
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 405: 12, 413: 8, 415: 3, 429: 8, 500: 13, 503: 14}


@csrf_exempt
def otlp_traces_view(request: HttpRequest) -> HttpResponse:
    fmt = _format(request)
    if request.method != "POST":
        refusal = Refused(
            405, "METHOD_NOT_ALLOWED", f"Method {request.method} not allowed", {"Allow": "POST"}
        )
        return _refuse(request, fmt, refusal)
    try:
        access = authorize(request, scopes=TELEMETRY_WRITE_SCOPES)
    except Refused as refusal:
        return _refuse(request, fmt, refusal)
    try:
        return _export(request, fmt, access)
    except Refused as refusal:
        refusal.headers = {**access.rate_limit_headers, **refusal.headers}
        return _refuse(request, fmt, refusal)


def _export(request: HttpRequest, fmt: str | None, access: KeyAccess) -> HttpResponse:
    if fmt is None:
        content_type = request.META.get("CONTENT_TYPE", "") or "(none)"
        raise Refused(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            f"Unsupported Content-Type {content_type}: use application/x-protobuf or application/json",
        )
    try:
        body = request.body
    except RequestDataTooBig as exc:
        raise Refused(413, "PAYLOAD_TOO_LARGE", "Request body too large") from exc
    except UnreadablePostError as exc:
        raise Refused(400, "BAD_REQUEST", "The request body could not be read") from exc
    try:
        data = inflate(
            body,
            request.META.get("HTTP_CONTENT_ENCODING", ""),
            limit=INFLATE_FACTOR * settings.MAX_BODY_BYTES,
        )
        spans = decode(data, fmt)
    except OtlpError as exc:
        raise Refused(exc.status, _ERROR_CODES.get(exc.status, "BAD_REQUEST"), exc.message) from exc

    rejected: list[tuple[str, str]] = []
    inputs = []
    for span in spans:
        if span.error:
            rejected.append((span.span_id, span.error))
        else:
            inputs.append(to_span_input(span))
    if inputs:
        try:
            result = spans_ingest(
                workspace_id=access.workspace_id,
                spans=inputs,
                source=TraceSource.OTLP,
                actor=request_actor(request, access),
            )
        except (IntegrityError, OperationalError) as exc:
            # A concurrent export of the same spans committed first, or the database is briefly
            # unavailable (locked, failing over): retryable, and the retry stores what is missing.
            logger.warning("OTLP export not stored, client asked to retry: %s", exc)
            raise Refused(
                503,
                "SERVICE_UNAVAILABLE",
                "Temporarily unable to store the spans; retry",
                {"Retry-After": "1"},
            ) from exc
        rejected.extend(result.rejected)
    response = _success(fmt, rejected)
    for name, value in access.rate_limit_headers.items():
        response[name] = value
    return response


def _format(request: HttpRequest) -> str | None:
    content_type = request.META.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    return _FORMATS.get(content_type)


def _rejection_message(rejected: list[tuple[str, str]]) -> str:
    shown = "; ".join(
        f"span {span_id or '(no id)'}: {reason}" for span_id, reason in rejected[:_REASONS_SHOWN]
    )
    more = len(rejected) - _REASONS_SHOWN
    suffix = f"; and {more} more" if more > 0 else ""
    return f"{len(rejected)} span(s) rejected: {shown}{suffix}"


def _success(fmt: str, rejected: list[tuple[str, str]]) -> HttpResponse:
    """The ExportTraceServiceResponse; ``partial_success`` is left unset when everything was stored."""
    if fmt == PROTOBUF:
        message = ExportTraceServiceResponse()
        if rejected:
            message.partial_success.rejected_spans = len(rejected)
            message.partial_success.error_message = _rejection_message(rejected)
        return HttpResponse(message.SerializeToString(), content_type=PROTOBUF_CONTENT_TYPE)
    body: dict[str, object] = {}
    if rejected:
        # OTLP/JSON writes 64-bit integers as decimal strings.
        body["partialSuccess"] = {
            "rejectedSpans": str(len(rejected)),
            "errorMessage": _rejection_message(rejected),
        }
    return HttpResponse(json.dumps(body, separators=(",", ":")), content_type=JSON_CONTENT_TYPE)


def _refuse(request: HttpRequest, fmt: str | None, refusal: Refused) -> HttpResponse:
    response: HttpResponse
    if fmt == PROTOBUF:
        grpc_code = _GRPC_CODES.get(refusal.status, 2)  # 2: UNKNOWN
        response = HttpResponse(
            rpc_status(grpc_code, refusal.message), status=refusal.status, content_type=PROTOBUF_CONTENT_TYPE
        )
    else:
        response = error_response(request, refusal.status, message=refusal.message, code=refusal.code)
    for name, value in refusal.headers.items():
        response[name] = value
    return response


def rpc_status(code: int, message: str) -> bytes:
    """A serialized ``google.rpc.Status {code, message}``, written by hand: two fields do not
    justify a runtime dependency on googleapis-common-protos."""
    out = bytearray()
    if code:
        out += b"\x08" + _varint(code)  # field 1, varint
    text = message.encode("utf-8")
    if text:
        out += b"\x12" + _varint(len(text)) + text  # field 2, length-delimited
    return bytes(out)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
