"""The OTLP/HTTP trace receiver, ``POST /otlp/v1/traces``.

* decoding (protobuf, OTLP/JSON, gzip) and the attribute mapping, on the payloads captured from real
  instrumentations in ../shared/conformance/otlp/ (GenAI conventions, OpenInference, OpenLLMetry);
* the endpoint in-process: replaying those payloads as their exporters sent them (children before
  parents), auth, errors, partial success, workspace isolation;
* a real server: the Node exporter's chunked JSON bodies, and the real ``opentelemetry-sdk`` with
  its OTLP/HTTP protobuf exporter.
"""

from __future__ import annotations

import gzip
import http.client
import importlib.util
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus

from telemetry.models import LogRecord, Span, Trace
from telemetry.otlp.decode import (
    JSON,
    PROTOBUF,
    OtlpError,
    OtlpSpan,
    decode,
    decode_json,
    decode_protobuf,
    inflate,
)
from telemetry.otlp.mapping import to_span_input
from telemetry.otlp.views import rpc_status
from tests.live_server import LiveServer, Response, ServerFactory, service_required

# ../shared/conformance/otlp, next to this repository.
CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "otlp"
OTLP = "/otlp/v1/traces"
PB = "application/x-protobuf"
JS = "application/json"
HAS_PRICING = importlib.util.find_spec("telemetry.pricing") is not None

OI_TRACE = "27b83cddde993cffca6a1aa4ead0349c"
OLL_TRACE = "dac39b4f51cd51e0980a1aa90844700c"
JS_TRACE = "0932191f919365ebde7e488d2d4a2ec5"

# The README's expected mapping of every captured span, by (directory, file).
EXPECTED: dict[tuple[str, str], dict[str, Any]] = {
    ("openinference-openai", "export-1.pb"): {
        "span_id": "b4923dde757e2de2",
        "parent_id": "f171a0675c32596e",
        "name": "ChatCompletion",
        "kind": "llm",
        "provider": "openai",
        "model": "gpt-4o-mini-2024-07-18",
        "tokens_in": 120,
        "tokens_out": 340,
        "cached_tokens": 100,
        "reasoning_tokens": 40,
        "status": "ok",
        "events": [],
        "is_llm": True,
    },
    ("openinference-openai", "export-2.pb"): {
        "span_id": "1727412036b66a24",
        "parent_id": "f171a0675c32596e",
        "kind": "llm",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "tokens_in": 120,
        "tokens_out": 340,
        "cached_tokens": 100,
        "reasoning_tokens": 40,
        "status": "ok",
        "events": ["First Token Stream Event"],
        "is_llm": True,
    },
    ("openinference-openai", "export-3.pb"): {
        "span_id": "f171a0675c32596e",
        "parent_id": "",
        "name": "agent-run",
        "kind": "internal",
        "provider": "",
        "model": "",
        "tokens_in": None,
        "tokens_out": None,
        "status": "unset",
        "is_llm": False,
        "trace_name": "agent-run",
    },
    ("openllmetry-openai", "export-1.pb"): {
        "parent_id": "309c4048dd3fede4",
        "name": "openai.chat",
        "kind": "llm",
        "provider": "openai",
        "model": "gpt-4o-mini-2024-07-18",  # the response model wins over the request's gpt-4o-mini
        "tokens_in": 120,
        "tokens_out": 340,
        "cached_tokens": 100,
        "reasoning_tokens": 40,
        "status": "unset",
        "events": [],
        "is_llm": True,
    },
    ("openllmetry-openai", "export-2.pb"): {
        "parent_id": "309c4048dd3fede4",
        "kind": "llm",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "tokens_in": 120,
        "tokens_out": 340,
        "cached_tokens": 100,
        "reasoning_tokens": None,
        "status": "ok",
        "events": ["gen_ai.content.completion.chunk"] * 4,
        "is_llm": True,
    },
    ("openllmetry-openai", "export-3.pb"): {
        "span_id": "309c4048dd3fede4",
        "parent_id": "",
        "kind": "internal",
        "model": "",
        "tokens_in": None,
        "is_llm": False,
    },
    ("otel-js-json", "export-1.json"): {
        "span_id": "f1bd7005b57734d3",
        "parent_id": "eba8e02d6d7e3268",
        "name": "chat claude-sonnet-4-5",
        "kind": "llm",
        "provider": "anthropic",
        "model": "claude-sonnet-4-5-20250929",
        "tokens_in": 2048,
        "tokens_out": 512,
        "cached_tokens": 1024,
        "reasoning_tokens": None,
        "status": "error",
        "status_message": "overloaded, retried",
        "events": ["retry"],
        "is_llm": True,
    },
    ("otel-js-json", "export-2.json"): {
        "span_id": "4d448c136563093a",
        "parent_id": "eba8e02d6d7e3268",
        "name": "tool:lookup_order",
        "kind": "tool",
        "model": "",
        "tokens_in": None,
        "status": "unset",
        "is_llm": False,
    },
    ("otel-js-json", "export-3.json"): {
        "span_id": "eba8e02d6d7e3268",
        "parent_id": "",
        "name": "agent-loop",
        "kind": "internal",
        "status": "unset",
        "session_id": "sess-9",
        "user_id": "user-7",
        "prompt_name": "welcome",
        "version_tag": "1.4.2",
        "is_llm": False,
        "trace_name": "agent-loop",
    },
}
DIRECTORIES = {
    "openinference-openai": (OI_TRACE, PB),
    "openllmetry-openai": (OLL_TRACE, PB),
    "otel-js-json": (JS_TRACE, JS),
}


def files(directory: str) -> list[Path]:
    """The directory's request bodies in the order they were sent (children first)."""
    return sorted(p for p in (CONFORMANCE / directory).glob("export-*") if p.suffix in (".pb", ".json"))


def decode_file(path: Path) -> list[OtlpSpan]:
    return decode(path.read_bytes(), JSON if path.suffix == ".json" else PROTOBUF)


# --- building requests ----------------------------------------------------------------------------


def _any(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        result = AnyValue()
        result.array_value.values.extend(_any(v) for v in value)
        return result
    if isinstance(value, dict):
        result = AnyValue()
        result.kvlist_value.values.extend(KeyValue(key=k, value=_any(v)) for k, v in value.items())
        return result
    return AnyValue(string_value=value)


def pb_span(
    trace_id: bytes | str,
    span_id: bytes | str,
    parent_id: bytes | str = b"",
    *,
    name: str = "span",
    attributes: dict[str, Any] | None = None,
    kind: int = PbSpan.SPAN_KIND_INTERNAL,
    status: int = 0,
    start: int = 1_795_709_574_765_485_611,
    end: int = 1_795_709_574_804_285_608,
) -> PbSpan:
    def raw(value: bytes | str) -> bytes:
        return bytes.fromhex(value) if isinstance(value, str) else value

    span = PbSpan(
        trace_id=raw(trace_id),
        span_id=raw(span_id),
        parent_span_id=raw(parent_id),
        name=name,
        kind=kind,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        status=PbStatus(code=status),
    )
    span.attributes.extend(KeyValue(key=k, value=_any(v)) for k, v in (attributes or {}).items())
    return span


def pb_request(spans: Iterable[PbSpan], resource: dict[str, Any] | None = None) -> bytes:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        KeyValue(key=k, value=_any(v)) for k, v in (resource or {"service.name": "tests"}).items()
    )
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "tests"
    scope_spans.spans.extend(spans)
    return request.SerializeToString()


def mapped(span: PbSpan, resource: dict[str, Any] | None = None) -> Any:
    [decoded] = decode_protobuf(pb_request([span], resource))
    assert decoded.error == ""
    return to_span_input(decoded)


def llm_attrs(**extra: Any) -> dict[str, Any]:
    return {"gen_ai.operation.name": "chat", **extra}


# --- decoding and mapping: the captured payloads ----------------------------------------------------


@pytest.mark.parametrize(("directory", "filename"), sorted(EXPECTED))
def test_captured_spans_map_as_the_readme_says(directory, filename):
    [span] = decode_file(CONFORMANCE / directory / filename)
    assert span.error == ""
    assert span.trace_id == DIRECTORIES[directory][0]
    result = to_span_input(span)

    expected = dict(EXPECTED[(directory, filename)])
    event_names = expected.pop("events", None)
    for field, value in expected.items():
        assert getattr(result, field) == value, field
    if event_names is not None:
        assert [event["name"] for event in result.events] == event_names


def test_openinference_keeps_input_and_output_values_in_metadata():
    [span] = decode_file(CONFORMANCE / "openinference-openai" / "export-1.pb")
    metadata = to_span_input(span).metadata

    assert json.loads(metadata["input.value"])["messages"][1]["content"] == "Say hello to Alice"
    assert "Hello Alice!" in metadata["output.value"]
    assert metadata["openinference.span.kind"] == "LLM"
    assert metadata["llm.token_count.total"] == 460
    assert metadata["otel.scope.name"] == "openinference.instrumentation.openai"
    assert metadata["otel.scope.version"] == "0.1.66"
    assert metadata["otel.span.kind"] == "internal"
    assert metadata["service.name"] == "demo-openinference"


def test_openllmetry_keeps_the_message_attributes_and_typed_values():
    first, second = (
        to_span_input(decode_file(CONFORMANCE / "openllmetry-openai" / f"export-{i}.pb")[0]) for i in (1, 2)
    )

    messages = json.loads(first.metadata["gen_ai.input.messages"])
    assert messages[1]["parts"][0]["content"] == "Say hello to Alice"
    assert json.loads(first.metadata["gen_ai.output.messages"])[0]["parts"][0]["content"] == "Hello Alice!"
    assert first.metadata["gen_ai.response.finish_reasons"] == ["stop"]  # an array value
    assert first.metadata["gen_ai.request.temperature"] == 0.2
    assert first.metadata["gen_ai.is_streaming"] is False
    assert first.metadata["otel.span.kind"] == "client"
    assert second.metadata["gen_ai.is_streaming"] is True


def test_otlp_json_events_timestamps_and_status():
    [span] = decode_file(CONFORMANCE / "otel-js-json" / "export-1.json")
    result = to_span_input(span)

    assert result.events == [
        {"name": "retry", "time": "2026-11-26T16:13:43.087283862Z", "attributes": {"attempt": 1}}
    ]
    assert result.start_time == datetime(2026, 11, 26, 16, 13, 43, 87000, tzinfo=UTC)
    # 1795709623087420555 ns: microseconds kept, the last three digits dropped (not rounded).
    assert result.end_time == datetime(2026, 11, 26, 16, 13, 43, 87420, tzinfo=UTC)
    assert result.metadata["gen_ai.request.temperature"] == 0.5
    assert result.metadata["otel.span.kind"] == "client"


def test_protobuf_nanoseconds_become_exact_microseconds():
    [span] = decode_file(CONFORMANCE / "openinference-openai" / "export-1.pb")

    assert span.start_time == datetime(2026, 11, 26, 16, 12, 54, 785271, tzinfo=UTC)
    assert span.end_time == datetime(2026, 11, 26, 16, 12, 54, 793859, tzinfo=UTC)


# --- decoding: values, encodings, errors ------------------------------------------------------------


def test_protobuf_any_values_become_json_values():
    attributes = {
        "s": "text",
        "i": -5,
        "d": 1.5,
        "b": True,
        "bytes": b"\x00\x01\xff",
        "arr": [1, "two", [3.0]],
        "kv": {"a": {"b": 1}},
        "nan": float("nan"),
        "inf": float("-inf"),
        "nul": "a\x00b",
    }
    [span] = decode_protobuf(pb_request([pb_span("11" * 16, "22" * 8, attributes=attributes)]))

    assert span.attributes == {
        "s": "text",
        "i": -5,
        "d": 1.5,
        "b": True,
        "bytes": "AAH/",
        "arr": [1, "two", [3.0]],
        "kv": {"a": {"b": 1}},
        "nan": "NaN",
        "inf": "-Infinity",
        "nul": "ab",
    }
    json.dumps(span.attributes, allow_nan=False)  # storable as JSON everywhere


def test_otlp_json_accepts_string_integers_enum_names_snake_case_and_base64_ids():
    body = {
        "resource_spans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"string_value": "svc"}}]},
                "scope_spans": [
                    {
                        "spans": [
                            {
                                "trace_id": "AAECAwQFBgcICQoLDA0ODw==",  # base64, 16 bytes
                                "span_id": "0001020304050607",
                                "parent_span_id": "0000000000000000",  # zeros: no parent
                                "name": "n",
                                "kind": "SPAN_KIND_CLIENT",
                                "start_time_unix_nano": 1795709623087000000,
                                "end_time_unix_nano": "1795709623088000000",
                                "attributes": [
                                    {"key": "i", "value": {"intValue": "42"}},
                                    {"key": "d", "value": {"doubleValue": "NaN"}},
                                    {
                                        "key": "arr",
                                        "value": {"arrayValue": {"values": [{"boolValue": True}]}},
                                    },
                                    {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "x"}]}}},
                                    {"key": "b", "value": {"bytesValue": "AAH/"}},
                                    {"key": "empty", "value": {}},
                                    {"key": "nul", "value": {"stringValue": "a\u0000b\ud800"}},
                                ],
                                "status": {"code": "STATUS_CODE_OK"},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    [span] = decode_json(json.dumps(body).encode())

    assert span.error == ""
    assert (span.trace_id, span.span_id, span.parent_id) == (
        "000102030405060708090a0b0c0d0e0f",
        "0001020304050607",
        "",
    )
    assert (span.kind, span.status_code) == (3, 1)
    assert span.resource == {"service.name": "svc"}
    assert span.attributes == {
        "i": 42,
        "d": "NaN",
        "arr": [True],
        "kv": {"x": None},
        "b": "AAH/",
        "empty": None,
        "nul": "ab",
    }
    assert span.end_time == datetime(2026, 11, 26, 16, 13, 43, 88000, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"resourceSpans": {}}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": '
        b'[{"key": "k", "value": {"intValue": 1.5}}]}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": [{"value": {}}]}]}]}]}',
    ],
)
def test_malformed_otlp_json_is_a_400(body):
    with pytest.raises(OtlpError) as error:
        decode_json(body)
    assert error.value.status == 400


def test_malformed_protobuf_is_a_400():
    with pytest.raises(OtlpError) as error:
        decode_protobuf(b"\x0a\xff\xff\xff\xff\x0f garbage")
    assert error.value.status == 400


@pytest.mark.parametrize(
    ("trace_id", "span_id", "parent_id", "reason"),
    [
        (b"\x00" * 16, b"\x01" * 8, b"", "trace_id"),
        (b"\x01" * 15, b"\x01" * 8, b"", "trace_id"),
        (b"\x01" * 16, b"\x00" * 8, b"", "span_id"),
        (b"\x01" * 16, b"\x01" * 9, b"", "span_id"),
        (b"\x01" * 16, b"\x01" * 8, b"\x01" * 3, "parent_span_id"),
    ],
)
def test_spans_with_invalid_ids_are_marked(trace_id, span_id, parent_id, reason):
    [span] = decode_protobuf(pb_request([pb_span(trace_id, span_id, parent_id)]))
    assert reason in span.error


@pytest.mark.parametrize(
    ("trace_id", "span_id", "reason"),
    [
        ("0" * 32, "01" * 8, "traceId"),
        ("xyz", "01" * 8, "traceId"),
        (None, "01" * 8, "traceId"),
        ("01" * 16, "0" * 16, "spanId"),
        ("01" * 16, "01" * 7, "spanId"),
    ],
)
def test_otlp_json_spans_with_invalid_ids_are_marked(trace_id, span_id, reason):
    span: dict[str, Any] = {"spanId": span_id, "name": "x"}
    if trace_id is not None:
        span["traceId"] = trace_id
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    [decoded] = decode_json(json.dumps(body).encode())
    assert reason in decoded.error


def test_gzip_bodies_are_inflated_including_concatenated_members():
    data = b"x" * 10_000
    assert inflate(gzip.compress(data), "gzip", limit=10_000) == data
    assert inflate(gzip.compress(data[:4000]) + gzip.compress(data[4000:]), "GZIP", limit=10_000) == data
    assert inflate(data, "", limit=1) == data  # identity: not inflated, not limited here
    assert inflate(data, "identity", limit=1) == data


@pytest.mark.parametrize(
    ("body", "encoding", "status"),
    [
        (gzip.compress(b"x" * 10_000)[:-12], "gzip", 400),  # truncated
        (b"\x1f\x8b not gzip at all", "gzip", 400),
        (gzip.compress(b"x" * 10_000) + b"trailing junk", "gzip", 400),
        (gzip.compress(b"\x00" * 10_001), "gzip", 413),  # a (small) bomb
        (gzip.compress(b"x" * 5_001) * 2, "gzip", 413),  # over the limit across members
        (b"data", "br", 415),
    ],
)
def test_bad_content_encodings_are_refused(body, encoding, status):
    with pytest.raises(OtlpError) as error:
        inflate(body, encoding, limit=10_000)
    assert error.value.status == status


def test_rpc_status_is_a_valid_google_rpc_status():
    status = status_pb2.Status.FromString(rpc_status(16, "Invalid API key ✓" + "x" * 200))
    assert (status.code, status.message) == (16, "Invalid API key ✓" + "x" * 200)


# --- mapping: the tables ----------------------------------------------------------------------------


def test_legacy_genai_names_map_too():
    result = mapped(
        pb_span(
            "11" * 16,
            "22" * 8,
            attributes=llm_attrs(
                **{
                    "gen_ai.system": "Anthropic",
                    "gen_ai.request.model": "claude-3-5-haiku",
                    "gen_ai.usage.prompt_tokens": 10,
                    "gen_ai.usage.completion_tokens": 20,
                    "gen_ai.usage.cache_read_input_tokens": 4,
                    "gen_ai.usage.reasoning.output_tokens": 3,
                }
            ),
        )
    )
    assert (result.provider, result.model) == ("anthropic", "claude-3-5-haiku")
    assert (result.tokens_in, result.tokens_out, result.cached_tokens, result.reasoning_tokens) == (
        10,
        20,
        4,
        3,
    )
    assert result.is_llm


def test_openllmetry_legacy_llm_usage_and_request_type():
    result = mapped(
        pb_span(
            "11" * 16,
            "22" * 8,
            attributes={
                "llm.request.type": "chat",
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o",
                "llm.usage.total_tokens": 50,
                "llm.usage.prompt_tokens": 30,
            },
        )
    )
    assert (result.kind, result.model, result.tokens_in, result.tokens_out) == ("llm", "gpt-4o", 30, 20)
    assert result.is_llm


@pytest.mark.parametrize(
    ("attributes", "otlp_kind", "kind"),
    [
        ({"openinference.span.kind": "TOOL"}, 1, "tool"),
        ({"openinference.span.kind": "AGENT"}, 1, "agent"),
        ({"openinference.span.kind": "CHAIN"}, 1, "chain"),
        ({"openinference.span.kind": "RETRIEVER"}, 1, "retriever"),
        ({"openinference.span.kind": "EMBEDDING"}, 1, "embedding"),
        ({"openinference.span.kind": "RERANKER"}, 1, "reranker"),
        ({"openinference.span.kind": "UNKNOWN"}, 3, "client"),
        ({"gen_ai.operation.name": "text_completion"}, 3, "llm"),
        ({"gen_ai.operation.name": "generate_content"}, 3, "llm"),
        ({"gen_ai.operation.name": "embeddings"}, 3, "embedding"),
        ({"gen_ai.operation.name": "invoke_agent"}, 1, "agent"),
        ({"gen_ai.operation.name": "create_agent"}, 1, "agent"),
        ({"gen_ai.operation.name": "retrieval"}, 1, "retriever"),
        ({"gen_ai.operation.name": "execute_tool"}, 1, "tool"),
        ({"traceloop.span.kind": "workflow"}, 1, "chain"),
        ({"traceloop.span.kind": "task"}, 1, "chain"),
        ({"traceloop.span.kind": "agent"}, 1, "agent"),
        ({"traceloop.span.kind": "tool"}, 1, "tool"),
        ({"llm.request.type": "embedding"}, 3, "embedding"),
        ({}, 0, "internal"),
        ({}, 2, "server"),
        ({}, 4, "producer"),
        ({}, 5, "consumer"),
        # Pre-1.27 semconv (no operation name): a system, a model and usage make an LLM call.
        (
            {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1},
            3,
            "llm",
        ),
        # A model alone does not.
        ({"gen_ai.request.model": "gpt-4o"}, 1, "internal"),
    ],
)
def test_kind(attributes, otlp_kind, kind):
    assert mapped(pb_span("11" * 16, "22" * 8, attributes=attributes, kind=otlp_kind)).kind == kind


def test_only_llm_spans_with_a_model_are_llm_calls():
    assert not mapped(pb_span("11" * 16, "22" * 8, attributes=llm_attrs())).is_llm  # no model
    tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.request.model": "gpt-4o"}
    assert not mapped(pb_span("11" * 16, "22" * 8, attributes=tool)).is_llm
    embedding = {"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "text-embedding-3-small"}
    assert not mapped(pb_span("11" * 16, "22" * 8, attributes=embedding)).is_llm


def test_embedding_total_tokens_are_input_tokens():
    attributes = {"openinference.span.kind": "EMBEDDING", "llm.token_count.total": 12}
    result = mapped(pb_span("11" * 16, "22" * 8, attributes=attributes))
    assert (result.tokens_in, result.tokens_out) == (12, None)


def test_openinference_request_and_response_model_names():
    attributes = {
        "openinference.span.kind": "LLM",
        "llm.request.model_name": "claude-opus",
        "llm.response.model_name": "claude-opus-4-1",
        "llm.model_name": "claude-opus",
        "llm.provider": "aws",
    }
    result = mapped(pb_span("11" * 16, "22" * 8, attributes=attributes))
    assert (result.model, result.provider) == ("claude-opus-4-1", "aws")


def test_unusable_values_fall_through_to_the_next_key():
    attributes = llm_attrs(
        **{
            "gen_ai.response.model": "",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": -3,  # negative: ignored
            "llm.token_count.prompt": "17",  # a string count
            "gen_ai.usage.output_tokens": 2.0,
            "gen_ai.usage.cache_read.input_tokens": 1.5,  # not an integer: ignored
            "gen_ai.usage.reasoning.output_tokens": True,  # a bool is no count
        }
    )
    result = mapped(pb_span("11" * 16, "22" * 8, attributes=attributes))
    assert (result.model, result.tokens_in, result.tokens_out) == ("gpt-4o", 17, 2)
    assert (result.cached_tokens, result.reasoning_tokens) == (None, None)


def test_supplied_costs():
    assert mapped(pb_span("11" * 16, "22" * 8, attributes={"llm.cost.total": 0.25})).cost_usd == 0.25
    assert mapped(pb_span("11" * 16, "22" * 8, attributes={"promptmetrics.cost_usd": "0.5"})).cost_usd == 0.5
    assert mapped(pb_span("11" * 16, "22" * 8, attributes={"llm.cost.total": -1})).cost_usd is None


def test_links_from_span_attributes_aliases_and_resource():
    aliases = {"gen_ai.conversation.id": "conv-1", "enduser.id": 42, "gen_ai.prompt.name": "greeting"}
    result = mapped(pb_span("11" * 16, "22" * 8, "33" * 8, attributes=aliases))
    assert (result.session_id, result.user_id, result.prompt_name) == ("conv-1", "42", "greeting")
    assert result.trace_name == ""  # not a root

    resource = {"service.name": "svc", "session.id": "from-resource", "promptmetrics.prompt.name": "p"}
    result = mapped(pb_span("11" * 16, "22" * 8, attributes={"session.id": "from-span"}), resource)
    assert (result.session_id, result.prompt_name, result.user_id) == ("from-span", "p", "")
    assert result.metadata["service.name"] == "svc"


def test_long_values_are_cut_to_the_columns():
    attributes = llm_attrs(
        **{
            "gen_ai.request.model": "m" * 500,
            "gen_ai.provider.name": "P" * 500,
            "session.id": "s" * 500,
            "promptmetrics.prompt.name": "n" * 500,
            "promptmetrics.prompt.version": "v" * 500,
        }
    )
    result = mapped(pb_span("11" * 16, "22" * 8, name="x" * 1000, attributes=attributes))
    assert (len(result.model), len(result.provider), len(result.session_id)) == (128, 64, 256)
    assert (len(result.prompt_name), len(result.version_tag), len(result.name)) == (128, 64, 256)
    assert result.provider == "p" * 64


@pytest.mark.parametrize(("code", "status"), [(0, "unset"), (1, "ok"), (2, "error"), (7, "unset")])
def test_status(code, status):
    assert mapped(pb_span("11" * 16, "22" * 8, status=code)).status == status


# --- the endpoint, in-process -----------------------------------------------------------------------


def post(api: Any, body: bytes, *, content_type: str = PB, key: str | None = None, **headers: Any) -> Any:
    extra = dict(headers)
    if key is not None:
        extra["HTTP_X_API_KEY"] = key
    return api.client.generic("POST", OTLP, body, content_type=content_type, **extra)


def export_response(response: Any) -> ExportTraceServiceResponse:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == PB
    return ExportTraceServiceResponse.FromString(response.content)


def rpc_error(response: Any, status: int) -> status_pb2.Status:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PB
    return status_pb2.Status.FromString(response.content)


def envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert body["requestId"] == response["x-request-id"]
    return body


@pytest.fixture
def ingest_key(make_key) -> str:
    return make_key("ingest")[1]


def replay(api: Any, key: str, directory: str, **headers: Any) -> None:
    content_type = DIRECTORIES[directory][1]
    for path in files(directory):
        response = post(api, path.read_bytes(), content_type=content_type, key=key, **headers)
        assert response.status_code == 200, (path, response.content)
        if content_type == PB:
            assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
        else:
            assert response.json() == {}


@pytest.mark.parametrize("directory", sorted(DIRECTORIES))
def test_replayed_exports_build_the_trace(api, ingest_key, directory):
    replay(api, ingest_key, directory)

    trace_id = DIRECTORIES[directory][0]
    trace = Trace.objects.get(workspace_id="default", trace_id=trace_id)
    spans = {s.span_id: s for s in Span.objects.filter(trace=trace)}
    assert len(spans) == 3 == trace.span_count
    assert trace.source == "otlp"
    [root] = [s for s in spans.values() if not s.parent_id]
    assert trace.name == root.name
    assert all(s.parent_id == root.span_id for s in spans.values() if s is not root)
    for (expected_dir, _), expected in EXPECTED.items():
        if expected_dir != directory or "span_id" not in expected:
            continue
        span = spans[expected["span_id"]]
        for field in ("kind", "model", "provider", "tokens_in", "tokens_out", "status"):
            if field in expected:
                assert getattr(span, field) == (expected[field] if expected[field] is not None else None), (
                    field
                )
        if "events" in expected:
            assert [e["name"] for e in span.events] == expected["events"]

    llm = [s for s in spans.values() if s.kind == "llm"]
    assert trace.tokens_in == sum(s.tokens_in for s in llm)
    assert trace.tokens_out == sum(s.tokens_out for s in llm)
    assert trace.start_time == min(s.start_time for s in spans.values())
    assert trace.end_time == max(s.end_time for s in spans.values())
    # One log per LLM call, and none for the other spans.
    logs = LogRecord.objects.filter(workspace_id="default", trace_id=trace_id)
    assert sorted(log.span_id for log in logs) == sorted(s.span_id for s in llm)
    for log in logs:
        span = spans[log.span_id]
        assert (log.model, log.provider, log.tokens_in, log.tokens_out) == (
            span.model,
            span.provider,
            span.tokens_in,
            span.tokens_out,
        )
        assert (log.cached_tokens, log.reasoning_tokens) == (span.cached_tokens, span.reasoning_tokens)
        assert log.status == ("error" if span.status == "error" else "ok")
        if HAS_PRICING:
            assert log.cost_usd is not None and log.cost_usd > 0
            assert log.cost_usd == span.cost_usd
    if HAS_PRICING:
        assert trace.cost_usd == pytest.approx(sum(s.cost_usd for s in llm))


def test_the_json_trace_is_linked_to_session_user_and_prompt(api, ingest_key):
    replay(api, ingest_key, "otel-js-json")

    trace = Trace.objects.get(trace_id=JS_TRACE)
    assert (trace.session_id, trace.user_id) == ("sess-9", "user-7")
    assert (trace.prompt_name, trace.version_tag) == ("welcome", "1.4.2")
    assert (trace.status, trace.error_count) == ("error", 1)
    chat = Span.objects.get(trace=trace, span_id="f1bd7005b57734d3")
    assert chat.status_message == "overloaded, retried"
    assert chat.cached_tokens == 1024
    assert chat.events[0]["attributes"] == {"attempt": 1}
    assert (
        Span.objects.get(trace=trace, span_id="4d448c136563093a").metadata["gen_ai.tool.name"]
        == "lookup_order"
    )


def test_the_trace_reads_back_through_the_api(api, make_key, ingest_key):
    replay(api, ingest_key, "openinference-openai")
    reader = make_key("read")[1]

    body = api.get(f"/v1/traces/{OI_TRACE}", key=reader).json()

    assert body["name"] == "agent-run"
    assert body["source"] == "otlp"
    assert {s["span_id"]: s["parent_id"] for s in body["spans"]} == {
        "f171a0675c32596e": None,
        "b4923dde757e2de2": "f171a0675c32596e",
        "1727412036b66a24": "f171a0675c32596e",
    }
    assert body["tokens_in"] == 240 and body["tokens_out"] == 680


def test_gzip_protobuf_is_accepted(api, ingest_key):
    body = gzip.compress((CONFORMANCE / "openllmetry-openai" / "export-1.pb").read_bytes())

    export_response(post(api, body, key=ingest_key, HTTP_CONTENT_ENCODING="gzip"))

    assert Span.objects.filter(trace__trace_id=OLL_TRACE).count() == 1


def test_protobuf_content_type_with_parameters(api, ingest_key):
    body = (CONFORMANCE / "openllmetry-openai" / "export-1.pb").read_bytes()
    export_response(post(api, body, content_type="application/x-protobuf; charset=binary", key=ingest_key))


def test_a_resent_export_reports_duplicates(api, ingest_key):
    body = (CONFORMANCE / "openinference-openai" / "export-1.pb").read_bytes()
    export_response(post(api, body, key=ingest_key))

    again = export_response(post(api, body, key=ingest_key))

    assert again.partial_success.rejected_spans == 1
    assert "b4923dde757e2de2" in again.partial_success.error_message
    assert "duplicate" in again.partial_success.error_message
    assert Span.objects.filter(span_id="b4923dde757e2de2").count() == 1
    assert LogRecord.objects.filter(span_id="b4923dde757e2de2").count() == 1


def test_invalid_ids_are_rejected_and_the_other_spans_stored(api, ingest_key):
    trace = "ab" * 16
    body = pb_request(
        [
            pb_span(trace, "01" * 8, name="good-root"),
            pb_span(trace, "02" * 8, "01" * 8, name="good-child"),
            pb_span(b"\x00" * 16, "03" * 8, name="zero-trace"),
            pb_span(trace, b"\x04" * 4, name="short-span-id"),
            pb_span(b"\x05" * 20, "05" * 8, name="long-trace-id"),
        ]
    )

    result = export_response(post(api, body, key=ingest_key))

    assert result.partial_success.rejected_spans == 3
    assert "invalid trace_id" in result.partial_success.error_message
    assert "invalid span_id" in result.partial_success.error_message
    assert sorted(Span.objects.values_list("name", flat=True)) == ["good-child", "good-root"]
    assert Trace.objects.get().span_count == 2


def test_invalid_json_ids_are_reported_in_json(api, ingest_key):
    good = {"traceId": "cd" * 16, "spanId": "01" * 8, "name": "ok"}
    bad = {"traceId": "not-hex", "spanId": "02" * 8, "name": "bad"}
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [good, bad]}]}]}).encode()

    response = post(api, body, content_type=JS, key=ingest_key)

    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 1
    assert "invalid traceId" in partial["errorMessage"]
    assert list(Span.objects.values_list("name", flat=True)) == ["ok"]


def test_an_empty_export_is_fine(api, ingest_key):
    assert not export_response(post(api, b"", key=ingest_key)).HasField("partial_success")
    assert post(api, b"{}", content_type=JS, key=ingest_key).json() == {}
    assert not Trace.objects.exists()


def test_nul_characters_are_dropped_not_fatal(api, ingest_key):
    span = pb_span("ef" * 16, "01" * 8, name="a\x00b", attributes={"k\x00": "v\x00w", "session.id": "s\x00"})

    export_response(post(api, pb_request([span]), key=ingest_key))

    stored = Span.objects.get()
    assert stored.name == "ab"
    assert stored.metadata["k"] == "vw"
    assert Trace.objects.get().session_id == "s"


# --- auth, workspaces, limits -------------------------------------------------------------------------


def test_no_key_is_a_401(api):
    body = (CONFORMANCE / "openinference-openai" / "export-1.pb").read_bytes()
    status = rpc_error(post(api, body), 401)
    assert status.code == 16  # UNAUTHENTICATED
    assert "API key" in status.message
    envelope(post(api, b"{}", content_type=JS), 401, "UNAUTHORIZED")
    assert not Span.objects.exists()


def test_an_unknown_or_expired_key_is_a_401(api, make_key):
    body = (CONFORMANCE / "openinference-openai" / "export-1.pb").read_bytes()
    assert rpc_error(post(api, body, key="pm_" + "0" * 64), 401).message == "Invalid API key"
    expired = make_key("ingest", expires_at=datetime(2020, 1, 1, tzinfo=UTC))[1]
    assert rpc_error(post(api, body, key=expired), 401).message == "API key expired"


def test_a_key_of_another_workspace_is_a_401(api, make_key):
    key = make_key("ingest", workspace="acme")[1]
    body = (CONFORMANCE / "openinference-openai" / "export-1.pb").read_bytes()

    status = rpc_error(post(api, body, key=key, HTTP_X_WORKSPACE_ID="other"), 401)

    assert "workspace" in status.message
    assert not Span.objects.exists()


def test_a_read_only_key_is_a_403(api, make_key):
    key = make_key("read")[1]
    body = (CONFORMANCE / "openinference-openai" / "export-1.pb").read_bytes()
    assert rpc_error(post(api, body, key=key), 403).code == 7  # PERMISSION_DENIED
    body = envelope(post(api, b"{}", content_type=JS, key=key), 403, "FORBIDDEN")
    assert "write" in body["error"]


def test_write_and_ingest_keys_may_export_and_the_ingest_key_cannot_read(api, make_key):
    write_key, ingest = make_key("write")[1], make_key("ingest")[1]

    export_response(post(api, pb_request([pb_span("01" * 16, "01" * 8)]), key=write_key))
    export_response(post(api, pb_request([pb_span("02" * 16, "01" * 8)]), key=ingest))

    assert Trace.objects.count() == 2
    assert api.get(f"/v1/traces/{'02' * 16}", key=ingest).status_code == 403


def test_bearer_authorization_works(api, make_key):
    key = make_key("ingest", workspace="acme")[1]
    body = (CONFORMANCE / "openinference-openai" / "export-1.pb").read_bytes()

    export_response(post(api, body, HTTP_AUTHORIZATION=f"Bearer {key}"))
    rpc_error(post(api, body, HTTP_AUTHORIZATION="Basic abc"), 401)

    # No X-Workspace-Id: the key's own workspace.
    assert Trace.objects.get().workspace_id == "acme"


def test_a_master_key_writes_to_the_named_workspace_creating_it(api, master):
    body = (CONFORMANCE / "openinference-openai" / "export-1.pb").read_bytes()

    export_response(post(api, body, key=master[1], HTTP_X_WORKSPACE_ID="fresh-ws"))
    export_response(post(api, body, key=master[1]))  # no header: "default"

    assert sorted(Trace.objects.values_list("workspace_id", flat=True)) == ["default", "fresh-ws"]


def test_workspace_isolation_same_trace_id_two_traces(api, make_key):
    key_a = make_key("ingest", workspace="ws-a")[1]
    key_b = make_key("ingest", workspace="ws-b")[1]
    for key in (key_a, key_b):
        replay(api, key, "openinference-openai")

    traces = Trace.objects.filter(trace_id=OI_TRACE)
    assert sorted(t.workspace_id for t in traces) == ["ws-a", "ws-b"]
    assert all(t.span_count == 3 for t in traces)
    assert sorted(LogRecord.objects.values_list("workspace_id", flat=True)) == [
        "ws-a",
        "ws-a",
        "ws-b",
        "ws-b",
    ]
    reader_c = make_key("read", workspace="ws-c")[1]
    assert api.get(f"/v1/traces/{OI_TRACE}", key=reader_c, workspace="ws-c").status_code == 404


def test_malformed_bodies_are_400s(api, ingest_key):
    status = rpc_error(post(api, b"\x0a\xff\xff\xff\xff\x0f garbage", key=ingest_key), 400)
    assert status.code == 3  # INVALID_ARGUMENT
    assert "protobuf" in status.message
    envelope(post(api, b'{"resourceSpans": ', content_type=JS, key=ingest_key), 400, "BAD_REQUEST")
    truncated = gzip.compress((CONFORMANCE / "openinference-openai" / "export-1.pb").read_bytes())[:-20]
    assert (
        "gzip" in rpc_error(post(api, truncated, key=ingest_key, HTTP_CONTENT_ENCODING="gzip"), 400).message
    )
    assert not Span.objects.exists()


def test_unsupported_content_type_or_encoding_is_a_415(api, ingest_key):
    body = envelope(
        post(api, b"spans", content_type="text/plain", key=ingest_key), 415, "UNSUPPORTED_MEDIA_TYPE"
    )
    assert "application/x-protobuf" in body["error"]
    rpc_error(post(api, b"x", key=ingest_key, HTTP_CONTENT_ENCODING="br"), 415)


def test_other_methods_are_a_405(api, ingest_key):
    response = api.get(OTLP, key=ingest_key)
    envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert response["Allow"] == "POST"


def test_an_inflated_body_over_the_limit_is_a_413(api, ingest_key, settings):
    settings.MAX_BODY_BYTES = 2048
    bomb = gzip.compress(b"\x00" * 100_000)
    assert len(bomb) < 2048

    rpc_error(post(api, bomb, key=ingest_key, HTTP_CONTENT_ENCODING="gzip"), 413)
    # A compressed body over the limit is refused by the middleware before anything reads it.
    envelope(post(api, b"\x00" * 4096, content_type=JS, key=ingest_key), 413, "PAYLOAD_TOO_LARGE")


def test_rate_limit_is_a_429_with_retry_after(api, ingest_key, settings):
    settings.RATE_LIMIT_MAX_REQUESTS = 2
    body = pb_request([])
    for _ in range(2):
        ok = post(api, body, key=ingest_key)
        export_response(ok)
        assert "RateLimit-Remaining" in ok

    refused = post(api, body, key=ingest_key)

    assert rpc_error(refused, 429).code == 8  # RESOURCE_EXHAUSTED
    assert int(refused["Retry-After"]) >= 1


# --- a real server ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if os.environ.get("DATABASE_URL"):
        service_required("postgres", os.environ["DATABASE_URL"])
    factory = ServerFactory(tmp_path_factory.mktemp("otlp"))
    try:
        yield factory.start(env={"CACHE_KEY_PREFIX": f"pm-test-{uuid.uuid4().hex}"}, workers=2)
    finally:
        factory.close()


def _chunked_post(
    server: LiveServer, path: str, chunks: Iterable[bytes], headers: dict[str, str]
) -> Response:
    """POST with ``Transfer-Encoding: chunked`` and no Content-Length, as the Node exporter does."""
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request("POST", path, body=iter(chunks), headers=headers, encode_chunked=True)
        resp = conn.getresponse()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def _new_key(server: LiveServer, scopes: str, workspace: str = "default") -> str:
    created = server.request(
        "POST",
        "/v1/api-keys",
        key=server.admin_key,
        workspace=workspace,
        body={"name": f"otlp-{uuid.uuid4().hex[:8]}", "scopes": scopes},
    )
    assert created.status == 201, created.body
    return created.json()["key"]


@pytest.mark.live
def test_live_chunked_otlp_json_as_the_node_exporter_sends_it(server):
    captured = json.loads((CONFORMANCE / "otel-js-json" / "request-headers.json").read_text())
    headers = {
        "Content-Type": captured["Content-Type"],
        "User-Agent": captured["User-Agent"],
        "Transfer-Encoding": "chunked",
        "X-API-Key": server.admin_key,
        "X-Workspace-Id": "node-ws",
    }
    for path in files("otel-js-json"):
        data = path.read_bytes()
        response = _chunked_post(server, OTLP, [data[i : i + 100] for i in range(0, len(data), 100)], headers)
        assert response.status == 200, response.body
        assert response.json() == {}

    trace = server.request("GET", f"/v1/traces/{JS_TRACE}", key=server.admin_key, workspace="node-ws").json()

    assert (trace["name"], trace["session_id"], trace["user_id"]) == ("agent-loop", "sess-9", "user-7")
    assert (trace["prompt_name"], trace["version_tag"], trace["status"]) == ("welcome", "1.4.2", "error")
    assert (trace["span_count"], trace["tokens_in"], trace["tokens_out"]) == (3, 2048, 512)
    spans = {s["span_id"]: s for s in trace["spans"]}
    assert spans["eba8e02d6d7e3268"]["parent_id"] is None
    chat = spans["f1bd7005b57734d3"]
    assert chat["parent_id"] == "eba8e02d6d7e3268"
    assert (chat["kind"], chat["model"], chat["provider"]) == (
        "llm",
        "claude-sonnet-4-5-20250929",
        "anthropic",
    )
    assert (chat["cached_tokens"], chat["status"], chat["status_message"]) == (
        1024,
        "error",
        "overloaded, retried",
    )
    assert chat["events"][0]["name"] == "retry"
    if HAS_PRICING:
        assert chat["cost_usd"] is not None and chat["cost_usd"] > 0
    assert spans["4d448c136563093a"]["kind"] == "tool"


@pytest.mark.live
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_live_the_real_sdk_exporter(server, compressed):
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode

    workspace = f"sdk-{uuid.uuid4().hex[:8]}"
    server.request("GET", "/v1/api-keys/me", key=server.admin_key, workspace=workspace)  # creates it
    key = _new_key(server, "ingest", workspace)
    headers = {"Authorization": f"Bearer {key}"} if compressed else {"X-API-Key": key}
    exporter = OTLPSpanExporter(
        endpoint=f"{server.url}{OTLP}",
        headers=headers,
        compression=Compression.Gzip if compressed else Compression.NoCompression,
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "sdk-test", "user.id": "u-1"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.otlp")
    try:
        with tracer.start_as_current_span("agent", attributes={"session.id": "sdk-session"}) as root:
            with tracer.start_as_current_span(
                "chat gpt-4o-mini",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 1000,
                    "gen_ai.usage.output_tokens": 200,
                    "gen_ai.usage.cache_read.input_tokens": 400,
                },
            ) as chat:
                chat.add_event("gen_ai.choice", {"index": 0})
            with tracer.start_as_current_span(
                "execute_tool search", attributes={"gen_ai.operation.name": "execute_tool"}
            ) as tool:
                tool.set_status(Status(StatusCode.ERROR, "tool failed"))
        assert provider.force_flush(30_000)
    finally:
        provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")

    response = server.request("GET", f"/v1/traces/{trace_id}", key=server.admin_key, workspace=workspace)

    assert response.status == 200, response.body
    trace = response.json()
    assert (trace["name"], trace["source"], trace["span_count"]) == ("agent", "otlp", 3)
    assert (trace["session_id"], trace["user_id"]) == ("sdk-session", "u-1")
    spans = {s["name"]: s for s in trace["spans"]}
    root_id = format(root.get_span_context().span_id, "016x")
    assert spans["agent"]["span_id"] == root_id
    assert spans["chat gpt-4o-mini"]["parent_id"] == root_id
    assert spans["execute_tool search"]["parent_id"] == root_id
    chat_row = spans["chat gpt-4o-mini"]
    assert (chat_row["kind"], chat_row["model"], chat_row["provider"]) == ("llm", "gpt-4o-mini", "openai")
    assert (chat_row["tokens_in"], chat_row["tokens_out"], chat_row["cached_tokens"]) == (1000, 200, 400)
    assert chat_row["events"][0]["name"] == "gen_ai.choice"
    assert chat_row["metadata"]["service.name"] == "sdk-test"
    assert (spans["execute_tool search"]["kind"], spans["execute_tool search"]["status"]) == ("tool", "error")
    if HAS_PRICING:
        assert chat_row["cost_usd"] is not None and chat_row["cost_usd"] > 0
    logs = server.request("GET", "/v1/logs?limit=10", key=server.admin_key, workspace=workspace).json()
    assert [(log["model"], log["span_id"]) for log in logs["items"]] == [
        ("gpt-4o-mini", format(chat.get_span_context().span_id, "016x"))
    ]
