"""From an OTLP span to a ``SpanInput``: kind, model, provider, tokens, cost and links, read from the
attributes of the three conventions LLM instrumentations use.

* OpenTelemetry GenAI semantic conventions (``gen_ai.*``), current and deprecated names;
* OpenInference (Arize Phoenix's instrumentations: ``openinference.span.kind``, ``llm.*``);
* OpenLLMetry (Traceloop's instrumentations: ``traceloop.*``, ``llm.usage.*``, ``llm.request.type``,
  plus the ``gen_ai.*`` attributes it sets as well).

Each field is a list of attribute keys in order of preference: the first one present with a usable
value wins (a response model before a request model, current names before deprecated ones). The
tables below are the single source of the mapping; docs/otlp.md shows them to users. All attributes
are kept in the span's metadata as sent, whatever was mapped from them.
"""

from __future__ import annotations

import math
from typing import Any

from telemetry.otlp.decode import OtlpSpan
from telemetry.services import SpanInput

# Column widths of the Span / LogRecord / Trace fields these values land in.
_NAME_MAX = 256
_KIND_MAX = 32
_MODEL_MAX = 128
_PROVIDER_MAX = 64
_PROMPT_NAME_MAX = 128
_VERSION_MAX = 64
_SESSION_MAX = 256
_USER_MAX = 256
_COUNT_MAX = 2**63 - 1

MODEL_KEYS = (
    "gen_ai.response.model",  # the model that answered (e.g. a dated snapshot) ...
    "llm.response.model_name",  # OpenInference
    "llm.response.model",  # OpenLLMetry, before gen_ai.*
    "gen_ai.request.model",  # ... before the one asked for
    "llm.request.model_name",  # OpenInference
    "llm.request.model",  # OpenLLMetry, before gen_ai.*
    "llm.model_name",  # OpenInference
    "embedding.model_name",  # OpenInference embedding spans
    "reranker.model_name",  # OpenInference reranker spans
)
PROVIDER_KEYS = (
    "gen_ai.provider.name",
    "gen_ai.system",  # deprecated for gen_ai.provider.name; OpenLLMetry still sets it
    "llm.system",  # OpenInference: the AI product (openai, anthropic)
    "llm.provider",  # OpenInference: the hosting provider (openai, azure, aws)
)
INPUT_TOKEN_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",  # deprecated
    "llm.token_count.prompt",  # OpenInference
    "llm.usage.prompt_tokens",  # OpenLLMetry (older)
)
OUTPUT_TOKEN_KEYS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",  # deprecated
    "llm.token_count.completion",  # OpenInference
    "llm.usage.completion_tokens",  # OpenLLMetry (older)
)
TOTAL_TOKEN_KEYS = (
    "gen_ai.usage.total_tokens",  # OpenLLMetry
    "llm.token_count.total",  # OpenInference
    "llm.usage.total_tokens",  # OpenLLMetry (older)
)
CACHED_TOKEN_KEYS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",  # OpenLLMetry (older), deprecated spelling
    "gen_ai.usage.input_tokens.cached",
    "llm.token_count.prompt_details.cache_read",  # OpenInference
    "llm.usage.cache_read_input_tokens",
)
REASONING_TOKEN_KEYS = (
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens",  # OpenLLMetry
    "gen_ai.usage.output_tokens.reasoning",
    "llm.token_count.completion_details.reasoning",  # OpenInference
    "llm.usage.reasoning_tokens",
)
COST_KEYS = (
    "promptmetrics.cost_usd",  # our own: a cost the application computed
    "llm.cost.total",  # OpenInference
    "gen_ai.usage.cost",
)
PROMPT_NAME_KEYS = ("promptmetrics.prompt.name", "gen_ai.prompt.name")
PROMPT_VERSION_KEYS = ("promptmetrics.prompt.version",)
SESSION_KEYS = (
    "session.id",  # OpenInference and general use
    "gen_ai.conversation.id",
    "traceloop.association.properties.session_id",  # OpenLLMetry association properties
    "langfuse.session.id",
)
USER_KEYS = (
    "user.id",
    "enduser.id",
    "traceloop.association.properties.user_id",
    "langfuse.user.id",
)

LLM = "llm"
# Where the kind comes from, in order: (attribute, {lower-cased value: kind}).
KIND_SOURCES: tuple[tuple[str, dict[str, str]], ...] = (
    (
        "openinference.span.kind",
        {
            "llm": LLM,
            "embedding": "embedding",
            "chain": "chain",
            "retriever": "retriever",
            "reranker": "reranker",
            "tool": "tool",
            "agent": "agent",
            "guardrail": "guardrail",
            "evaluator": "evaluator",
            "prompt": "prompt",
        },
    ),
    (
        "gen_ai.operation.name",
        {
            "chat": LLM,
            "text_completion": LLM,
            "generate_content": LLM,
            "completion": LLM,
            "embeddings": "embedding",
            "retrieval": "retriever",
            "execute_tool": "tool",
            "create_agent": "agent",
            "invoke_agent": "agent",
            "invoke_workflow": "chain",
        },
    ),
    (
        "traceloop.span.kind",
        {"workflow": "chain", "task": "chain", "agent": "agent", "tool": "tool"},
    ),
    (
        "llm.request.type",  # OpenLLMetry
        {"chat": LLM, "completion": LLM, "embedding": "embedding", "rerank": "reranker"},
    ),
)
# Without any of those: the OTLP SpanKind (UNSPECIFIED counts as INTERNAL, as the spec says).
OTLP_KINDS = {0: "internal", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
STATUSES = {1: "ok", 2: "error"}  # anything else (0, unknown codes) is "unset"


# Every key of the tables above -> (field, rank): one pass over a span's attributes finds them all.
_FIELD_KEYS: dict[str, tuple[str, ...]] = {
    "model": MODEL_KEYS,
    "provider": PROVIDER_KEYS,
    "tokens_in": INPUT_TOKEN_KEYS,
    "tokens_out": OUTPUT_TOKEN_KEYS,
    "tokens_total": TOTAL_TOKEN_KEYS,
    "cached_tokens": CACHED_TOKEN_KEYS,
    "reasoning_tokens": REASONING_TOKEN_KEYS,
    "cost_usd": COST_KEYS,
    "prompt_name": PROMPT_NAME_KEYS,
    "version_tag": PROMPT_VERSION_KEYS,
    "session_id": SESSION_KEYS,
    "user_id": USER_KEYS,
}
_KEY_INDEX = {key: (field, rank) for field, keys in _FIELD_KEYS.items() for rank, key in enumerate(keys)}
_ALL_KEYS = frozenset(_KEY_INDEX)
_LINK_KEYS = frozenset(PROMPT_NAME_KEYS + PROMPT_VERSION_KEYS + SESSION_KEYS + USER_KEYS)
_Found = dict[str, list[tuple[int, Any]]]


def to_span_input(span: OtlpSpan) -> SpanInput:
    """The SpanInput of a decoded, valid span (``span.error`` empty)."""
    attrs = span.attributes
    found = _find(attrs, _ALL_KEYS)
    model = _pick_text(found, "model", _MODEL_MAX)
    provider = _pick_text(found, "provider", _PROVIDER_MAX).lower()
    tokens_in = _pick(found, "tokens_in", _count)
    tokens_out = _pick(found, "tokens_out", _count)
    total = _pick(found, "tokens_total", _count)
    if total is not None:
        if tokens_in is None and tokens_out is not None and total >= tokens_out:
            tokens_in = total - tokens_out
        elif tokens_out is None and tokens_in is not None and total >= tokens_in:
            tokens_out = total - tokens_in
    kind = span_kind(
        span, model=model, provider=provider, has_usage=tokens_in is not None or tokens_out is not None
    )
    if tokens_in is None and tokens_out is None and kind == "embedding":
        tokens_in = total  # embeddings count input tokens only
    # Links may also be set once for the whole process, as resource attributes.
    resource = span.resource
    from_resource = _find(resource, _LINK_KEYS) if resource else {}
    metadata = attrs
    if span.scope_name:
        metadata.setdefault("otel.scope.name", span.scope_name)
        if span.scope_version:
            metadata.setdefault("otel.scope.version", span.scope_version)
    metadata.setdefault("otel.span.kind", OTLP_KINDS.get(span.kind, "internal"))
    service = resource.get("service.name")
    if service is not None:
        metadata.setdefault("service.name", service)
    name = span.name[:_NAME_MAX]
    return SpanInput(
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_id=span.parent_id,
        name=name,
        kind=kind[:_KIND_MAX],
        status=STATUSES.get(span.status_code, "unset"),
        status_message=span.status_message,
        start_time=span.start_time,
        end_time=span.end_time,
        metadata=metadata,
        events=span.events,
        model=model,
        provider=provider,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cached_tokens=_pick(found, "cached_tokens", _count),
        reasoning_tokens=_pick(found, "reasoning_tokens", _count),
        cost_usd=_pick(found, "cost_usd", _amount),
        prompt_name=_link(found, from_resource, "prompt_name", _PROMPT_NAME_MAX),
        version_tag=_link(found, from_resource, "version_tag", _VERSION_MAX),
        session_id=_link(found, from_resource, "session_id", _SESSION_MAX),
        user_id=_link(found, from_resource, "user_id", _USER_MAX),
        is_llm=kind == LLM and bool(model),
        trace_name="" if span.parent_id else name,
    )


def span_kind(span: OtlpSpan, *, model: str, provider: str, has_usage: bool) -> str:
    attrs = span.attributes
    for key, kinds in KIND_SOURCES:
        value = attrs.get(key)
        if isinstance(value, str):
            kind = kinds.get(value.lower())
            if kind is not None:
                return kind
    # Instrumentations that predate gen_ai.operation.name (semconv before 1.27) still say which
    # GenAI system answered with which model and how many tokens it took: that is an LLM call.
    if model and provider and has_usage:
        return LLM
    return OTLP_KINDS.get(span.kind, "internal")


def _find(attrs: dict[str, Any], keys: frozenset[str]) -> _Found:
    """The mapped attributes present, by field: ``{field: [(rank, value), ...]}``."""
    found: _Found = {}
    for key in keys.intersection(attrs):
        field, rank = _KEY_INDEX[key]
        found.setdefault(field, []).append((rank, attrs[key]))
    return found


def _pick(found: _Found, field: str, convert: Any) -> Any:
    """The first value of ``field``, in the table's order, that ``convert`` accepts (not None)."""
    candidates = found.get(field)
    if not candidates:
        return None
    if len(candidates) > 1:
        candidates.sort(key=_rank)
    for _, value in candidates:
        converted = convert(value)
        if converted is not None:
            return converted
    return None


def _rank(candidate: tuple[int, Any]) -> int:
    return candidate[0]


def _pick_text(found: _Found, field: str, max_length: int) -> str:
    text = _pick(found, field, _text)
    return text[:max_length] if text else ""


def _link(found: _Found, from_resource: _Found, field: str, max_length: int) -> str:
    return _pick_text(found, field, max_length) or _pick_text(from_resource, field, max_length)


def _text(value: Any) -> str | None:
    """An identifier-like value: a non-empty string, or a number written as one."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _count(value: Any) -> int | None:
    """A token count: a non-negative integer (also written as an integral float or a string)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            return None
        number = int(value)
    elif isinstance(value, str) and 0 < len(value) <= 20:
        try:
            number = int(value)
        except ValueError:
            return None
    else:
        return None
    return number if 0 <= number <= _COUNT_MAX else None


def _amount(value: Any) -> float | None:
    """A cost in USD: a finite non-negative number (or one written as a string)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
        return float(value)
    return None
