"""A root span exported after its LLM children (the usual order) still links their logs and the
prompt metrics to the prompt version, session and user it carries."""

from __future__ import annotations

import json
import time

import pytest

from telemetry.models import LogRecord, LogRollup

pytestmark = pytest.mark.django_db

TRACE = "0af7651916cd43dd8448eb211c80319c"
ROOT, CHILD = "b7ad6b7169203331", "00f067aa0ba902b7"


def _attrs(values: dict[str, object]) -> list[dict[str, object]]:
    def any_value(v: object) -> dict[str, object]:
        return {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}

    return [{"key": k, "value": any_value(v)} for k, v in values.items()]


def _export(api, key: str, span: dict[str, object]) -> None:
    body = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [span]}]}]}
    response = api.post("/otlp/v1/traces", key=key, data=json.dumps(body).encode())
    assert response.status_code == 200, response.content


def _child(now: int) -> dict[str, object]:
    usage = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 340,
    }
    return {
        "traceId": TRACE,
        "spanId": CHILD,
        "parentSpanId": ROOT,
        "name": "chat gpt-4o-mini",
        "kind": 3,
        "startTimeUnixNano": str(now),
        "endTimeUnixNano": str(now + 900_000_000),
        "attributes": _attrs(usage),
    }


def _root(now: int) -> dict[str, object]:
    links = {
        "promptmetrics.prompt.name": "welcome",
        "promptmetrics.prompt.version": "1.4.2",
        "session.id": "sess-9",
        "user.id": "user-7",
    }
    return {
        "traceId": TRACE,
        "spanId": ROOT,
        "name": "agent-loop",
        "startTimeUnixNano": str(now - 1000),
        "endTimeUnixNano": str(now + 1_000_000_000),
        "attributes": _attrs(links),
    }


def test_links_from_a_late_root_reach_the_logs_and_the_prompt_metrics(api, make_key):
    _, key = make_key("read,write")
    now = time.time_ns()
    _export(api, key, _child(now))
    log = LogRecord.objects.get()
    assert (log.prompt_name, log.session_id) == ("", "")
    assert [(r.prompt_name, r.request_count) for r in LogRollup.objects.all()] == [("", 1)]

    _export(api, key, _root(now))

    log.refresh_from_db()
    links = (log.prompt_name, log.version_tag, log.session_id, log.user_id)
    assert links == ("welcome", "1.4.2", "sess-9", "user-7")
    counted = {
        (r.prompt_name, r.version_tag): (r.request_count, r.tokens_in) for r in LogRollup.objects.all()
    }
    assert counted.get(("welcome", "1.4.2")) == (1, 120)
    assert counted.get(("", ""), (0, 0)) == (0, 0)
    prompts = api.get("/v1/metrics/prompts?window=7d", key=key).json()["prompts"]
    moved = [(p["prompt_name"], p["version_tag"], p["request_count"]) for p in prompts if p["request_count"]]
    assert moved == [("welcome", "1.4.2", 1)]
    series = api.get("/v1/metrics/time-series?window=7d", key=key).json()["daily"]
    assert sum(day["request_count"] for day in series) == 1
