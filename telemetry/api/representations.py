"""Wire forms of telemetry rows: plain functions, since lists of thousands of rows and the ingest
answers are the hot paths (a DRF serializer costs several times more per row)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from telemetry.models import Run, Trace
from telemetry.validation import as_millis


def _seconds(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


# What log_json reads besides the primary key: a list page loads only these, as plain rows.
LOG_FIELDS = (
    "prompt_name",
    "version_tag",
    "metadata",
    "provider",
    "model",
    "tokens_in",
    "tokens_out",
    "cached_tokens",
    "reasoning_tokens",
    "latency_ms",
    "cost_usd",
    "cost_source",
    "ollama_options",
    "ollama_keep_alive",
    "ollama_format",
    "workspace_id",
    "created_at",
    "status",
    "error_code",
    "trace_id",
    "span_id",
    "run_id",
    "session_id",
    "user_id",
)


def log_json(log: Any) -> dict[str, Any]:
    return {
        "id": log.pk,
        "prompt_name": log.prompt_name,
        "version_tag": log.version_tag,
        "metadata": log.metadata or {},
        "provider": log.provider or None,
        "model": log.model or None,
        "tokens_in": log.tokens_in,
        "tokens_out": log.tokens_out,
        "cached_tokens": log.cached_tokens,
        "reasoning_tokens": log.reasoning_tokens,
        "latency_ms": log.latency_ms,
        "cost_usd": log.cost_usd,
        "cost_source": log.cost_source or None,
        "ollama_options": log.ollama_options,
        "ollama_keep_alive": log.ollama_keep_alive or None,
        "ollama_format": log.ollama_format,
        "workspace_id": log.workspace_id,
        "created_at": _seconds(log.created_at),
        "status": log.status,
        "error_code": log.error_code or None,
        "trace_id": log.trace_id or None,
        "span_id": log.span_id or None,
        "run_id": log.run_id or None,
        "session_id": log.session_id or None,
        "user_id": log.user_id or None,
    }


def _totals(trace: Trace) -> dict[str, Any]:
    return {
        "span_count": trace.span_count,
        "error_count": trace.error_count,
        "duration_ms": trace.duration_ms,
        "tokens_in": trace.tokens_in,
        "tokens_out": trace.tokens_out,
        "cost_usd": trace.cost_usd,
    }


def trace_summary_json(trace: Trace) -> dict[str, Any]:
    return {
        "trace_id": trace.trace_id,
        "name": trace.name or None,
        "prompt_name": trace.prompt_name or None,
        "version_tag": trace.version_tag or None,
        "session_id": trace.session_id or None,
        "user_id": trace.user_id or None,
        "metadata": trace.metadata or {},
        "status": trace.status,
        "source": trace.source,
        "start_time": as_millis(trace.start_time),
        "end_time": as_millis(trace.end_time),
        "created_at": _seconds(trace.created_at),
        **_totals(trace),
    }


def trace_json(trace: Trace, spans: Iterable[Any]) -> dict[str, Any]:
    """Upstream's trace with its spans, plus the rolled-up totals (flat and under ``totals``)."""
    body = trace_summary_json(trace)
    body["totals"] = _totals(trace)
    body["spans"] = [span_json(span, trace.trace_id) for span in spans]
    return body


# What span_json reads: a trace page loads only these, as plain rows.
SPAN_FIELDS = (
    "span_id",
    "parent_id",
    "name",
    "kind",
    "status",
    "status_message",
    "start_time",
    "end_time",
    "metadata",
    "events",
    "model",
    "provider",
    "tokens_in",
    "tokens_out",
    "cached_tokens",
    "reasoning_tokens",
    "cost_usd",
    "created_at",
)


def span_json(span: Any, trace_id: str | None = None) -> dict[str, Any]:
    """A span (model instance, or a row of SPAN_FIELDS with ``trace_id`` given) on the wire."""
    duration = None
    if span.start_time is not None and span.end_time is not None:
        duration = (span.end_time - span.start_time).total_seconds() * 1000
    return {
        "trace_id": trace_id or span.trace.trace_id,
        "span_id": span.span_id,
        "parent_id": span.parent_id or None,
        "name": span.name,
        "kind": span.kind or None,
        "status": span.status,
        "status_message": span.status_message or None,
        "start_time": as_millis(span.start_time),
        "end_time": as_millis(span.end_time),
        "duration_ms": duration,
        "metadata": span.metadata or {},
        "events": span.events or [],
        "model": span.model or None,
        "provider": span.provider or None,
        "tokens_in": span.tokens_in,
        "tokens_out": span.tokens_out,
        "cached_tokens": span.cached_tokens,
        "reasoning_tokens": span.reasoning_tokens,
        "cost_usd": span.cost_usd,
        "created_at": _seconds(span.created_at),
    }


def run_json(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "workflow_name": run.workflow_name,
        "status": run.status,
        "input": run.input,
        "output": run.output,
        "trace_id": run.trace.trace_id if run.trace_id is not None else None,
        "metadata": run.metadata or {},
        "created_at": _seconds(run.created_at),
        "updated_at": _seconds(run.updated_at),
    }
