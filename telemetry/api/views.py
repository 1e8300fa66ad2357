"""``/v1/logs``, ``/v1/traces`` (+ spans) and ``/v1/runs``: upstream's wire format, plus batches,
filters, keyset pages, span ends and trace totals."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.db.models import F, QuerySet
from django.http import HttpResponse
from rest_framework import status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import KeysetPagination, not_found
from telemetry import services
from telemetry.api.representations import (
    LOG_FIELDS,
    SPAN_FIELDS,
    log_json,
    run_json,
    span_json,
    trace_json,
    trace_summary_json,
)
from telemetry.filters import LogFilter, RunFilter, TraceFilter
from telemetry.metrics import log_count
from telemetry.models import LogRecord, Run, Span, Trace
from tenancy.api.base import TELEMETRY_WRITE_SCOPES, ScopedViewSet
from tenancy.context import actor_from_request

# ``ingest`` keys may add and complete telemetry; deleting it takes ``write``.
_TRACE_BODIES_MAX = 512
_trace_bodies: dict[tuple[Any, ...], bytes] = {}

_WRITES = {"create": TELEMETRY_WRITE_SCOPES, "partial_update": TELEMETRY_WRITE_SCOPES}


class _TelemetryViewSet(ScopedViewSet):
    pagination_class = KeysetPagination
    lookup_value_regex = "[^/]+"
    scopes = _WRITES


class _Listing(_TelemetryViewSet):
    """Filtered, paginated lists rendered by a plain function (``represent``) per row."""

    represent: Any = None
    # When set, rows are read as plain values of these fields (plus ``id``), not model instances:
    # on a page of 50 logs the instances cost more than the query.
    fields: tuple[str, ...] | None = None

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        if self.fields is not None:
            queryset = queryset.values("id", *self.fields)
        page = self.paginate_queryset(queryset)
        if self.fields is not None:
            page = [SimpleNamespace(pk=row["id"], **row) for row in page]
        return self.get_paginated_response([type(self).represent(row) for row in page])


class LogViewSet(_Listing):
    queryset = LogRecord.objects.all()
    filterset_class = LogFilter
    represent = staticmethod(log_json)
    fields = LOG_FIELDS

    def unfiltered_total(self) -> int | None:
        """The workspace's log count from the hourly rollups (exact: they are written in the same
        transactions as the logs), when no filter narrows the list; None otherwise."""
        if set(self.request.query_params) - {"page", "limit"}:
            return None
        return log_count(workspace_id=self.request.workspace_id)

    def create(self, request: Request) -> Response:
        records, batch = services.logs_ingest(
            workspace_id=request.workspace_id, body=request.data, actor=actor_from_request(request)
        )
        if batch:
            body = {"ids": [r.pk for r in records], "count": len(records), "status": "accepted"}
        else:
            body = {"id": records[0].pk, "status": "accepted"}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class TraceViewSet(_Listing):
    queryset = Trace.objects.all()
    filterset_class = TraceFilter
    lookup_field = "trace_id"
    represent = staticmethod(trace_summary_json)

    def _by_trace_id(self) -> QuerySet[Trace]:
        # Unique in the workspace, so no ORDER BY: first() would sort by the model's ordering,
        # and compiling that was a third of a cached trace read.
        return self.get_queryset().filter(trace_id=self.kwargs["trace_id"]).order_by()

    def get_object(self) -> Trace:
        trace = next(iter(self._by_trace_id()[:1]), None)
        if trace is None:
            raise not_found("Trace")
        return trace

    def create(self, request: Request) -> Response:
        trace = services.trace_create(
            workspace_id=request.workspace_id, body=request.data, actor=actor_from_request(request)
        )
        body = {
            "trace_id": trace.trace_id,
            "prompt_name": trace.prompt_name or None,
            "version_tag": trace.version_tag or None,
            "status": "created",
        }
        return Response(body, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, trace_id: str) -> HttpResponse:
        # A trace's page changes only when its spans do, and every span write bumps ``version``:
        # the rendered body is kept per (trace, version), so reading a finished trace again costs
        # three columns of one indexed row instead of its spans' rows, their JSON and the encoding.
        row = next(iter(self._by_trace_id().values_list("pk", "created_at", "version")[:1]), None)
        if row is None:
            raise not_found("Trace")
        key = (row[0], trace_id, row[1], row[2])
        body = _trace_bodies.get(key)
        if body is None:
            trace = self.get_object()
            # Upstream's order: by start time, spans without one first (PostgreSQL puts them last).
            spans = trace.spans.order_by(F("start_time").asc(nulls_first=True), "id").values(*SPAN_FIELDS)
            body = JSONRenderer().render(trace_json(trace, [SimpleNamespace(**row) for row in spans]))
            if len(_trace_bodies) >= _TRACE_BODIES_MAX:
                _trace_bodies.clear()
            _trace_bodies[key] = body
        return HttpResponse(body, content_type="application/json")

    def destroy(self, request: Request, trace_id: str) -> Response:
        services.trace_delete(trace=self.get_object(), actor=actor_from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SpanViewSet(_TelemetryViewSet):
    """``/v1/traces/{trace_id}/spans[/{span_id}]``: add spans (one or a batch), read one, end one."""

    queryset = Span.objects.all()
    lookup_field = "span_id"

    def narrow_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(trace__trace_id=self.kwargs["trace_id"]).select_related("trace")

    def get_object(self) -> Span:
        span = self.get_queryset().filter(span_id=self.kwargs["span_id"]).first()
        if span is None:
            raise not_found("Span")
        return span

    def create(self, request: Request, trace_id: str) -> Response:
        if not Trace.objects.filter(workspace_id=request.workspace_id, trace_id=trace_id).exists():
            raise not_found("Trace")
        spans, batch = services.span_inputs_from_body(trace_id, request.data)
        result = services.spans_ingest(
            workspace_id=request.workspace_id,
            spans=spans,
            source="api",
            actor=actor_from_request(request),
            duplicates="raise",
        )
        created = [
            {"trace_id": trace_id, "span_id": s.span_id, "name": s.name, "status": s.status}
            for s in result.spans
        ]
        body = {"trace_id": trace_id, "spans": created, "count": len(created)} if batch else created[0]
        return Response(body, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, trace_id: str, span_id: str) -> Response:
        return Response(span_json(self.get_object()))

    def partial_update(self, request: Request, trace_id: str, span_id: str) -> Response:
        span = services.span_end(span=self.get_object(), body=request.data, actor=actor_from_request(request))
        return Response(span_json(span))


class RunViewSet(_Listing):
    queryset = Run.objects.select_related("trace")
    filterset_class = RunFilter
    lookup_field = "run_id"
    represent = staticmethod(run_json)

    def get_object(self) -> Run:
        run = self.get_queryset().filter(run_id=self.kwargs["run_id"]).first()
        if run is None:
            raise not_found("Run")
        return run

    def create(self, request: Request) -> Response:
        run = services.run_create(
            workspace_id=request.workspace_id, body=request.data, actor=actor_from_request(request)
        )
        body = {"run_id": run.run_id, "workflow_name": run.workflow_name, "status": run.status}
        return Response(body, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, run_id: str) -> Response:
        return Response(run_json(self.get_object()))

    def partial_update(self, request: Request, run_id: str) -> Response:
        run = self.get_object()
        if not services.run_update(run=run, body=request.data, actor=actor_from_request(request)):
            return Response({"message": "No changes"})
        return Response({"run_id": run.run_id, "status": "updated"})

    def destroy(self, request: Request, run_id: str) -> Response:
        services.run_delete(run=self.get_object(), actor=actor_from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
