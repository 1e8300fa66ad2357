"""Benchmark: OTLP/HTTP protobuf ingest, batches of 512 spans, from send to queryable.

Clients (threads, one keep-alive connection each) post ``ExportTraceServiceRequest`` bodies of 512
spans (traces of 16 spans: an agent root and 15 LLM children with GenAI attributes) to
``/otlp/v1/traces`` for ``--duration`` seconds. A span counts once its batch's response has arrived,
which is when it is committed; every 10th batch, one of its spans is read back through the API
right after the response (and must be there), inside the timed loop.

    python bench/otlp_ingest.py [--duration 20] [--clients 4] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from common import replace_block, server
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

MARK_BEGIN = "<!-- otlp_ingest:begin -->"
MARK_END = "<!-- otlp_ingest:end -->"
BATCH = 512
PER_TRACE = 16


def _attr(key: str, value: str | int) -> KeyValue:
    any_value = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
    return KeyValue(key=key, value=any_value)


def _template() -> ExportTraceServiceRequest:
    """One request of BATCH spans; each batch copies it with fresh trace ids and times (building
    512 spans with their attributes in Python would cost the client more than the server)."""
    request = ExportTraceServiceRequest()
    scope_spans = request.resource_spans.add().scope_spans.add()
    for t in range(BATCH // PER_TRACE):
        for s in range(PER_TRACE):
            span = scope_spans.spans.add()
            span.trace_id, span.span_id = (t + 1).to_bytes(16, "big"), (s + 1).to_bytes(8, "big")
            if s == 0:
                span.name = "agent-run"
                continue
            span.parent_span_id, span.name = (1).to_bytes(8, "big"), "chat gpt-4o-mini"
            span.kind = Span.SPAN_KIND_CLIENT
            span.attributes.extend(
                [
                    _attr("gen_ai.operation.name", "chat"),
                    _attr("gen_ai.provider.name", "openai"),
                    _attr("gen_ai.request.model", "gpt-4o-mini"),
                    _attr("gen_ai.usage.input_tokens", 120),
                    _attr("gen_ai.usage.output_tokens", 340),
                ]
            )
    return request


_TEMPLATE = _template()


def batch(seed: int) -> tuple[bytes, str, str]:
    """One request body, and the (trace id, span id) of its last span, as hex."""
    request = ExportTraceServiceRequest()
    request.CopyFrom(_TEMPLATE)
    now = time.time_ns()
    for index, span in enumerate(request.resource_spans[0].scope_spans[0].spans):
        span.trace_id = (seed * 1000 + index // PER_TRACE + 1).to_bytes(16, "big")
        offset = (index % PER_TRACE) * 1000
        span.start_time_unix_nano, span.end_time_unix_nano = now + offset, now + offset + 800_000
    last_trace = (seed * 1000 + BATCH // PER_TRACE).to_bytes(16, "big").hex()
    return request.SerializeToString(), last_trace, PER_TRACE.to_bytes(8, "big").hex()


def client(
    url: str, key: str, first_seed: int, deadline: float, sent: list[int], failures: list[str]
) -> None:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    seed, batches = first_seed, 0
    headers = {"Content-Type": "application/x-protobuf", "X-API-Key": key}
    while time.monotonic() < deadline:
        body, trace_id, span_id = batch(seed)
        conn.request("POST", "/otlp/v1/traces", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            failures.append(f"export: HTTP {response.status}")
            break
        batches += 1
        seed += 1
        if batches % 10 == 0:
            conn.request("GET", f"/v1/traces/{trace_id}/spans/{span_id}", headers={"X-API-Key": key})
            check = conn.getresponse()
            check.read()
            if check.status != 200:
                failures.append(f"span {trace_id}/{span_id} not queryable after its batch: {check.status}")
    sent.append(batches * BATCH)
    conn.close()


def run(duration: int, clients: int) -> dict[str, str]:
    with server() as srv:
        sent: list[int] = []
        failures: list[str] = []
        client(srv.url, srv.key, 10**9, time.monotonic() + 3, [], failures)  # warm-up
        deadline = time.monotonic() + duration
        threads = [
            threading.Thread(
                target=client, args=(srv.url, srv.key, (i + 1) * 10**6, deadline, sent, failures)
            )
            for i in range(clients)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    if failures:
        raise SystemExit("; ".join(failures[:5]))
    return {
        "spans_per_s": f"{sum(sent) / elapsed:,.0f}",
        "spans": f"{sum(sent):,}",
        "clients": str(clients),
        "duration": f"{elapsed:.1f}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "cpus": str(os.cpu_count()),
    }


def markdown(r: dict[str, str]) -> str:
    return (
        f"{MARK_BEGIN}\n"
        "| date | CPUs | clients | duration | spans stored | spans/s (send to queryable) |\n"
        "|---|---|---|---|---|---|\n"
        f"| {r['date']} | {r['cpus']} | {r['clients']} | {r['duration']} s | {r['spans']} "
        f"| {r['spans_per_s']} |\n"
        f"{MARK_END}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--write", type=Path, help="replace the results block in this markdown file")
    args = parser.parse_args()
    table = markdown(run(args.duration, args.clients))
    sys.stdout.write(table + "\n")
    if args.write:
        replace_block(args.write, MARK_BEGIN, MARK_END, table)


if __name__ == "__main__":
    main()
