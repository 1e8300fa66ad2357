"""Logs, traces and runs: filtered keyset lists and one page per log, trace and run.

Lists read plain rows of the columns they show through the API's own FilterSets and keyset pages,
so page 10,000 of a million logs costs what page 1 does. A trace page reads the trace's row (with
its rolled-up totals) and its spans, capped at ``MAX_SPANS``; the spans' part of the page is
rendered once per trace version and cached.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from django.core.cache import cache
from django.template.loader import render_to_string
from django.urls import path
from django.utils.html import escape
from django.utils.safestring import SafeString

from dashboard import charts
from dashboard.filtering import apply_filters
from dashboard.paging import keyset_page
from dashboard.templatetags.dashboard import ms_between, pretty_json
from dashboard.views.base import DashboardView
from telemetry.api.representations import SPAN_FIELDS
from telemetry.filters import LogFilter, RunFilter, TraceFilter
from telemetry.models import LogRecord, Run, Span, Trace

# A trace page renders every span's panel up front (hidden but one) so that selecting a span needs
# no request; past this many spans the page shows the earliest ones and says so. 200 panels
# render in about 150 ms (uncached); the API returns every span.
MAX_SPANS = 200
# Nodes of one JSON tree (metadata, attributes, input): enough for any real metadata, and a
# bound on the page when a client sends a huge blob.
MAX_TREE_NODES = 500
MAX_TREE_DEPTH = 24
# A long string (a whole prompt in an OTLP attribute) is cut here; the API returns it in full.
MAX_LEAF_CHARS = 2000
LIST_LIMIT = 50
# A rendered span section is cached per trace version (a new span makes a new version).
SPANS_CACHE_SECONDS = 3600

LOG_COLUMNS = (
    "id",
    "created_at",
    "prompt_name",
    "version_tag",
    "provider",
    "model",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "latency_ms",
    "status",
    "error_code",
)
TRACE_COLUMNS = (
    "id",
    "trace_id",
    "name",
    "prompt_name",
    "version_tag",
    "status",
    "start_time",
    "end_time",
    "span_count",
    "error_count",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "created_at",
)
SPAN_COLUMNS = ("id", *SPAN_FIELDS)


def json_tree(value: Any, *, limit: int = MAX_TREE_NODES) -> SafeString:
    """A JSON object or array as a collapsible tree: nested <details> per object/array (the top
    two levels open), ``key: value`` per scalar. Built here rather than in a template: a trace
    page draws hundreds of these, and a template loop per node was most of its time. Past
    ``limit`` nodes, or ``MAX_TREE_DEPTH`` levels, the rest is shown as truncated JSON text."""
    parts: list[str] = []
    left = [limit]

    def leaf(key: str, text: str, kind: str) -> None:
        if len(text) > MAX_LEAF_CHARS:
            text = f"{text[:MAX_LEAF_CHARS]}… ({len(text) - MAX_LEAF_CHARS:,} more characters)"
        parts.append(
            f'<li><span class="json-key">{escape(key)}</span><span class="muted">:</span> '
            f'<span class="json-value json-{kind}">{escape(text)}</span></li>'
        )

    def walk(key: str, item: Any, depth: int) -> None:
        left[0] -= 1
        if isinstance(item, dict | list) and depth < MAX_TREE_DEPTH:
            children = list(item.items()) if isinstance(item, dict) else list(enumerate(item))
            noun = "key" if isinstance(item, dict) else "item"
            size = f"{len(children)} {noun}{'s' * (len(children) != 1)}"
            parts.append(
                f'<li><details{" open" * (depth < 2)}><summary><span class="json-key">{escape(key)}</span> '
                f'<span class="muted">{size}</span></summary><ul>'
            )
            for child_key, child in children:
                if left[0] <= 0:
                    leaf("…", "(truncated)", "more")
                    break
                walk(str(child_key), child, depth + 1)
            parts.append("</ul></details></li>")
        elif isinstance(item, dict | list):
            leaf(key, json.dumps(item, ensure_ascii=False), "more")
        else:
            leaf(key, json.dumps(item, ensure_ascii=False), "null" if item is None else type(item).__name__)

    top = value.items() if isinstance(value, dict) else enumerate(value if isinstance(value, list) else [])
    for child_key, child in top:
        if left[0] <= 0:
            leaf("…", "(truncated)", "more")
            break
        walk(str(child_key), child, 0)
    if not parts:
        return SafeString("")
    return SafeString(f'<ul class="json-tree">{"".join(parts)}</ul>')


# --- logs -------------------------------------------------------------------------------------------


class LogListView(DashboardView):
    template_name = "dashboard/telemetry/logs.html"
    nav = "logs"
    title = "Logs"
    filters = {
        "prompt": "Prompt",
        "version": "Version",
        "model": "Model",
        "provider": "Provider",
        "status": "Status",
        "from": "From",
        "to": "To",
    }

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        filtered = apply_filters(LogFilter, self.request, self.scoped(LogRecord), self.filters)
        page = keyset_page(filtered.queryset.values(*LOG_COLUMNS), self.request, limit=LIST_LIMIT)
        # Only an empty page asks whether the workspace has any log at all (one index probe).
        has_logs = bool(page.rows) or self.scoped(LogRecord).exists()
        context.update(filtered=filtered, page=page, has_logs=has_logs)
        return context


class LogDetailView(DashboardView):
    template_name = "dashboard/telemetry/log.html"
    nav = "logs"
    title = "Log"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        log = self.scoped_or_404(LogRecord, pk=kwargs["pk"])
        # Logs name their trace and run by id (telemetry arrives in any order): link only what exists.
        has_trace = bool(log.trace_id) and self.scoped(Trace).filter(trace_id=log.trace_id).exists()
        has_run = bool(log.run_id) and self.scoped(Run).filter(run_id=log.run_id).exists()
        context.update(
            title=f"Log {log.pk}",
            log=log,
            has_trace=has_trace,
            has_run=has_run,
            metadata=json_tree(log.metadata or {}),
            ollama_options=json_tree(log.ollama_options) if log.ollama_options else None,
        )
        return context


# --- traces -----------------------------------------------------------------------------------------


class TraceListView(DashboardView):
    template_name = "dashboard/telemetry/traces.html"
    nav = "traces"
    title = "Traces"
    filters = {
        "prompt": "Prompt",
        "status": "Status",
        "session": "Session",
        "user": "User",
        "from": "From",
        "to": "To",
    }

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        filtered = apply_filters(TraceFilter, self.request, self.scoped(Trace), self.filters)
        page = keyset_page(filtered.queryset.only(*TRACE_COLUMNS), self.request, limit=LIST_LIMIT)
        has_traces = bool(page.rows) or self.scoped(Trace).exists()
        has_logs = has_traces or self.scoped(LogRecord).exists()
        context.update(
            filtered=filtered,
            page=page,
            has_traces=has_traces,
            has_logs=has_logs,
        )
        return context


def span_tree(ordered: list[tuple[dict[str, Any], int]]) -> list[dict[str, Any]]:
    """Depth-first (span, depth) pairs as nodes a template nests without recursion: a span with
    children opens a <details> around them; ``closes`` says how many levels end after a leaf."""
    nodes = []
    for index, (span, depth) in enumerate(ordered):
        following = ordered[index + 1][1] if index + 1 < len(ordered) else 0
        has_children = following > depth
        nodes.append(
            {
                "span": span,
                "has_children": has_children,
                "closes": range(0 if has_children else depth - following),
            }
        )
    return nodes


def _events(events: Any) -> list[dict[str, Any]]:
    """OTLP events ({name, time, attributes}) for the page; anything else a client stored, as JSON."""
    shown = []
    for event in events if isinstance(events, list) else []:
        if isinstance(event, dict):
            attributes = json_tree(event.get("attributes") or {})
            shown.append(
                {
                    "name": event.get("name") or "(unnamed)",
                    "time": event.get("time"),
                    "attributes": attributes,
                }
            )
        else:
            shown.append({"name": "(event)", "time": None, "attributes": json_tree([event])})
    return shown


@dataclass
class SpanSection:
    """A trace's rendered waterfall, span tree and (hidden) span panels, with what the page needs
    to know about them; kept in the cache per trace version (see ``TraceDetailView.spans``)."""

    html: str
    span_ids: list[str]
    truncated: bool
    has_waterfall: bool


class TraceDetailView(DashboardView):
    template_name = "dashboard/telemetry/trace.html"
    nav = "traces"
    title = "Trace"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        trace = self.scoped_or_404(Trace, trace_id=kwargs["trace_id"])
        section = self.spans(trace)
        requested = self.request.GET.get("span", "")
        selected = requested if requested in section.span_ids else next(iter(section.span_ids), "")
        context.update(
            title=f"Trace {trace.name or trace.trace_id}",
            trace=trace,
            trace_metadata=json_tree(trace.metadata or {}),
            spans_html=select_span(section.html, selected),
            has_spans=bool(section.span_ids),
            has_waterfall=section.has_waterfall,
            unknown_span=requested if requested and requested != selected else "",
            truncated=section.truncated,
            max_spans=MAX_SPANS,
            runs=list(self.scoped(Run).filter(trace=trace).only("run_id", "workflow_name", "status")[:10]),
        )
        return context

    def spans(self, trace: Trace) -> SpanSection:
        """The span section, rendered once per trace version: every span write bumps ``version``,
        so a finished trace is read from the cache (no span query, no template) on every later
        view, while a trace still receiving spans is never shown stale."""
        url = self.server_url
        identity = f"{trace.pk}|{trace.trace_id}|{trace.created_at.isoformat()}|{trace.version}"
        key = "dashboard:trace-spans:" + hashlib.sha256(f"{identity}|{MAX_SPANS}|{url}".encode()).hexdigest()
        section = cache.get(key)
        if section is None:
            section = self.render_spans(trace, url)
            cache.set(key, section, SPANS_CACHE_SECONDS)
        return section

    def render_spans(self, trace: Trace, url: str) -> SpanSection:
        rows = list(
            self.scoped(Span)
            .filter(trace=trace)
            .order_by("start_time", "id")
            .values(*SPAN_COLUMNS)[: MAX_SPANS + 1]
        )
        # Plain rows rather than model instances: a template resolves a dict key at once, while a
        # model attribute is found only after a failed item lookup, and a panel shows ~20 per span.
        spans = [SimpleNamespace(**row) for row in rows[:MAX_SPANS]]
        origin = min((span.start_time for span in spans if span.start_time is not None), default=None)
        shown = {
            span.span_id: {
                **vars(span),
                "href": "?" + urlencode({"span": span.span_id}),
                "parent_href": "?" + urlencode({"span": span.parent_id}) if span.parent_id else "",
                "offset_ms": ms_between(origin, span.start_time),
                "duration_ms": ms_between(span.start_time, span.end_time),
                "attributes": json_tree(span.metadata or {}),
                "events": _events(span.events),
            }
            for span in spans
        }
        ordered = [(shown[span.span_id], depth) for span, depth in charts.ordered_spans(spans)]
        waterfall = charts.span_waterfall(spans) if origin is not None else None
        html = render_to_string(
            "dashboard/telemetry/trace_spans.html",
            {
                "trace": trace,
                "panels": [span for span, _ in ordered],
                "tree": span_tree(ordered),
                "waterfall": waterfall,
                "server_url": url,
            },
        )
        return SpanSection(
            html=html,
            span_ids=[span["span_id"] for span, _ in ordered],
            truncated=len(rows) > MAX_SPANS,
            has_waterfall=waterfall is not None,
        )


def select_span(html: str, span_id: str) -> SafeString:
    """The span section with ``span_id``'s panel shown and its tree item current. The section is
    rendered with every panel hidden so that one cached copy serves every selection; ids are
    letters, digits and ``_.:-`` (validated at ingest), so the markers below match exactly."""
    if span_id:
        marker = escape(span_id)
        html = html.replace(f'data-span-id="{marker}" hidden', f'data-span-id="{marker}"', 1)
        link = f'class="span-link" data-span-link="{marker}"'
        html = html.replace(link, f'{link} aria-current="true"', 1)
    return SafeString(html)


# --- runs -------------------------------------------------------------------------------------------


class RunListView(DashboardView):
    template_name = "dashboard/telemetry/runs.html"
    nav = "runs"
    title = "Runs"
    filters = {"workflow": "Workflow", "status": "Status", "from": "From", "to": "To"}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        filtered = apply_filters(RunFilter, self.request, self.scoped(Run), self.filters)
        rows = filtered.queryset.values(
            "id", "run_id", "workflow_name", "status", "created_at", "updated_at", "trace__trace_id"
        )
        page = keyset_page(rows, self.request, limit=LIST_LIMIT)
        has_runs = bool(page.rows) or self.scoped(Run).exists()
        context.update(filtered=filtered, page=page, has_runs=has_runs)
        return context


class RunDetailView(DashboardView):
    template_name = "dashboard/telemetry/run.html"
    nav = "runs"
    title = "Run"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        run = self.scoped_or_404(Run.objects.select_related("trace"), run_id=kwargs["run_id"])
        context.update(
            title=f"Run {run.run_id}",
            run=run,
            duration_ms=ms_between(run.created_at, run.updated_at),
            input_json=pretty_json(run.input) if run.input is not None else None,
            output_json=pretty_json(run.output) if run.output is not None else None,
            metadata_json=pretty_json(run.metadata) if run.metadata else None,
        )
        return context


urlpatterns = [
    path("logs", LogListView.as_view(), name="logs"),
    path("logs/<int:pk>", LogDetailView.as_view(), name="log"),
    path("traces", TraceListView.as_view(), name="traces"),
    path("traces/<str:trace_id>", TraceDetailView.as_view(), name="trace"),
    path("runs", RunListView.as_view(), name="runs"),
    path("runs/<str:run_id>", RunDetailView.as_view(), name="run"),
]
