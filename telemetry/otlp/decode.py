"""Decoding of OTLP/HTTP trace export bodies: protobuf or OTLP/JSON, identity or gzip.

Both encodings become the same plain ``OtlpSpan`` objects: hex ids, aware UTC datetimes (microsecond
precision; nanoseconds survive in event times), attributes as JSON values (arrays and key-value
lists nested, bytes as base64, non-finite doubles as strings), and the resource and scope the span
came with. A body that is not an ``ExportTraceServiceRequest`` is an ``OtlpError`` (400); a span
with invalid ids is kept with ``error`` set, so that the receiver reports it in ``partial_success``
and stores the others.

OTLP/JSON differs from protobuf's canonical JSON mapping: trace and span ids are hex strings (not
base64), 64-bit integers may be strings or numbers, enums are numbers. Field names are lowerCamelCase;
snake_case names and enum names are accepted as well, as protobuf's own JSON parser does.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

PROTOBUF = "protobuf"
JSON = "json"

TRACE_ID_BYTES = 16
SPAN_ID_BYTES = 8
_ZERO_TRACE_ID = bytes(TRACE_ID_BYTES)
_ZERO_SPAN_ID = bytes(SPAN_ID_BYTES)
_ZERO_SPAN_HEX = "0" * (2 * SPAN_ID_BYTES)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_UNIX_NANO = 2**64 - 1  # fixed64 on the wire
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Longest id echoed back in a rejection (a malformed one may be anything).
_REPORTED_ID_MAX = 128
_HEX_RE = re.compile(r"[0-9a-fA-F]*")
# NUL cannot be stored in PostgreSQL text or jsonb, nor a lone surrogate (json.loads lets "\ud800"
# through); protobuf strings are valid UTF-8 already, so only NUL is checked on that path.
_JSON_BAD_CHARS_RE = re.compile("[\x00\ud800-\udfff]")

SPAN_KIND_NAMES = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
STATUS_CODE_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


class OtlpError(Exception):
    """The request as a whole is refused: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class OtlpSpan:
    trace_id: str  # lower-case hex; whatever was sent (for the rejection report) when ``error``
    span_id: str
    parent_id: str  # "" for a root span
    name: str
    kind: int  # OTLP SpanKind number
    start_time: datetime | None
    end_time: datetime | None
    attributes: dict[str, Any]
    events: list[dict[str, Any]]
    status_code: int  # 0 unset, 1 ok, 2 error
    status_message: str
    resource: dict[str, Any]
    scope_name: str
    scope_version: str
    error: str = ""  # why the span cannot be stored ("" when it can)


# --- transport ------------------------------------------------------------------------------------


def inflate(body: bytes, content_encoding: str, *, limit: int) -> bytes:
    """The body without its ``Content-Encoding``; gzip is inflated to at most ``limit`` bytes.

    A few KB of gzip can inflate to gigabytes, so the output is capped (413 past it), and a
    truncated or corrupt stream is a 400 rather than whatever prefix happened to inflate.
    Concatenated gzip members (legal, and what some streaming compressors write) are all read.
    """
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise OtlpError(415, f"Unsupported Content-Encoding: {encoding} (use gzip or none)")
    parts: list[bytes] = []
    total = 0
    data = body
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            part = inflater.decompress(data, limit - total + 1)
        except zlib.error as exc:
            raise OtlpError(400, f"Invalid gzip body: {exc}") from exc
        total += len(part)
        if total > limit or inflater.unconsumed_tail:
            raise OtlpError(413, f"Request body too large (limit {limit} bytes uncompressed)")
        if not inflater.eof:
            raise OtlpError(400, "Invalid gzip body: truncated")
        parts.append(part)
        data = inflater.unused_data
        if not data:
            return parts[0] if len(parts) == 1 else b"".join(parts)


def decode(data: bytes, fmt: str) -> list[OtlpSpan]:
    return decode_protobuf(data) if fmt == PROTOBUF else decode_json(data)


def unix_nano_to_datetime(ns: int) -> datetime | None:
    """Nanoseconds since the epoch as an aware UTC datetime (microseconds); 0 means "not set"."""
    if ns <= 0:
        return None
    return _EPOCH + timedelta(microseconds=ns // 1000)


def _event_time(ns: int) -> str | None:
    """An event time as ISO 8601 with all nine fractional digits (Python 3.11+ parses it)."""
    if ns <= 0:
        return None
    seconds, nanos = divmod(ns, 1_000_000_000)
    return f"{_EPOCH + timedelta(seconds=seconds):%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


def _id_error(trace_id: bytes, span_id: bytes, parent_id: bytes) -> str:
    if len(trace_id) != TRACE_ID_BYTES or trace_id == _ZERO_TRACE_ID:
        return "invalid trace_id: must be 16 bytes, not all zero"
    if len(span_id) != SPAN_ID_BYTES or span_id == _ZERO_SPAN_ID:
        return "invalid span_id: must be 8 bytes, not all zero"
    if parent_id and len(parent_id) != SPAN_ID_BYTES:
        return "invalid parent_span_id: must be empty or 8 bytes"
    return ""


# --- protobuf -------------------------------------------------------------------------------------


def decode_protobuf(data: bytes) -> list[OtlpSpan]:
    try:
        request = ExportTraceServiceRequest.FromString(data)
    except (DecodeError, ValueError, RecursionError) as exc:
        raise OtlpError(400, f"Invalid protobuf body: {exc or 'not an ExportTraceServiceRequest'}") from exc
    spans: list[OtlpSpan] = []
    append = spans.append
    for resource_spans in request.resource_spans:
        resource = _pb_attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            scope_name, scope_version = _pb_text(scope.name), _pb_text(scope.version)
            for span in scope_spans.spans:
                trace_id, span_id, parent_id = span.trace_id, span.span_id, span.parent_span_id
                if parent_id == _ZERO_SPAN_ID:
                    parent_id = b""  # some SDKs send zeros for "no parent"
                status = span.status
                append(
                    OtlpSpan(
                        trace_id=trace_id.hex(),
                        span_id=span_id.hex(),
                        parent_id=parent_id.hex(),
                        name=_pb_text(span.name),
                        kind=span.kind,
                        start_time=unix_nano_to_datetime(span.start_time_unix_nano),
                        end_time=unix_nano_to_datetime(span.end_time_unix_nano),
                        attributes=_pb_attributes(span.attributes),
                        events=[
                            {
                                "name": _pb_text(event.name),
                                "time": _event_time(event.time_unix_nano),
                                "attributes": _pb_attributes(event.attributes),
                            }
                            for event in span.events
                        ],
                        status_code=status.code,
                        status_message=_pb_text(status.message),
                        resource=resource,
                        scope_name=scope_name,
                        scope_version=scope_version,
                        error=_id_error(trace_id, span_id, parent_id),
                    )
                )
    return spans


def _pb_text(value: str) -> str:
    return value.replace("\x00", "") if "\x00" in value else value


def _pb_attributes(attributes: Any) -> dict[str, Any]:
    # Later duplicates win, as in the SDKs' attribute maps.
    return {_pb_text(kv.key): _pb_value(kv.value) for kv in attributes}


def _pb_value(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":
        text = value.string_value
        return text.replace("\x00", "") if "\x00" in text else text
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return _double(value.double_value)
    if which == "bool_value":
        return value.bool_value
    if which == "array_value":
        return [_pb_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return {_pb_text(kv.key): _pb_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None  # empty AnyValue (or a dictionary index, which traces do not use)


def _double(value: float) -> float | str:
    # JSON (and PostgreSQL's jsonb) has no NaN or infinities; OTLP/JSON writes them as strings too.
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


# --- OTLP/JSON ------------------------------------------------------------------------------------


class _Malformed(Exception):
    pass


def decode_json(data: bytes) -> list[OtlpSpan]:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise OtlpError(400, f"Invalid JSON body: {exc}") from exc
    try:
        return _json_request(document)
    except _Malformed as exc:
        raise OtlpError(400, f"Invalid OTLP/JSON body: {exc}") from exc
    except RecursionError as exc:
        raise OtlpError(400, "Invalid OTLP/JSON body: values nested too deeply") from exc


def _json_request(document: Any) -> list[OtlpSpan]:
    if not isinstance(document, dict):
        raise _Malformed("the body must be an ExportTraceServiceRequest object")
    spans: list[OtlpSpan] = []
    for resource_spans in _list(document, "resourceSpans", "resource_spans"):
        _check_object(resource_spans, "resourceSpans[]")
        resource = _json_attributes(_object(resource_spans, "resource", "resource"))
        for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans"):
            _check_object(scope_spans, "scopeSpans[]")
            scope = _object(scope_spans, "scope", "scope")
            scope_name = _string(scope, "name", "name")
            scope_version = _string(scope, "version", "version")
            for span in _list(scope_spans, "spans", "spans"):
                _check_object(span, "spans[]")
                spans.append(_json_span(span, resource, scope_name, scope_version))
    return spans


def _json_span(
    span: dict[str, Any], resource: dict[str, Any], scope_name: str, scope_version: str
) -> OtlpSpan:
    trace_id, trace_ok = _json_id(_get(span, "traceId", "trace_id"), TRACE_ID_BYTES)
    span_id, span_ok = _json_id(_get(span, "spanId", "span_id"), SPAN_ID_BYTES)
    raw_parent = _get(span, "parentSpanId", "parent_span_id")
    if raw_parent is None or raw_parent in ("", _ZERO_SPAN_HEX):
        parent_id, parent_ok = "", True  # zeros: "no parent", as some SDKs write it
    else:
        parent_id, parent_ok = _json_id(raw_parent, SPAN_ID_BYTES)
    error = ""
    if not trace_ok:
        error = "invalid traceId: must be 32 hex characters, not all zero"
    elif not span_ok:
        error = "invalid spanId: must be 16 hex characters, not all zero"
    elif not parent_ok:
        error = "invalid parentSpanId: must be empty or 16 hex characters"
    status = _object(span, "status", "status")
    return OtlpSpan(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        name=_string(span, "name", "name"),
        kind=_enum(_get(span, "kind", "kind"), SPAN_KIND_NAMES, "kind"),
        start_time=unix_nano_to_datetime(_unix_nano(_get(span, "startTimeUnixNano", "start_time_unix_nano"))),
        end_time=unix_nano_to_datetime(_unix_nano(_get(span, "endTimeUnixNano", "end_time_unix_nano"))),
        attributes=_json_attributes(span),
        events=[_json_event(event) for event in _list(span, "events", "events")],
        status_code=_enum(_get(status, "code", "code"), STATUS_CODE_NAMES, "status.code"),
        status_message=_string(status, "message", "message"),
        resource=resource,
        scope_name=scope_name,
        scope_version=scope_version,
        error=error,
    )


def _json_event(event: Any) -> dict[str, Any]:
    _check_object(event, "events[]")
    return {
        "name": _string(event, "name", "name"),
        "time": _event_time(_unix_nano(_get(event, "timeUnixNano", "time_unix_nano"))),
        "attributes": _json_attributes(event),
    }


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _check_object(value: Any, what: str) -> None:
    if not isinstance(value, dict):
        raise _Malformed(f"{what} must be an object")


def _object(obj: dict[str, Any], camel: str, snake: str) -> dict[str, Any]:
    value = _get(obj, camel, snake)
    if value is None:
        return {}
    _check_object(value, camel)
    return value


def _list(obj: dict[str, Any], camel: str, snake: str) -> list[Any]:
    value = _get(obj, camel, snake)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Malformed(f"{camel} must be an array")
    return value


def _string(obj: dict[str, Any], camel: str, snake: str) -> str:
    value = _get(obj, camel, snake)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Malformed(f"{camel} must be a string")
    return _json_text(value)


def _json_text(value: str) -> str:
    return _JSON_BAD_CHARS_RE.sub("", value) if _JSON_BAD_CHARS_RE.search(value) else value


def _int(value: Any, what: str) -> int:
    """A (64-bit) integer written as a JSON number or a decimal string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and 0 < len(value) <= 21:
        try:
            return int(value)
        except ValueError:
            pass
    raise _Malformed(f"{what} must be an integer (a number or a decimal string)")


def _unix_nano(value: Any) -> int:
    if value is None:
        return 0
    ns = _int(value, "a time in Unix nanoseconds")
    if not 0 <= ns <= _MAX_UNIX_NANO:
        raise _Malformed("a time in Unix nanoseconds is out of range")
    return ns


def _enum(value: Any, names: dict[str, int], what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, str) and value in names:
        return names[value]
    return _int(value, what)


def _json_id(value: Any, size: int) -> tuple[str, bool]:
    """``(lower-case hex, valid)``. OTLP/JSON sends hex; base64 (protobuf's JSON mapping, which
    some old exporters used) is accepted when it decodes to exactly ``size`` bytes."""
    if not isinstance(value, str):
        return ("" if value is None else _json_text(str(value))[:_REPORTED_ID_MAX]), False
    if len(value) == 2 * size and _HEX_RE.fullmatch(value):
        hex_id = value.lower()
        return hex_id, hex_id != "0" * (2 * size)
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == size and raw != bytes(size):
        return raw.hex(), True
    return _json_text(value)[:_REPORTED_ID_MAX], False


def _json_attributes(obj: dict[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for kv in _list(obj, "attributes", "attributes"):
        _check_object(kv, "attributes[]")
        key = kv.get("key")
        if not isinstance(key, str):
            raise _Malformed("attributes[].key must be a string")
        attributes[_json_text(key)] = _json_value(kv.get("value"))
    return attributes


def _json_value(value: Any) -> Any:
    """An AnyValue object as a JSON value."""
    if value is None:
        return None
    _check_object(value, "an AnyValue")
    for key, item in value.items():
        converter = _JSON_VALUE_CONVERTERS.get(key)
        if converter is not None and item is not None:
            return converter(item)
    return None


def _json_string_value(item: Any) -> str:
    if not isinstance(item, str):
        raise _Malformed("stringValue must be a string")
    return _json_text(item)


def _json_int_value(item: Any) -> int:
    number = _int(item, "intValue")
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise _Malformed("intValue is out of the 64-bit range")
    return number


def _json_double_value(item: Any) -> float | str:
    if isinstance(item, bool):
        raise _Malformed("doubleValue must be a number")
    if isinstance(item, int | float):
        return _double(float(item))
    if isinstance(item, str):
        try:
            return _double(float(item))
        except ValueError:
            pass
    raise _Malformed("doubleValue must be a number")


def _json_bool_value(item: Any) -> bool:
    if not isinstance(item, bool):
        raise _Malformed("boolValue must be true or false")
    return item


def _json_array_value(item: Any) -> list[Any]:
    _check_object(item, "arrayValue")
    return [_json_value(v) for v in _list(item, "values", "values")]


def _json_kvlist_value(item: Any) -> dict[str, Any]:
    _check_object(item, "kvlistValue")
    return _json_attributes({"attributes": _list(item, "values", "values")})


def _json_bytes_value(item: Any) -> str:
    if not isinstance(item, str):
        raise _Malformed("bytesValue must be a base64 string")
    return _json_text(item)


_JSON_VALUE_CONVERTERS = {
    "stringValue": _json_string_value,
    "string_value": _json_string_value,
    "intValue": _json_int_value,
    "int_value": _json_int_value,
    "doubleValue": _json_double_value,
    "double_value": _json_double_value,
    "boolValue": _json_bool_value,
    "bool_value": _json_bool_value,
    "arrayValue": _json_array_value,
    "array_value": _json_array_value,
    "kvlistValue": _json_kvlist_value,
    "kvlist_value": _json_kvlist_value,
    "bytesValue": _json_bytes_value,
    "bytes_value": _json_bytes_value,
}
