"""``/v1/traces`` and their spans (upstream §2.5), plus batches, span ends, totals and keyset pages."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

from telemetry.models import Run, Span, Trace
from tenancy.models import AuditLog

TRACES = "/v1/traces"
T0 = 1_700_000_000_000  # ms
SPAN_FIELDS = {
    "trace_id",
    "span_id",
    "parent_id",
    "name",
    "kind",
    "status",
    "status_message",
    "start_time",
    "end_time",
    "duration_ms",
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
}
TOTALS = {"span_count", "error_count", "duration_ms", "tokens_in", "tokens_out", "cost_usd"}
# The book's list price of gpt-4o-mini, USD per million tokens: input, output.
MINI_IN, MINI_OUT = 0.15, 0.60


@pytest.fixture
def key(make_key) -> str:
    return make_key("read,write")[1]


def new_trace(api, key: str, **body) -> str:
    response = api.post(TRACES, key=key, json=body)
    assert response.status_code == 201, response.content
    return response.json()["trace_id"]


def add_spans(api, key: str, trace_id: str, body):
    return api.post(f"{TRACES}/{trace_id}/spans", key=key, json=body)


def add_span(api, key: str, trace_id: str, **body) -> dict:
    response = add_spans(api, key, trace_id, {"name": "step", **body})
    assert response.status_code == 201, response.content
    return response.json()


def detail(api, key: str, trace_id: str) -> dict:
    response = api.get(f"{TRACES}/{trace_id}", key=key)
    assert response.status_code == 200, response.content
    return response.json()


def patch(api, key: str, trace_id: str, span_id: str, body):
    return api.request("PATCH", f"{TRACES}/{trace_id}/spans/{span_id}", key=key, json=body)


def fields(response) -> list[str]:
    assert response.status_code == 422, response.content
    body = response.json()
    assert (body["code"], body["detailsType"]) == ("VALIDATION_FAILED", "fields")
    return body["details"]["fields"]


# --- Traces: create ---


def test_create_with_a_generated_uuid(api, key):
    response = api.post(TRACES, key=key, json={})
    assert response.status_code == 201
    body = response.json()
    assert body == {
        "trace_id": body["trace_id"],
        "prompt_name": None,
        "version_tag": None,
        "status": "created",
    }
    assert uuid.UUID(body["trace_id"]).version == 4
    assert Trace.objects.filter(trace_id=body["trace_id"], workspace_id="default").exists()


@pytest.mark.parametrize(
    "trace_id",
    [str(uuid.uuid4()), "4bf92f3577b34da6a3ce929d0e0e4736", "t_abc", "T.1:2-3_4", "x" * 128],
)
def test_create_with_an_explicit_id(api, key, trace_id):
    response = api.post(
        TRACES, key=key, json={"trace_id": trace_id, "prompt_name": "greet", "version_tag": "1.0.0"}
    )
    assert response.status_code == 201
    assert response.json() == {
        "trace_id": trace_id,
        "prompt_name": "greet",
        "version_tag": "1.0.0",
        "status": "created",
    }
    assert detail(api, key, trace_id)["trace_id"] == trace_id


def test_a_trace_round_trips_its_fields(api, key):
    metadata = {"env": "prod", "nested": {"a": [1, {"b": None}]}}
    trace_id = new_trace(
        api,
        key,
        name="checkout",
        prompt_name="greet",
        version_tag="1.0.0",
        session_id="sess-1",
        user_id="u-1",
        metadata=metadata,
    )
    body = detail(api, key, trace_id)
    assert body["name"] == "checkout"
    assert (body["prompt_name"], body["version_tag"]) == ("greet", "1.0.0")
    assert (body["session_id"], body["user_id"]) == ("sess-1", "u-1")
    assert body["metadata"] == metadata
    assert body["spans"] == []
    assert body["status"] == "unset"
    assert body["source"] == "api"
    assert abs(body["created_at"] - time.time()) < 60
    assert body["span_count"] == 0
    assert body["duration_ms"] is None
    assert (body["start_time"], body["end_time"]) == (None, None)
    assert set(body["totals"]) == TOTALS


def test_a_duplicate_trace_id_is_a_409(api, key):
    trace_id = new_trace(api, key, prompt_name="first")
    response = api.post(TRACES, key=key, json={"trace_id": trace_id, "prompt_name": "second"})
    assert response.status_code == 409
    assert response.json()["code"] == "CONFLICT"
    assert Trace.objects.get(trace_id=trace_id).prompt_name == "first"
    assert AuditLog.objects.filter(action="trace:create", target_id=trace_id).count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"trace_id": "a b"}, "trace_id"),
        ({"trace_id": "t" * 200}, "trace_id"),
        ({"trace_id": "t/1"}, "trace_id"),
        ({"trace_id": ""}, "trace_id"),
        ({"trace_id": 42}, "trace_id"),
        ({"prompt_name": "p" * 129}, "prompt_name"),
        ({"version_tag": 1}, "version_tag"),
        ({"metadata": {f"k{i}": i for i in range(51)}}, "metadata cannot contain more than 50 keys"),
        ({"metadata": ["a"]}, "metadata"),
        ({"session_id": {"id": 1}}, "session_id"),
    ],
)
def test_invalid_traces_are_422(api, key, body, field):
    messages = fields(api.post(TRACES, key=key, json=body))
    assert any(field in m for m in messages), messages
    assert not Trace.objects.exists()


@pytest.mark.parametrize("raw", ["[]", '"t"', "7", "null"])
def test_a_trace_body_that_is_not_an_object_is_a_422(api, key, raw):
    fields(api.post(TRACES, key=key, data=raw))
    assert not Trace.objects.exists()


def test_invalid_json_is_a_400(api, key):
    response = api.post(TRACES, key=key, data="{")
    assert response.status_code == 400
    assert response.json()["code"] == "BAD_REQUEST"


def test_create_is_audited(api, key):
    trace_id = new_trace(api, key)
    assert AuditLog.objects.get(action="trace:create").target_id == trace_id


# --- Traces: list ---


def test_list_is_newest_first_with_the_page_envelope(api, key):
    ids = [new_trace(api, key, prompt_name=f"p{i}") for i in range(3)]
    body = api.get(TRACES, key=key).json()
    assert [t["trace_id"] for t in body["items"]] == ids[::-1]
    assert (body["total"], body["page"], body["limit"], body["totalPages"]) == (3, 1, 50, 1)
    assert body["nextCursor"] is None
    item = body["items"][0]
    assert {"trace_id", "prompt_name", "version_tag", "metadata", "created_at"} <= set(item)
    assert TOTALS <= set(item)
    assert "spans" not in item


@pytest.mark.parametrize("query", ["page=0", "limit=101", "limit=abc", "status=bogus", "from=soon"])
def test_bad_list_queries_are_422(api, key, query):
    fields(api.get(f"{TRACES}?{query}", key=key))


def test_filters(api, key):
    a = new_trace(api, key, name="checkout flow", prompt_name="greet", session_id="s1", user_id="u1")
    b = new_trace(
        api, key, name="search", prompt_name="greet", version_tag="2.0.0", session_id="s2", user_id="u1"
    )
    c = new_trace(api, key, name="other", prompt_name="summarise", session_id="s1")
    add_span(api, key, b, status="error")
    add_span(api, key, c, status="ok")

    def ids(query: str) -> list[str]:
        response = api.get(f"{TRACES}?{query}", key=key)
        assert response.status_code == 200, response.content
        return [t["trace_id"] for t in response.json()["items"]]

    assert ids("status=error") == [b]
    assert ids("status=ok") == [c]
    assert ids("status=unset") == [a]
    assert ids("session=s1") == [c, a]
    assert ids("user=u1") == [b, a]
    assert ids("prompt=greet") == [b, a]
    assert ids("prompt=greet&version=2.0.0") == [b]
    assert ids("q=CHECKOUT") == [a]
    assert ids("q=summ") == [c]
    assert ids("q=greet") == [b, a]
    assert ids("session=s1&user=u1") == [a]
    assert ids("session=nobody") == []


def test_time_range(api, key):
    old, new = new_trace(api, key), new_trace(api, key)
    Trace.objects.filter(trace_id=old).update(created_at=datetime(2024, 1, 1, tzinfo=UTC))
    cut = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
    assert [t["trace_id"] for t in api.get(f"{TRACES}?from={cut}", key=key).json()["items"]] == [new]
    assert [t["trace_id"] for t in api.get(f"{TRACES}?to=2025-01-01", key=key).json()["items"]] == [old]


def test_keyset_walk_returns_every_trace_once_newest_first(api, key):
    ids = [new_trace(api, key, session_id="s" if i % 2 else "") for i in range(7)]
    Trace.objects.filter(trace_id__in=ids[:3]).update(created_at=datetime(2024, 5, 5, tzinfo=UTC))

    def walk(query: str = "") -> list[str]:
        seen, cursor = [], ""
        for _ in range(50):
            body = api.get(f"{TRACES}?limit=2&cursor={cursor}{query}", key=key).json()
            seen += [t["trace_id"] for t in body["items"]]
            if body["nextCursor"] is None:
                return seen
            cursor = body["nextCursor"]
        raise AssertionError("the cursor never ended")

    walked = walk()
    assert len(walked) == len(set(walked)) == 7
    assert walked == [t["trace_id"] for t in api.get(f"{TRACES}?limit=100", key=key).json()["items"]]
    assert walked == ids[3:][::-1] + ids[:3][::-1]
    assert walk("&session=s") == [ids[5], ids[3], ids[1]]
    fields(api.get(f"{TRACES}?cursor=garbage", key=key))


# --- Spans ---


def test_add_one_span(api, key):
    trace_id = new_trace(api, key)
    span_id = str(uuid.uuid4())
    response = add_spans(api, key, trace_id, {"span_id": span_id, "name": "llm call", "status": "ok"})
    assert response.status_code == 201
    assert response.json() == {"trace_id": trace_id, "span_id": span_id, "name": "llm call", "status": "ok"}


def test_a_span_gets_a_generated_id_and_status_unset(api, key):
    trace_id = new_trace(api, key)
    body = add_span(api, key, trace_id)
    assert uuid.UUID(body["span_id"]).version == 4
    assert body["status"] == "unset"


@pytest.mark.parametrize("span_id", ["00f067aa0ba902b7", "s_root", str(uuid.uuid4())])
def test_span_id_shapes(api, key, span_id):
    trace_id = new_trace(api, key)
    assert add_span(api, key, trace_id, span_id=span_id)["span_id"] == span_id
    got = api.get(f"{TRACES}/{trace_id}/spans/{span_id}", key=key)
    assert got.status_code == 200
    assert got.json()["span_id"] == span_id


def test_a_batch_of_spans(api, key):
    trace_id = new_trace(api, key)
    batch = [{"span_id": f"s_{i}", "name": f"step {i}", "status": "ok"} for i in range(3)]
    response = add_spans(api, key, trace_id, batch)
    assert response.status_code == 201
    assert response.json() == {
        "trace_id": trace_id,
        "spans": [
            {"trace_id": trace_id, "span_id": f"s_{i}", "name": f"step {i}", "status": "ok"} for i in range(3)
        ],
        "count": 3,
    }
    assert detail(api, key, trace_id)["span_count"] == 3
    assert not AuditLog.objects.filter(action="trace:span:create").exists()


def test_a_batch_of_one_thousand_spans(api, key):
    trace_id = new_trace(api, key)
    response = add_spans(api, key, trace_id, [{"name": "s", "tokens_in": 1}] * 1000)
    assert response.status_code == 201
    assert response.json()["count"] == 1000
    body = detail(api, key, trace_id)
    assert (body["span_count"], body["tokens_in"], len(body["spans"])) == (1000, 1000, 1000)


def test_a_batch_of_1001_spans_is_a_422(api, key):
    trace_id = new_trace(api, key)
    fields(add_spans(api, key, trace_id, [{"name": "s"}] * 1001))
    assert not Span.objects.exists()


def test_spans_of_an_unknown_trace_are_a_404(api, key):
    response = add_spans(api, key, "t_missing", {"name": "orphan"})
    assert response.status_code == 404
    assert response.json()["error"] == "Trace not found"
    assert not Span.objects.exists()
    assert not Trace.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "s", "status": "done"}, '"status" must be one of [unset, ok, error, running]'),
        ({"name": "s", "status": "OK"}, '"status"'),
        ({}, '"name" is required'),
        ({"name": ""}, '"name"'),
        ({"name": 5}, '"name"'),
        ({"name": "n" * 257}, '"name"'),
        ({"name": "s", "span_id": "a b"}, "span_id"),
        ({"name": "s", "span_id": "s" * 200}, "span_id"),
        ({"name": "s", "parent_id": "p p"}, "parent_id"),
        ({"name": "s", "start_time": -1}, "start_time"),
        ({"name": "s", "start_time": "1700000000000"}, "start_time"),
        ({"name": "s", "end_time": True}, "end_time"),
        ({"name": "s", "end_time": 10**20}, "end_time"),
        ({"name": "s", "end_time": 10**400}, "end_time"),
        ({"name": "s", "tokens_in": -1}, "tokens_in"),
        ({"name": "s", "tokens_out": "9"}, "tokens_out"),
        ({"name": "s", "cost_usd": False}, "cost_usd"),
        (
            {"name": "s", "metadata": {f"k{i}": 1 for i in range(51)}},
            "metadata cannot contain more than 50 keys",
        ),
    ],
)
def test_invalid_spans_are_422(api, key, body, field):
    trace_id = new_trace(api, key)
    messages = fields(add_spans(api, key, trace_id, body))
    assert any(field in m for m in messages), messages
    assert not Span.objects.exists()


def test_one_invalid_span_fails_the_batch(api, key):
    trace_id = new_trace(api, key)
    messages = fields(
        add_spans(api, key, trace_id, [{"name": "ok"}, {"status": "ok"}, {"name": "x", "status": "nope"}])
    )
    assert '[1] "name" is required' in messages
    assert any(m.startswith("[2]") and "status" in m for m in messages), messages
    assert not Span.objects.exists()
    assert detail(api, key, trace_id)["span_count"] == 0


@pytest.mark.parametrize("body", [[], ["s"], "span", 3])
def test_malformed_span_bodies_are_422(api, key, body):
    trace_id = new_trace(api, key)
    fields(add_spans(api, key, trace_id, body))
    assert not Span.objects.exists()


def test_a_duplicate_span_id_is_a_409_and_stores_nothing_of_the_batch(api, key):
    trace_id = new_trace(api, key)
    add_span(api, key, trace_id, span_id="s_1", tokens_in=5)
    response = add_spans(
        api, key, trace_id, [{"span_id": "s_2", "name": "new"}, {"span_id": "s_1", "name": "again"}]
    )
    assert response.status_code == 409
    assert response.json()["code"] == "CONFLICT"
    assert list(Span.objects.values_list("span_id", "name")) == [("s_1", "step")]
    body = detail(api, key, trace_id)
    assert (body["span_count"], body["tokens_in"]) == (1, 5)


def test_a_span_id_twice_in_one_batch_is_a_409(api, key):
    trace_id = new_trace(api, key)
    response = add_spans(
        api, key, trace_id, [{"span_id": "s_1", "name": "a"}, {"span_id": "s_1", "name": "b"}]
    )
    assert response.status_code == 409
    assert not Span.objects.exists()


def test_the_same_span_id_in_two_traces(api, key):
    first, second = new_trace(api, key), new_trace(api, key)
    add_span(api, key, first, span_id="s_1", name="in first")
    add_span(api, key, second, span_id="s_1", name="in second")
    assert api.get(f"{TRACES}/{first}/spans/s_1", key=key).json()["name"] == "in first"
    assert api.get(f"{TRACES}/{second}/spans/s_1", key=key).json()["name"] == "in second"


def test_get_a_span(api, key):
    trace_id = new_trace(api, key)
    parent = add_span(api, key, trace_id, name="root")["span_id"]
    add_span(
        api,
        key,
        trace_id,
        span_id="s_child",
        parent_id=parent,
        name="llm",
        kind="llm",
        status="ok",
        start_time=T0,
        end_time=T0 + 1500,
        metadata={"temperature": 0.2, "nested": {"x": [1]}},
        model="my-own-model",
        provider="ollama",
        tokens_in=12,
        tokens_out=34,
        cost_usd=0.25,
    )
    response = api.get(f"{TRACES}/{trace_id}/spans/s_child", key=key)
    assert response.status_code == 200
    span = response.json()
    assert set(span) == SPAN_FIELDS
    assert span == {
        **span,
        "trace_id": trace_id,
        "span_id": "s_child",
        "parent_id": parent,
        "name": "llm",
        "kind": "llm",
        "status": "ok",
        "start_time": T0,
        "end_time": T0 + 1500,
        "duration_ms": 1500,
        "metadata": {"temperature": 0.2, "nested": {"x": [1]}},
        "model": "my-own-model",
        "provider": "ollama",
        "tokens_in": 12,
        "tokens_out": 34,
        "cost_usd": 0.25,
    }
    assert abs(span["created_at"] - time.time()) < 60


def test_an_unknown_span_is_a_404(api, key):
    trace_id = new_trace(api, key)
    other = new_trace(api, key)
    add_span(api, key, other, span_id="s_elsewhere")
    for path in (
        f"{TRACES}/{trace_id}/spans/s_missing",
        f"{TRACES}/{trace_id}/spans/s_elsewhere",
        f"{TRACES}/t_missing/spans/s_elsewhere",
    ):
        response = api.get(path, key=key)
        assert response.status_code == 404, path
        assert response.json()["error"] == "Span not found"


@pytest.mark.parametrize(
    "ms",
    [
        0,
        1,
        T0,
        T0 + 123,
        1_700_000_000_123.456,
        1_700_000_000_000.001,
        4_102_444_800_000,
        32_503_680_000_123,
        253_402_300_799_999,
    ],
)
def test_span_times_in_ms_round_trip_exactly(api, key, ms):
    trace_id = new_trace(api, key)
    add_span(api, key, trace_id, span_id="s", start_time=ms, end_time=ms)
    span = api.get(f"{TRACES}/{trace_id}/spans/s", key=key).json()
    assert span["start_time"] == ms
    assert span["end_time"] == ms
    assert type(span["start_time"]) is type(ms)
    assert span["duration_ms"] == 0
    body = detail(api, key, trace_id)
    assert (body["start_time"], body["end_time"]) == (ms, ms)


def test_a_fractional_ms_keeps_microseconds(api, key):
    trace_id = new_trace(api, key)
    add_span(api, key, trace_id, span_id="s", start_time=1_700_000_000_123.456, end_time=1_700_000_000_124)
    stored = Span.objects.get(span_id="s")
    assert stored.start_time == datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)
    assert api.get(f"{TRACES}/{trace_id}/spans/s", key=key).json()["duration_ms"] == pytest.approx(0.544)


# --- The trace with its spans and totals ---


def test_detail_orders_spans_by_start_time_nulls_first_and_rolls_up_totals(api, key):
    trace_id = new_trace(api, key, prompt_name="greet")
    spans = [
        {"span_id": "late", "name": "late", "status": "error", "start_time": T0 + 3000, "end_time": T0 + 9000,
         "tokens_in": 5, "tokens_out": 0, "cost_usd": 0.002, "parent_id": "root"},
        {"span_id": "root", "name": "root", "status": "ok", "start_time": T0, "end_time": T0 + 7000,
         "tokens_in": 10, "tokens_out": 20, "cost_usd": 0.01},
        {"span_id": "untimed", "name": "untimed", "status": "running"},
        {"span_id": "mid", "name": "mid", "status": "error", "start_time": T0 + 1000, "parent_id": "root",
         "model": "gpt-4o-mini", "tokens_in": 1000, "tokens_out": 500},
    ]  # fmt: skip
    assert add_spans(api, key, trace_id, spans[:2]).status_code == 201
    assert add_spans(api, key, trace_id, spans[2:]).status_code == 201

    body = detail(api, key, trace_id)
    assert [s["span_id"] for s in body["spans"]] == ["untimed", "root", "mid", "late"]
    assert all(set(s) == SPAN_FIELDS for s in body["spans"])
    assert body["spans"][0]["start_time"] is None
    mid_cost = (1000 * MINI_IN + 500 * MINI_OUT) / 1e6
    assert body["spans"][2]["cost_usd"] == pytest.approx(mid_cost)
    expected = {
        "span_count": 4,
        "error_count": 2,
        "tokens_in": 1015,
        "tokens_out": 520,
        "duration_ms": 9000,
    }
    assert {k: body[k] for k in expected} == expected
    assert body["cost_usd"] == pytest.approx(0.012 + mid_cost)
    assert (body["start_time"], body["end_time"]) == (T0, T0 + 9000)
    assert body["status"] == "error"
    assert body["totals"] == {k: body[k] for k in TOTALS}
    listed = api.get(TRACES, key=key).json()["items"][0]
    assert {k: listed[k] for k in TOTALS} == body["totals"]


def test_trace_status_follows_its_spans(api, key):
    trace_id = new_trace(api, key)
    add_span(api, key, trace_id, span_id="a", status="ok")
    assert detail(api, key, trace_id)["status"] == "ok"
    add_span(api, key, trace_id, span_id="b", status="running")
    assert detail(api, key, trace_id)["status"] == "running"
    add_span(api, key, trace_id, span_id="c", status="error")
    assert detail(api, key, trace_id)["status"] == "error"


def test_span_metadata_is_nested(api, key):
    trace_id = new_trace(api, key)
    meta = {"a": {"b": {"c": [1, 2, {"d": "e"}]}}}
    add_span(api, key, trace_id, span_id="s", metadata=meta)
    assert detail(api, key, trace_id)["spans"][0]["metadata"] == meta


def test_huge_token_counts_in_one_trace_do_not_break_its_totals(api, key):
    # Each count is valid on its own; their sum exceeds a 64-bit integer.
    trace_id = new_trace(api, key)
    response = add_spans(api, key, trace_id, [{"name": "s", "tokens_in": 2**62, "tokens_out": 2**62}] * 2)
    assert response.status_code == 201, response.content
    assert detail(api, key, trace_id)["span_count"] == 2


def test_costs_are_capped_so_that_totals_stay_finite(api, key):
    trace_id = new_trace(api, key)
    assert add_spans(api, key, trace_id, [{"name": "s", "cost_usd": 1e12}] * 2).status_code == 201
    assert detail(api, key, trace_id)["cost_usd"] == 2e12
    messages = fields(add_spans(api, key, trace_id, [{"name": "s", "cost_usd": 1e308}] * 2))
    assert messages == [
        '[0] "cost_usd" must be less than or equal to 1000000000000',
        '[1] "cost_usd" must be less than or equal to 1000000000000',
    ]
    assert api.get(TRACES, key=key).status_code == 200


# --- Ending a span (PATCH) ---


def test_end_a_span_like_the_sdk(api, key):
    trace_id = new_trace(api, key)
    add_span(api, key, trace_id, span_id="s", status="running", start_time=T0)
    assert detail(api, key, trace_id)["status"] == "running"
    before = time.time() * 1000
    response = patch(api, key, trace_id, "s", {"tokens_in": 7, "tokens_out": 9, "status": "ok"})
    after = time.time() * 1000
    assert response.status_code == 200
    span = response.json()
    assert (span["span_id"], span["status"], span["tokens_in"], span["tokens_out"]) == ("s", "ok", 7, 9)
    assert before - 1 <= span["end_time"] <= after + 1
    assert span["start_time"] == T0
    assert api.get(f"{TRACES}/{trace_id}/spans/s", key=key).json() == span

    body = detail(api, key, trace_id)
    assert (body["tokens_in"], body["tokens_out"], body["status"]) == (7, 9, "ok")
    assert body["end_time"] == span["end_time"]
    assert body["duration_ms"] == pytest.approx(span["end_time"] - T0, abs=0.01)
    assert AuditLog.objects.filter(action="trace:span:update", target_id="s").count() == 1


def test_end_a_span_with_an_explicit_end_time_and_error(api, key):
    trace_id = new_trace(api, key)
    add_span(api, key, trace_id, span_id="s", status="running", start_time=T0, tokens_in=3)
    span = patch(api, key, trace_id, "s", {"end_time": T0 + 2500.5, "status": "error"}).json()
    assert (span["end_time"], span["status"], span["tokens_in"]) == (T0 + 2500.5, "error", 3)
    body = detail(api, key, trace_id)
    assert (body["error_count"], body["status"], body["duration_ms"]) == (1, "error", 2500.5)


def test_ending_a_running_span_without_a_status_makes_it_ok(api, key):
    trace_id = new_trace(api, key)
    add_span(api, key, trace_id, span_id="s", status="running")
    assert patch(api, key, trace_id, "s", {}).json()["status"] == "ok"


def test_ending_prices_a_known_model(api, key):
    trace_id = new_trace(api, key)
    add_span(api, key, trace_id, span_id="s", status="running", model="gpt-4o-mini", start_time=T0)
    span = patch(api, key, trace_id, "s", {"tokens_in": 1000, "tokens_out": 500}).json()
    assert span["cost_usd"] == pytest.approx((1000 * MINI_IN + 500 * MINI_OUT) / 1e6)
    assert detail(api, key, trace_id)["cost_usd"] == pytest.approx(span["cost_usd"])


def test_ending_keeps_a_supplied_cost(api, key):
    trace_id = new_trace(api, key)
    for model in ("gpt-4o-mini", "my-own-model"):
        add_span(api, key, trace_id, span_id=model, status="running", model=model, tokens_in=1, cost_usd=0.5)
        span = patch(api, key, trace_id, model, {"tokens_in": 1000, "tokens_out": 500, "status": "ok"}).json()
        assert span["cost_usd"] == 0.5, model
    assert detail(api, key, trace_id)["cost_usd"] == 1.0


@pytest.mark.parametrize(
    "body",
    [
        {"status": "finished"},
        {"tokens_in": -1},
        {"tokens_out": "5"},
        {"end_time": "now"},
        {"end_time": -5},
        {"cost_usd": True},
        {"metadata": {f"k{i}": i for i in range(51)}},
    ],
)
def test_invalid_span_ends_are_422_and_change_nothing(api, key, body):
    trace_id = new_trace(api, key)
    add_span(api, key, trace_id, span_id="s", status="running")
    fields(patch(api, key, trace_id, "s", body))
    span = api.get(f"{TRACES}/{trace_id}/spans/s", key=key).json()
    assert (span["status"], span["end_time"], span["tokens_in"]) == ("running", None, None)


def test_ending_an_unknown_span_is_a_404(api, key):
    trace_id = new_trace(api, key)
    response = patch(api, key, trace_id, "nope", {"status": "ok"})
    assert response.status_code == 404
    assert response.json()["error"] == "Span not found"


# --- Delete ---


def test_delete_a_trace(api, key):
    trace_id = new_trace(api, key)
    keep = new_trace(api, key)
    add_spans(api, key, trace_id, [{"name": "a"}, {"name": "b"}])
    add_span(api, key, keep, span_id="kept")
    run_id = api.post("/v1/runs", key=key, json={"workflow_name": "w", "trace_id": trace_id}).json()["run_id"]

    response = api.delete(f"{TRACES}/{trace_id}", key=key)
    assert response.status_code == 204
    assert response.content == b""
    assert api.get(f"{TRACES}/{trace_id}", key=key).status_code == 404
    assert api.get(f"{TRACES}/{trace_id}", key=key).json()["error"] == "Trace not found"
    assert list(Span.objects.values_list("span_id", flat=True)) == ["kept"]
    run = api.get(f"/v1/runs/{run_id}", key=key)
    assert run.status_code == 200
    assert run.json()["trace_id"] is None
    assert Run.objects.get(run_id=run_id).trace_id is None
    assert AuditLog.objects.filter(action="delete_trace", target_id=trace_id).count() == 1
    again = api.delete(f"{TRACES}/{trace_id}", key=key)
    assert again.status_code == 404
    assert again.json()["error"] == "Trace not found"
    # The id is free again.
    assert new_trace(api, key, trace_id=trace_id) == trace_id


def test_get_an_unknown_trace_is_a_404(api, key):
    response = api.get(f"{TRACES}/{uuid.uuid4()}", key=key)
    assert response.status_code == 404
    assert response.json() == {**response.json(), "error": "Trace not found", "code": "NOT_FOUND"}


# --- Scopes ---


def test_a_read_only_key_cannot_write(api, key, make_key):
    read = make_key("read")[1]
    trace_id = new_trace(api, key)
    add_span(api, key, trace_id, span_id="s", status="running")
    for method, path, body in [
        ("POST", TRACES, {}),
        ("POST", f"{TRACES}/{trace_id}/spans", {"name": "x"}),
        ("PATCH", f"{TRACES}/{trace_id}/spans/s", {"status": "ok"}),
        ("DELETE", f"{TRACES}/{trace_id}", None),
    ]:
        response = api.request(method, path, key=read, json=body)
        assert response.status_code == 403, (method, path)
        assert response.json()["code"] == "FORBIDDEN"
    assert Trace.objects.count() == 1
    assert list(Span.objects.values_list("span_id", "status")) == [("s", "running")]
    assert api.get(f"{TRACES}/{trace_id}", key=read).status_code == 200
    assert api.get(f"{TRACES}/{trace_id}/spans/s", key=read).status_code == 200
    assert api.get(TRACES, key=read).status_code == 200


def test_an_ingest_key_writes_but_cannot_read(api, make_key):
    ingest = make_key("ingest")[1]
    trace_id = new_trace(api, ingest)
    add_span(api, ingest, trace_id, span_id="s", status="running")
    assert add_spans(api, ingest, trace_id, [{"name": "a"}, {"name": "b"}]).status_code == 201
    assert patch(api, ingest, trace_id, "s", {"status": "ok"}).status_code == 200
    for path in (TRACES, f"{TRACES}/{trace_id}", f"{TRACES}/{trace_id}/spans/s"):
        assert api.get(path, key=ingest).status_code == 403, path
    assert Trace.objects.get().span_count == 3


def test_no_key_is_a_401(api):
    assert api.post(TRACES, json={}).status_code == 401
    assert api.get(TRACES).status_code == 401
    assert not Trace.objects.exists()
