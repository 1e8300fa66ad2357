"""Writes of telemetry: logs, traces, spans (REST and OTLP), runs.

Ingest validates a whole request in one pass, then writes it with one multi-row INSERT per table in
one transaction, together with the hourly rollups, the trace totals and one audit entry: when the
response says "accepted" the data is queryable, and nothing of a refused request is stored. No
budget is ever consulted: telemetry is never refused for money (upstream's monthly gate was).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, FloatField, Max, Min, Q, Sum
from django.db.models.functions import Cast
from django.utils import timezone

from config import bulk
from config.api import not_found, validation_failed
from config.errors import Conflict
from telemetry import pricing, rollups
from telemetry import validation as v
from telemetry.models import (
    CostSource,
    LogRecord,
    LogStatus,
    Run,
    RunStatus,
    Span,
    SpanStatus,
    Trace,
    TraceSource,
)
from tenancy.context import Actor
from tenancy.services import audit_record

SPAN_STATUSES = tuple(SpanStatus.values)
BIGINT_MAX = 2**63 - 1
RUN_STATUSES = tuple(RunStatus.values)


def _cost(workspace_id: str, record: LogRecord | Span | SimpleNamespace, at: datetime) -> float | None:
    if not record.model or (record.tokens_in is None and record.tokens_out is None):
        return None
    return pricing.compute_cost(
        workspace_id=workspace_id,
        model=record.model,
        provider=record.provider,
        tokens_in=record.tokens_in,
        tokens_out=record.tokens_out,
        cached_tokens=record.cached_tokens,
        reasoning_tokens=record.reasoning_tokens,
        at=at,
    )


def _price(workspace_id: str, record: LogRecord | SimpleNamespace, supplied: float | None) -> None:
    """A supplied cost always wins; otherwise the price book's, when it knows the model."""
    if supplied is not None:
        record.cost_usd, record.cost_source = supplied, CostSource.SUPPLIED
        return
    record.cost_usd = _cost(workspace_id, record, record.created_at)
    record.cost_source = CostSource.COMPUTED if record.cost_usd is not None else CostSource.UNKNOWN


# --- logs -----------------------------------------------------------------------------------------


def _log_from_body(
    workspace_id: str, body: dict[str, Any], now: datetime
) -> tuple[SimpleNamespace, list[str]]:
    """One log's row as a plain namespace (every LogRecord field by attname, then ``pk`` once
    inserted): a model instance costs more to build, with its init signals, than to insert."""
    errors = v.Errors()
    meta = v.metadata(body, errors)
    record = SimpleNamespace(
        workspace_id=workspace_id,
        prompt_name=v.text(body, "prompt_name", errors, max_length=128, required=True),
        version_tag=v.text(body, "version_tag", errors, max_length=64, required=True),
        provider=v.text(body, "provider", errors, max_length=64),
        model=v.text(body, "model", errors, max_length=128),
        tokens_in=v.count(body, "tokens_in", errors),
        tokens_out=v.count(body, "tokens_out", errors),
        cached_tokens=v.count(body, "cached_tokens", errors),
        reasoning_tokens=v.count(body, "reasoning_tokens", errors),
        latency_ms=v.count(body, "latency_ms", errors),
        metadata=meta,
        ollama_options=v.obj(body, "ollama_options", errors),
        ollama_keep_alive=v.text(body, "ollama_keep_alive", errors, max_length=16),
        trace_id=v.optional_id(body, "trace_id", errors),
        span_id=v.optional_id(body, "span_id", errors),
        run_id=v.optional_id(body, "run_id", errors),
        session_id=v.text(body, "session_id", errors, max_length=256),
        user_id=v.text(body, "user_id", errors, max_length=256),
        created_at=now,
    )
    ollama_format = body.get("ollama_format")
    if ollama_format is not None and not isinstance(ollama_format, str | dict):
        errors.append('"ollama_format" must be a string or an object')
    record.ollama_format = ollama_format
    http_status = v.count(body, "http_status", errors)
    record.status = _log_status(body, meta, http_status, errors)
    record.error_code = _error_code(body, meta, http_status, errors)
    supplied = v.amount(body, "cost_usd", errors)
    if not errors:
        _price(workspace_id, record, supplied)
    return record, errors


def _log_status(body: dict[str, Any], meta: dict[str, Any], http_status: int | None, errors: v.Errors) -> str:
    if body.get("status") is not None:
        return v.choice(body, "status", errors, tuple(LogStatus.values), LogStatus.OK)
    if meta.get("error") or (http_status is not None and http_status >= 500):
        return LogStatus.ERROR
    return LogStatus.OK


def _error_code(body: dict[str, Any], meta: dict[str, Any], http_status: int | None, errors: v.Errors) -> str:
    code = body.get("error_code")
    if isinstance(code, int | float) and not isinstance(code, bool):
        return str(code)[:64]  # SDKs send HTTP-ish codes as numbers; upstream stored whatever came
    if code is not None:
        return v.text(body, "error_code", errors, max_length=64)
    error = meta.get("error")
    if isinstance(error, dict) and error.get("code") is not None:
        return str(error["code"])[:64]
    return str(http_status) if http_status is not None and http_status >= 500 else ""


def logs_ingest(*, workspace_id: str, body: Any, actor: Actor) -> tuple[list[SimpleNamespace], bool]:
    """Validate and store one log or a batch (a JSON array of up to 1,000); all or nothing."""
    errors = v.Errors()
    items, batch = v.items_of(body, errors)
    if errors:
        raise validation_failed(errors)
    now = timezone.now()
    records, messages = [], []
    for index, item in enumerate(items):
        record, item_errors = _log_from_body(workspace_id, item, now)
        records.append(record)
        messages += v.prefixed(index if batch else None, item_errors)
    if messages:
        raise validation_failed(messages)
    insert = bulk.prepare_insert(LogRecord, records)  # before the write lock is taken
    with transaction.atomic():
        for record, pk in zip(records, insert.execute_returning_ids(), strict=True):
            record.pk = pk
        rollups.rollup_logs(records)
    return records, batch


# --- traces -----------------------------------------------------------------------------------------


def trace_create(*, workspace_id: str, body: Any, actor: Actor) -> Trace:
    if not isinstance(body, dict):
        raise validation_failed(['"value" must be of type object'])
    errors = v.Errors()
    trace = Trace(
        workspace_id=workspace_id,
        trace_id=v.client_id(body, "trace_id", errors),
        name=v.text(body, "name", errors, max_length=256),
        prompt_name=v.text(body, "prompt_name", errors, max_length=128),
        version_tag=v.text(body, "version_tag", errors, max_length=64),
        session_id=v.text(body, "session_id", errors, max_length=256),
        user_id=v.text(body, "user_id", errors, max_length=256),
        metadata=v.metadata(body, errors),
        source=TraceSource.API,
    )
    if errors:
        raise validation_failed(errors)
    try:
        with transaction.atomic():
            trace.save(force_insert=True)
            audit_record(
                actor=actor, workspace_id=workspace_id, action="trace:create", target_id=trace.trace_id
            )
    except IntegrityError as exc:
        raise Conflict("Trace already exists", {"trace_id": trace.trace_id}) from exc
    return trace


def trace_delete(*, trace: Trace, actor: Actor) -> None:
    with transaction.atomic():
        trace.delete()
        audit_record(
            actor=actor, workspace_id=trace.workspace_id, action="delete_trace", target_id=trace.trace_id
        )


# --- spans ------------------------------------------------------------------------------------------


@dataclass
class SpanInput:
    """One span as the REST API or the OTLP receiver hands it over."""

    trace_id: str
    span_id: str
    parent_id: str = ""
    name: str = ""
    kind: str = ""
    status: str = SpanStatus.UNSET
    status_message: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    events: list[Any] = field(default_factory=list)
    model: str = ""
    provider: str = ""
    tokens_in: int | None = None
    tokens_out: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None
    prompt_name: str = ""
    version_tag: str = ""
    session_id: str = ""
    user_id: str = ""
    is_llm: bool = False
    trace_name: str = ""


@dataclass
class IngestResult:
    accepted: int
    rejected: list[tuple[str, str]] = field(default_factory=list)
    spans: list[SpanInput] = field(default_factory=list)  # the accepted ones


def span_inputs_from_body(trace_id: str, body: Any) -> tuple[list[SpanInput], bool]:
    """REST span bodies (one object or an array) as SpanInputs; 422 on any invalid item."""
    errors = v.Errors()
    items, batch = v.items_of(body, errors)
    if errors:
        raise validation_failed(errors)
    spans, messages = [], []
    for index, item in enumerate(items):
        item_errors = v.Errors()
        span = SpanInput(
            trace_id=trace_id,
            span_id=v.client_id(item, "span_id", item_errors),
            parent_id=v.optional_id(item, "parent_id", item_errors),
            name=v.text(item, "name", item_errors, max_length=256, required=True),
            kind=v.text(item, "kind", item_errors, max_length=32),
            status=v.choice(item, "status", item_errors, SPAN_STATUSES, SpanStatus.UNSET),
            start_time=v.millis(item, "start_time", item_errors),
            end_time=v.millis(item, "end_time", item_errors),
            metadata=v.metadata(item, item_errors),
            model=v.text(item, "model", item_errors, max_length=128),
            provider=v.text(item, "provider", item_errors, max_length=64),
            tokens_in=v.count(item, "tokens_in", item_errors),
            tokens_out=v.count(item, "tokens_out", item_errors),
            cost_usd=v.amount(item, "cost_usd", item_errors),
        )
        messages += v.prefixed(index if batch else None, item_errors)
        spans.append(span)
    if messages:
        raise validation_failed(messages)
    ids = [s.span_id for s in spans]
    if len(set(ids)) != len(ids):
        raise Conflict("Duplicate span_id in the batch", {"trace_id": trace_id})
    return spans, batch


def spans_ingest(
    *, workspace_id: str, spans: list[SpanInput], source: str, actor: Actor, duplicates: str = "reject"
) -> IngestResult:
    """Store spans of any traces (created on first sight), their LLM calls as logs, and the traces'
    totals, in one transaction. A span already stored is rejected (``duplicates="reject"``, the OTLP
    partial-success way) or fails the whole request with a 409 (``"raise"``, the REST way)."""
    result = IngestResult(accepted=0)
    if not spans:
        return result
    now = timezone.now()
    by_trace: dict[str, list[SpanInput]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    # Everything that needs no lock is done before the write transaction: on SQLite it holds the
    # database's single write lock, and prices, links and row values are most of the work. Links
    # come from an unlocked read of the traces; they are re-applied to the locked rows below.
    drafts = _trace_drafts(workspace_id, by_trace, source, now)
    rows, logs = [], []
    for span in spans:
        row = _span_row(workspace_id, drafts[span.trace_id], span, now)
        rows.append(row)
        logs.append(
            _log_for_span(workspace_id, span, row, drafts[span.trace_id], now) if span.is_llm else None
        )
    span_insert = bulk.prepare_insert(Span, rows)
    llm_logs = [log for log in logs if log is not None]
    log_insert = bulk.prepare_insert(LogRecord, llm_logs)
    with transaction.atomic():
        traces = _traces_for(workspace_id, sorted(by_trace), source, now)
        for trace_id, trace_spans in by_trace.items():
            before = _links_of(traces[trace_id])
            _link_trace(traces[trace_id], trace_spans)
            if _links_of(traces[trace_id]) != before:
                _relink_logs(traces[trace_id])
        # Traces born in this transaction (stamped with this request's ``now``) have no spans yet.
        older = [t for t in traces.values() if t.created_at != now]
        existing = _existing_span_ids(workspace_id, older, spans) if older else set()
        keep, seen = [], set()
        for span, row, values in zip(spans, rows, span_insert.rows, strict=True):
            key = (span.trace_id, span.span_id)
            duplicate = key in existing or key in seen
            if duplicate and duplicates == "raise":
                raise Conflict("Span already exists", {"trace_id": span.trace_id, "span_id": span.span_id})
            if duplicate:
                result.rejected.append((span.span_id, "duplicate span id"))
            seen.add(key)
            keep.append(not duplicate)
            row.trace = traces[span.trace_id]
            values[span_insert.column("trace_id")] = row.trace.pk
        span_insert.execute(keep)
        kept_logs = [log for log, kept in zip(logs, keep, strict=True) if log is not None and kept]
        log_insert.execute([kept for log, kept in zip(logs, keep, strict=True) if log is not None])
        if kept_logs:
            rollups.rollup_logs(kept_logs)
        kept_rows = [row for row, kept in zip(rows, keep, strict=True) if kept]
        _add_totals(traces, kept_rows)
    result.accepted = len(kept_rows)
    result.spans = [span for span, kept in zip(spans, keep, strict=True) if kept]
    return result


def _trace_drafts(
    workspace_id: str, by_trace: dict[str, list[SpanInput]], source: str, now: datetime
) -> dict[str, Trace]:
    """Unlocked copies of the spans' traces (or new ones), with this batch's links applied: what
    the logs of LLM spans inherit (prompt, session, user)."""
    known = {
        t.trace_id: t for t in Trace.objects.filter(workspace_id=workspace_id, trace_id__in=list(by_trace))
    }
    drafts = {}
    for trace_id, trace_spans in by_trace.items():
        draft = known.get(trace_id) or Trace(
            workspace_id=workspace_id, trace_id=trace_id, source=source, created_at=now
        )
        _link_trace(draft, trace_spans)
        drafts[trace_id] = draft
    return drafts


def _traces_for(workspace_id: str, ids: list[str], source: str, now: datetime) -> dict[str, Trace]:
    """These traces (ids sorted), locked for the totals update; missing ones created (OTLP sends
    children before their parents, so a trace is born with whichever span arrives first)."""
    # Locked in a stable order so that two requests touching the same traces cannot deadlock.
    found = {
        t.trace_id: t
        for t in Trace.objects.select_for_update()
        .filter(workspace_id=workspace_id, trace_id__in=ids)
        .order_by("trace_id")
    }
    missing = [
        Trace(workspace_id=workspace_id, trace_id=i, source=source, created_at=now)
        for i in ids
        if i not in found
    ]
    if missing:
        Trace.objects.bulk_create(missing, ignore_conflicts=True)
        # Re-read: a concurrent request may have created some of them first.
        found.update(
            (t.trace_id, t)
            for t in Trace.objects.select_for_update().filter(
                workspace_id=workspace_id, trace_id__in=[t.trace_id for t in missing]
            )
        )
    return found


def _existing_span_ids(
    workspace_id: str, traces: Iterable[Trace], spans: list[SpanInput]
) -> set[tuple[str, str]]:
    by_pk = {t.pk: t.trace_id for t in traces}
    wanted = [s.span_id for s in spans if s.trace_id in set(by_pk.values())]
    rows = Span.objects.filter(
        workspace_id=workspace_id, trace_id__in=list(by_pk), span_id__in=wanted
    ).values_list("trace_id", "span_id")
    return {(by_pk[trace_pk], span_id) for trace_pk, span_id in rows}


def _span_row(workspace_id: str, trace: Trace, span: SpanInput, now: datetime) -> SimpleNamespace:
    """A span's column values (``bulk.insert`` takes them without a model instance), and its trace."""
    row = SimpleNamespace(
        workspace_id=workspace_id,
        trace_id=trace.pk,
        trace=trace,
        span_id=span.span_id,
        parent_id=span.parent_id,
        name=span.name[:256],
        kind=span.kind[:32],
        status=span.status,
        status_message=span.status_message,
        start_time=span.start_time,
        end_time=span.end_time,
        metadata=span.metadata,
        events=span.events,
        model=span.model[:128],
        provider=span.provider[:64],
        tokens_in=span.tokens_in,
        tokens_out=span.tokens_out,
        cached_tokens=span.cached_tokens,
        reasoning_tokens=span.reasoning_tokens,
        cost_usd=span.cost_usd,
        cost_source=CostSource.SUPPLIED if span.cost_usd is not None else CostSource.UNKNOWN,
        created_at=now,
    )
    if row.cost_usd is None:
        row.cost_usd = _cost(workspace_id, row, span.start_time or now)
        if row.cost_usd is not None:
            row.cost_source = CostSource.COMPUTED
    return row


def _log_for_span(
    workspace_id: str, span: SpanInput, row: SimpleNamespace, trace: Trace, now: datetime
) -> SimpleNamespace:
    latency = None
    if span.start_time is not None and span.end_time is not None:
        latency = max(0, round((span.end_time - span.start_time).total_seconds() * 1000))
    return SimpleNamespace(
        workspace_id=workspace_id,
        prompt_name=(span.prompt_name or trace.prompt_name)[:128],
        version_tag=(span.version_tag or trace.version_tag)[:64],
        provider=row.provider,
        model=row.model,
        tokens_in=row.tokens_in,
        tokens_out=row.tokens_out,
        cached_tokens=row.cached_tokens,
        reasoning_tokens=row.reasoning_tokens,
        latency_ms=latency,
        cost_usd=row.cost_usd,
        cost_source=row.cost_source,
        metadata={"source": "otlp", "span_name": row.name},
        status=LogStatus.ERROR if row.status == SpanStatus.ERROR else LogStatus.OK,
        error_code=row.status_message[:64] if row.status == SpanStatus.ERROR else "",
        ollama_options=None,
        ollama_keep_alive="",
        ollama_format=None,
        trace_id=span.trace_id,
        span_id=span.span_id,
        run_id="",
        session_id=(span.session_id or trace.session_id)[:256],
        user_id=(span.user_id or trace.user_id)[:256],
        created_at=span.end_time or span.start_time or now,
    )


def _link_trace(trace: Trace, spans: Sequence[SpanInput]) -> None:
    """Fill the trace's name and its prompt/session/user links from its spans (first value wins)."""
    for span in spans:
        if not span.parent_id and span.trace_name and not trace.name:
            trace.name = span.trace_name[:256]
        if not span.parent_id and span.name and not trace.name:
            trace.name = span.name[:256]
        for attr in ("prompt_name", "version_tag", "session_id", "user_id"):
            if getattr(span, attr) and not getattr(trace, attr):
                setattr(trace, attr, getattr(span, attr))


_LINKS = ("prompt_name", "version_tag", "session_id", "user_id")


def _links_of(trace: Trace) -> tuple[str, ...]:
    return tuple(getattr(trace, name) for name in _LINKS)


def _relink_logs(trace: Trace) -> None:
    """Give the trace's new prompt/session/user links to its logs stored without them: exporters
    send the root span, which often carries the links, after its LLM children. A log that gains a
    prompt version moves between hourly rollups too (taken out of the old one, added to the new)."""
    logs = list(
        LogRecord.objects.filter(workspace_id=trace.workspace_id, trace_id=trace.trace_id).filter(
            Q(prompt_name="") | Q(version_tag="") | Q(session_id="") | Q(user_id="")
        )
    )
    moved = [
        log
        for log in logs
        if (not log.prompt_name and trace.prompt_name) or (not log.version_tag and trace.version_tag)
    ]
    if moved:
        rollups.unroll_logs(moved)
    for log in logs:
        for name in _LINKS:
            if not getattr(log, name) and getattr(trace, name):
                setattr(log, name, getattr(trace, name))
    if logs:
        LogRecord.objects.bulk_update(logs, list(_LINKS))
    if moved:
        rollups.rollup_logs(moved)


_STATUS_RANK = {SpanStatus.UNSET: 0, SpanStatus.OK: 1, SpanStatus.RUNNING: 2, SpanStatus.ERROR: 3}
_TOTAL_FIELDS = [
    "version",
    "name",
    "prompt_name",
    "version_tag",
    "session_id",
    "user_id",
    "span_count",
    "error_count",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "start_time",
    "end_time",
    "status",
]


def _add_totals(traces: dict[str, Trace], rows: list[SimpleNamespace]) -> None:
    """Add a batch's spans to their traces' totals (the rows are locked) and save every trace with
    one UPDATE: an aggregate query per trace made OTLP batches spanning many traces slow."""
    for trace in traces.values():
        trace.version += 1
    for row in rows:
        trace = row.trace
        trace.span_count += 1
        trace.error_count += row.status == SpanStatus.ERROR
        trace.tokens_in = min(trace.tokens_in + (row.tokens_in or 0), BIGINT_MAX)
        trace.tokens_out = min(trace.tokens_out + (row.tokens_out or 0), BIGINT_MAX)
        trace.cost_usd += row.cost_usd or 0.0
        if row.start_time is not None and (trace.start_time is None or row.start_time < trace.start_time):
            trace.start_time = row.start_time
        if row.end_time is not None and (trace.end_time is None or row.end_time > trace.end_time):
            trace.end_time = row.end_time
        if _STATUS_RANK[row.status] > _STATUS_RANK[trace.status]:
            trace.status = row.status
    bulk.update(Trace, list(traces.values()), _TOTAL_FIELDS)


def refresh_trace_totals(trace: Trace) -> None:
    """Recompute the rolled-up totals from the trace's spans (the trace row is locked)."""
    totals = Span.objects.filter(trace=trace).aggregate(
        spans=Count("id"),
        errors=Count("id", filter=Q(status=SpanStatus.ERROR)),
        running=Count("id", filter=Q(status=SpanStatus.RUNNING)),
        ok=Count("id", filter=Q(status=SpanStatus.OK)),
        # Summed as doubles (exact below 2**53), then clamped: SQLite's integer SUM raises on
        # overflow and PostgreSQL's numeric sum would not fit the bigint column (a 500 either way).
        tokens_in=Sum(Cast("tokens_in", FloatField())),
        tokens_out=Sum(Cast("tokens_out", FloatField())),
        cost=Sum("cost_usd"),
        start=Min("start_time"),
        end=Max("end_time"),
    )
    trace.span_count = totals["spans"]
    trace.error_count = totals["errors"]
    trace.tokens_in = min(int(totals["tokens_in"] or 0), BIGINT_MAX)
    trace.tokens_out = min(int(totals["tokens_out"] or 0), BIGINT_MAX)
    trace.cost_usd = totals["cost"] or 0.0
    trace.start_time, trace.end_time = totals["start"], totals["end"]
    if totals["errors"]:
        trace.status = SpanStatus.ERROR
    elif totals["running"]:
        trace.status = SpanStatus.RUNNING
    elif totals["ok"]:
        trace.status = SpanStatus.OK
    trace.version += 1
    trace.save(update_fields=_TOTAL_FIELDS)


def span_end(*, span: Span, body: Any, actor: Actor) -> Span:
    """End (or amend) a span: the seed SDK's ``span.end({tokens_in, tokens_out, status})``."""
    if not isinstance(body, dict):
        raise validation_failed(['"value" must be of type object'])
    errors = v.Errors()
    end_time = v.millis(body, "end_time", errors) or timezone.now()
    status = v.choice(
        body,
        "status",
        errors,
        SPAN_STATUSES,
        span.status if span.status != SpanStatus.RUNNING else SpanStatus.OK,
    )
    updates = {
        "tokens_in": v.count(body, "tokens_in", errors),
        "tokens_out": v.count(body, "tokens_out", errors),
        "cost_usd": v.amount(body, "cost_usd", errors),
        "model": v.text(body, "model", errors, max_length=128) or None,
        "provider": v.text(body, "provider", errors, max_length=64) or None,
    }
    extra = v.metadata(body, errors)
    if errors:
        raise validation_failed(errors)
    with transaction.atomic():
        trace = Trace.objects.select_for_update().get(pk=span.trace_id)
        span.end_time, span.status = end_time, status
        for name, value in updates.items():
            if value is not None:
                setattr(span, name, value)
        span.metadata = {**span.metadata, **extra}
        if updates["cost_usd"] is not None:
            span.cost_source = CostSource.SUPPLIED
        elif span.cost_source != CostSource.SUPPLIED and span.model:
            # A supplied cost is kept; one from the price book follows the new token counts.
            span.cost_usd = _cost(span.workspace_id, span, span.start_time or end_time)
            span.cost_source = CostSource.COMPUTED if span.cost_usd is not None else CostSource.UNKNOWN
        span.save()
        refresh_trace_totals(trace)
        audit_record(
            actor=actor, workspace_id=span.workspace_id, action="trace:span:update", target_id=span.span_id
        )
    return span


# --- runs -------------------------------------------------------------------------------------------


def _trace_for_run(workspace_id: str, trace_id: str) -> Trace | None:
    if not trace_id:
        return None
    trace = Trace.objects.filter(workspace_id=workspace_id, trace_id=trace_id).first()
    if trace is None:
        raise not_found("Trace")
    return trace


def run_create(*, workspace_id: str, body: Any, actor: Actor) -> Run:
    if not isinstance(body, dict):
        raise validation_failed(['"value" must be of type object'])
    errors = v.Errors()
    run = Run(
        workspace_id=workspace_id,
        run_id=v.client_id(body, "run_id", errors),
        workflow_name=v.text(body, "workflow_name", errors, max_length=128, required=True),
        status=v.choice(body, "status", errors, RUN_STATUSES, RunStatus.RUNNING),
        input=v.obj(body, "input", errors),
        output=v.obj(body, "output", errors),
        metadata=v.flat_metadata(body, errors) or {},
    )
    trace_id = v.optional_id(body, "trace_id", errors)
    if errors:
        raise validation_failed(errors)
    run.trace = _trace_for_run(workspace_id, trace_id)
    try:
        with transaction.atomic():
            run.save(force_insert=True)
            audit_record(actor=actor, workspace_id=workspace_id, action="run:create", target_id=run.run_id)
    except IntegrityError as exc:
        raise Conflict("Run already exists", {"run_id": run.run_id}) from exc
    return run


def run_update(*, run: Run, body: Any, actor: Actor) -> bool:
    """Apply ``status``/``output``/``metadata``; False when the body changes nothing (upstream's
    ``{"message": "No changes"}``)."""
    if not isinstance(body, dict):
        raise validation_failed(['"value" must be of type object'])
    errors = v.Errors()
    changes: dict[str, Any] = {}
    if body.get("status") is not None:
        changes["status"] = v.choice(body, "status", errors, RUN_STATUSES, run.status)
    if "output" in body:
        changes["output"] = v.obj(body, "output", errors)
    if "metadata" in body:
        changes["metadata"] = v.flat_metadata(body, errors) or {}
    if errors:
        raise validation_failed(errors)
    if not changes:
        return False
    with transaction.atomic():
        for name, value in changes.items():
            setattr(run, name, value)
        run.updated_at = timezone.now()
        run.save(update_fields=[*changes, "updated_at"])
        audit_record(actor=actor, workspace_id=run.workspace_id, action="run:update", target_id=run.run_id)
    return True


def run_delete(*, run: Run, actor: Actor) -> None:
    with transaction.atomic():
        run.delete()
        audit_record(actor=actor, workspace_id=run.workspace_id, action="delete_run", target_id=run.run_id)
