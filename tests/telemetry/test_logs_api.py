"""``/v1/logs``: one row per LLM call (upstream §2.4), plus batches, costs, filters and keyset pages."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from django.db import transaction

from telemetry.models import LogRecord
from telemetry.rollups import rebuild_rollups
from tenancy.models import AuditLog

LOGS = "/v1/logs"
LOG_FIELDS = {
    "id",
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
}
# The book's list price of gpt-4o-mini, USD per million tokens: input, cached input, output.
MINI_IN, MINI_CACHED, MINI_OUT = 0.15, 0.075, 0.60


@pytest.fixture
def key(make_key) -> str:
    return make_key("read,write")[1]


def post(api, key: str, **body):
    return api.post(LOGS, key=key, json={"prompt_name": "greet", "version_tag": "1.0.0", **body})


def log(api, key: str, **body) -> int:
    response = post(api, key, **body)
    assert response.status_code == 202, response.content
    return response.json()["id"]


def listed(api, key: str, query: str = "") -> list[dict]:
    response = api.get(f"{LOGS}?limit=100{query}", key=key)
    assert response.status_code == 200, response.content
    return response.json()["items"]


def fetch(api, key: str, log_id: int) -> dict:
    found = [item for item in listed(api, key) if item["id"] == log_id]
    assert len(found) == 1
    return found[0]


def fields(response) -> list[str]:
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["code"] == "VALIDATION_FAILED"
    assert body["error"] == "Validation failed"
    assert body["detailsType"] == "fields"
    return body["details"]["fields"]


def set_time(log_id: int, when: datetime) -> None:
    LogRecord.objects.filter(pk=log_id).update(created_at=when)


# --- Ingest: one log ---


def test_post_answers_202_accepted_with_the_id(api, key):
    response = post(api, key)
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"id", "status"}
    assert body["status"] == "accepted"
    assert isinstance(body["id"], int)
    record = LogRecord.objects.get(pk=body["id"])
    assert (record.workspace_id, record.prompt_name, record.version_tag) == ("default", "greet", "1.0.0")


def test_every_field_round_trips(api, key):
    metadata = {"env": "prod", "nested": {"deep": {"list": [1, "two", None]}, "flag": True}, "n": 1.5}
    log_id = log(
        api,
        key,
        provider="ollama",
        model="llama3.1:8b",
        tokens_in=120,
        tokens_out=45,
        cached_tokens=100,
        reasoning_tokens=7,
        latency_ms=830,
        cost_usd=0.0012,
        metadata=metadata,
        ollama_options={"temperature": 0.2, "num_ctx": 4096},
        ollama_keep_alive="5m",
        ollama_format={"type": "object", "properties": {"answer": {"type": "string"}}},
        session_id="sess-42",
        user_id="user@example.com",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        span_id="00f067aa0ba902b7",
        run_id="r_nightly-1",
        some_extra_field="accepted and ignored",
    )
    item = fetch(api, key, log_id)
    assert set(item) == LOG_FIELDS
    assert item == {
        **item,
        "prompt_name": "greet",
        "version_tag": "1.0.0",
        "provider": "ollama",
        "model": "llama3.1:8b",
        "tokens_in": 120,
        "tokens_out": 45,
        "cached_tokens": 100,
        "reasoning_tokens": 7,
        "latency_ms": 830,
        "cost_usd": 0.0012,
        "cost_source": "supplied",
        "metadata": metadata,
        "ollama_options": {"temperature": 0.2, "num_ctx": 4096},
        "ollama_keep_alive": "5m",
        "ollama_format": {"type": "object", "properties": {"answer": {"type": "string"}}},
        "session_id": "sess-42",
        "user_id": "user@example.com",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
        "run_id": "r_nightly-1",
        "workspace_id": "default",
        "status": "ok",
        "error_code": None,
    }
    assert abs(item["created_at"] - datetime.now(UTC).timestamp()) < 60


def test_a_string_ollama_format_round_trips(api, key):
    assert fetch(api, key, log(api, key, ollama_format="json"))["ollama_format"] == "json"


def test_a_minimal_log_has_nulls_and_empty_metadata(api, key):
    item = fetch(api, key, log(api, key))
    for name in (
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
        "error_code",
        "trace_id",
        "span_id",
        "run_id",
        "session_id",
        "user_id",
    ):
        assert item[name] is None, name
    assert item["metadata"] == {}
    assert item["status"] == "ok"


def test_zeros_are_stored_as_zero_not_null(api, key):
    item = fetch(
        api,
        key,
        log(
            api,
            key,
            model="my-own-model",
            tokens_in=0,
            tokens_out=0,
            cached_tokens=0,
            reasoning_tokens=0,
            latency_ms=0,
            cost_usd=0,
        ),
    )
    for name in ("tokens_in", "tokens_out", "cached_tokens", "reasoning_tokens", "latency_ms", "cost_usd"):
        assert item[name] == 0, name
    assert item["cost_source"] == "supplied"


def test_whole_floats_are_accepted_as_counts(api, key):
    item = fetch(api, key, log(api, key, tokens_in=10.0, latency_ms=5.0))
    assert (item["tokens_in"], item["latency_ms"]) == (10, 5)


def test_the_largest_counts_are_accepted(api, key):
    biggest = 2**63 - 1
    item = fetch(api, key, log(api, key, tokens_in=biggest, latency_ms=biggest))
    assert (item["tokens_in"], item["latency_ms"]) == (biggest, biggest)


def test_huge_counts_in_the_same_hour_do_not_break_ingest(api, key):
    # Each count is valid on its own; their sums (hourly rollups) exceed a 64-bit integer.
    for _ in range(2):
        log(api, key, tokens_in=2**62, tokens_out=2**62, latency_ms=2**62)
    assert LogRecord.objects.count() == 2


def test_huge_counts_in_one_batch_do_not_break_ingest(api, key):
    huge = {"prompt_name": "p", "version_tag": "1", "tokens_in": 2**62, "latency_ms": 2**62}
    response = api.post(LOGS, key=key, json=[huge, huge])
    assert response.status_code == 202, response.content
    assert LogRecord.objects.count() == 2


# --- Status and error code ---


@pytest.mark.parametrize(
    ("body", "status", "error_code"),
    [
        ({}, "ok", None),
        ({"status": "error"}, "error", None),
        ({"status": "ok", "metadata": {"error": "boom"}, "http_status": 503}, "ok", "503"),
        ({"status": "error", "error_code": "E42"}, "error", "E42"),
        ({"metadata": {"error": "boom"}}, "error", None),
        ({"metadata": {"error": True}}, "error", None),
        ({"metadata": {"error": {"code": "rate_limited", "message": "slow down"}}}, "error", "rate_limited"),
        ({"metadata": {"error": {"code": 429}}}, "error", "429"),
        ({"metadata": {"error": False}}, "ok", None),
        ({"metadata": {"error": ""}}, "ok", None),
        ({"metadata": {"error": None}}, "ok", None),
        ({"metadata": {"error": {}}}, "ok", None),
        ({"http_status": 500}, "error", "500"),
        ({"http_status": 503}, "error", "503"),
        ({"http_status": 499}, "ok", None),
        ({"http_status": 200}, "ok", None),
        ({"http_status": 502, "error_code": "upstream"}, "error", "upstream"),
        ({"metadata": {"error": {"code": "inner"}}, "error_code": "outer"}, "error", "outer"),
        ({"metadata": {"error": {"code": "inner"}}, "http_status": 503}, "error", "inner"),
    ],
)
def test_status_and_error_code_derivation(api, key, body, status, error_code):
    item = fetch(api, key, log(api, key, **body))
    assert (item["status"], item["error_code"]) == (status, error_code)


def test_an_invalid_status_is_a_422(api, key):
    messages = fields(post(api, key, status="failed"))
    assert any('"status"' in m for m in messages), messages
    assert not LogRecord.objects.exists()


# --- Cost ---


def test_a_supplied_cost_wins(api, key):
    item = fetch(api, key, log(api, key, model="gpt-4o-mini", tokens_in=1000, tokens_out=500, cost_usd=0.5))
    assert (item["cost_usd"], item["cost_source"]) == (0.5, "supplied")


def test_cost_is_computed_from_the_price_book(api, key):
    item = fetch(
        api, key, log(api, key, provider="openai", model="gpt-4o-mini", tokens_in=1000, tokens_out=500)
    )
    assert item["cost_source"] == "computed"
    assert item["cost_usd"] == pytest.approx((1000 * MINI_IN + 500 * MINI_OUT) / 1e6)


def test_cached_tokens_are_priced_at_the_cached_rate(api, key):
    item = fetch(
        api,
        key,
        log(
            api,
            key,
            model="gpt-4o-mini",
            tokens_in=1000,
            tokens_out=500,
            cached_tokens=400,
            reasoning_tokens=100,
        ),
    )
    assert item["cost_source"] == "computed"
    # 600 uncached + 400 cached input; reasoning tokens are part of the output, at the output rate.
    assert item["cost_usd"] == pytest.approx((600 * MINI_IN + 400 * MINI_CACHED + 500 * MINI_OUT) / 1e6)


def test_zero_tokens_of_a_known_model_cost_zero(api, key):
    item = fetch(api, key, log(api, key, model="gpt-4o-mini", tokens_in=0, tokens_out=0))
    assert (item["cost_usd"], item["cost_source"]) == (0, "computed")


@pytest.mark.parametrize(
    "body",
    [
        {"model": "my-private-finetune-xyz", "tokens_in": 1000, "tokens_out": 500},
        {"tokens_in": 1000, "tokens_out": 500},
        {"model": "gpt-4o-mini"},
    ],
)
def test_cost_is_unknown_without_a_price_or_tokens(api, key, body):
    item = fetch(api, key, log(api, key, **body))
    assert item["cost_usd"] is None
    assert item["cost_source"] is None


def test_telemetry_is_never_refused_for_money(api, key):
    batch = [
        {"prompt_name": "pricey", "version_tag": "1.0.0", "model": "gpt-4o-mini", "cost_usd": 50.0}
    ] * 1000
    for _ in range(10):
        response = api.post(LOGS, key=key, json=batch)
        assert response.status_code == 202, response.content
    assert LogRecord.objects.filter(prompt_name="pricey").count() == 10_000
    # $500,000 logged this month, and still accepted, including a computed cost.
    log(api, key, model="gpt-4o-mini", tokens_in=10**9, tokens_out=10**9)
    log(api, key, cost_usd=1e12)
    assert LogRecord.objects.count() == 10_002


# --- Batches ---


def test_a_batch_of_three(api, key):
    batch = [{"prompt_name": f"p{i}", "version_tag": "1.0.0", "tokens_in": i} for i in range(3)]
    response = api.post(LOGS, key=key, json=batch)
    assert response.status_code == 202
    body = response.json()
    assert body["count"] == 3
    assert len(body["ids"]) == 3
    assert all(isinstance(i, int) for i in body["ids"])
    stored = {r.pk: (r.prompt_name, r.tokens_in) for r in LogRecord.objects.all()}
    assert stored == {body["ids"][i]: (f"p{i}", i) for i in range(3)}


def test_a_batch_of_one_thousand_is_accepted(api, key):
    batch = [{"prompt_name": "bulk", "version_tag": "1.0.0"}] * 1000
    response = api.post(LOGS, key=key, json=batch)
    assert response.status_code == 202
    assert response.json()["count"] == 1000
    assert LogRecord.objects.count() == 1000


def test_a_batch_of_1001_is_a_422_and_stores_nothing(api, key):
    batch = [{"prompt_name": "bulk", "version_tag": "1.0.0"}] * 1001
    messages = fields(api.post(LOGS, key=key, json=batch))
    assert any("1000" in m for m in messages), messages
    assert not LogRecord.objects.exists()


def test_one_invalid_item_fails_the_whole_batch(api, key):
    batch = [
        {"prompt_name": "a", "version_tag": "1.0.0"},
        {"prompt_name": "b", "version_tag": "1.0.0", "tokens_in": "many"},
        {"version_tag": "1.0.0", "latency_ms": -1},
    ]
    messages = fields(api.post(LOGS, key=key, json=batch))
    assert '[1] "tokens_in" must be an integer' in messages
    assert '[2] "prompt_name" is required' in messages
    assert any(m.startswith("[2]") and "latency_ms" in m for m in messages), messages
    assert not any(m.startswith("[0]") for m in messages)
    assert not LogRecord.objects.exists()


@pytest.mark.parametrize("batch", [[], [1, 2], [{"prompt_name": "a", "version_tag": "1"}, "x"], [[]]])
def test_malformed_batches_are_422(api, key, batch):
    fields(api.post(LOGS, key=key, json=batch))
    assert not LogRecord.objects.exists()


# --- Bad input ---


def test_fifty_metadata_keys_are_fine_and_51_are_not(api, key):
    log(api, key, metadata={f"k{i}": i for i in range(50)})
    messages = fields(post(api, key, metadata={f"k{i}": i for i in range(51)}))
    assert messages == ["metadata cannot contain more than 50 keys"]
    assert LogRecord.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt_name": None}, "prompt_name"),
        ({"version_tag": None}, "version_tag"),
        ({"prompt_name": ""}, "prompt_name"),
        ({"prompt_name": 5}, "prompt_name"),
        ({"prompt_name": "p" * 129}, "prompt_name"),
        ({"version_tag": "v" * 65}, "version_tag"),
        ({"provider": "p" * 65}, "provider"),
        ({"model": "m" * 129}, "model"),
        ({"model": ["gpt"]}, "model"),
        ({"tokens_in": "5"}, "tokens_in"),
        ({"tokens_in": 1.5}, "tokens_in"),
        ({"tokens_in": True}, "tokens_in"),
        ({"tokens_in": -1}, "tokens_in"),
        ({"tokens_out": [1]}, "tokens_out"),
        ({"tokens_out": 2**63}, "tokens_out"),
        ({"tokens_in": 10**30}, "tokens_in"),
        ({"tokens_in": 1e300}, "tokens_in"),
        ({"cached_tokens": -5}, "cached_tokens"),
        ({"reasoning_tokens": "7"}, "reasoning_tokens"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"latency_ms": "fast"}, "latency_ms"),
        ({"cost_usd": True}, "cost_usd"),
        ({"cost_usd": "0.5"}, "cost_usd"),
        ({"cost_usd": "NaN"}, "cost_usd"),
        ({"cost_usd": "Infinity"}, "cost_usd"),
        ({"cost_usd": -0.01}, "cost_usd"),
        ({"cost_usd": 1e12 + 1}, "cost_usd"),
        ({"cost_usd": 1e308}, "cost_usd"),
        ({"cost_usd": {"usd": 1}}, "cost_usd"),
        ({"metadata": "text"}, "metadata"),
        ({"metadata": [1, 2]}, "metadata"),
        ({"ollama_options": "fast"}, "ollama_options"),
        ({"ollama_keep_alive": "k" * 17}, "ollama_keep_alive"),
        ({"ollama_format": 5}, "ollama_format"),
        ({"ollama_format": ["json"]}, "ollama_format"),
        ({"http_status": "500"}, "http_status"),
        ({"http_status": -1}, "http_status"),
        ({"trace_id": "a b"}, "trace_id"),
        ({"trace_id": "t" * 200}, "trace_id"),
        ({"trace_id": 123}, "trace_id"),
        ({"span_id": "s/1"}, "span_id"),
        ({"run_id": "r\n1"}, "run_id"),
        ({"session_id": 5}, "session_id"),
        ({"user_id": "u" * 257}, "user_id"),
        ({"error_code": "e" * 65}, "error_code"),
    ],
)
def test_wrong_values_are_422_and_store_nothing(api, key, body, field):
    messages = fields(post(api, key, **body))
    assert any(field in m for m in messages), messages
    assert not LogRecord.objects.exists()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"prompt_name": "p", "version_tag": "1", "tokens_in": 1e400}', "tokens_in"),
        ('{"prompt_name": "p", "version_tag": "1", "latency_ms": -1e400}', "latency_ms"),
        ('{"prompt_name": "p", "version_tag": "1", "http_status": 1e400}', "http_status"),
        ('{"prompt_name": "p", "version_tag": "1", "cost_usd": 1e400}', "cost_usd"),
        ('{"prompt_name": "p", "version_tag": "1", "cost_usd": ' + "9" * 400 + "}", "cost_usd"),
    ],
)
def test_numbers_beyond_a_double_are_422(api, key, raw, field):
    messages = fields(api.post(LOGS, key=key, data=raw))
    assert any(field in m for m in messages), messages
    assert not LogRecord.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [
        '{"prompt_name": "p", "version_tag": "1", "cost_usd": NaN}',
        '{"prompt_name": "p", "version_tag": "1", "cost_usd": Infinity}',
        '{"prompt_name": "p", "version_tag": "1"',
        "{'prompt_name': 'p'}",
        "not json",
    ],
)
def test_invalid_json_is_a_400(api, key, raw):
    response = api.post(LOGS, key=key, data=raw)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "BAD_REQUEST"
    assert body["message"] == "Invalid JSON body"
    assert not LogRecord.objects.exists()


@pytest.mark.parametrize("raw", ["null", '"a string"', "42", "true"])
def test_a_body_that_is_not_an_object_or_array_is_a_422(api, key, raw):
    fields(api.post(LOGS, key=key, data=raw))
    assert not LogRecord.objects.exists()


def test_an_empty_body_is_a_422(api, key):
    messages = fields(api.post(LOGS, key=key))
    assert '"prompt_name" is required' in messages
    assert '"version_tag" is required' in messages


# --- Listing ---


def test_list_is_newest_first_with_the_page_envelope(api, key):
    ids = [log(api, key, prompt_name=f"p{i}") for i in range(5)]
    body = api.get(f"{LOGS}?limit=2", key=key).json()
    assert set(body) == {"items", "total", "page", "limit", "totalPages", "nextCursor"}
    assert [i["id"] for i in body["items"]] == ids[::-1][:2]
    assert (body["total"], body["page"], body["limit"], body["totalPages"]) == (5, 1, 2, 3)
    assert isinstance(body["nextCursor"], str)
    third = api.get(f"{LOGS}?limit=2&page=3", key=key).json()
    assert [i["id"] for i in third["items"]] == [ids[0]]
    assert third["nextCursor"] is None
    beyond = api.get(f"{LOGS}?limit=2&page=9", key=key).json()
    assert beyond["items"] == []
    assert beyond["total"] == 5


def total(api, key: str) -> int:
    return api.get(f"{LOGS}?limit=1", key=key).json()["total"]


def test_the_total_follows_every_write_and_every_undo(api, key):
    # The unfiltered total is kept per process under the database's change token: it must move
    # with inserts, deletes and rolled-back writes, never serve a stale figure.
    assert total(api, key) == 0
    log(api, key)
    assert total(api, key) == total(api, key) == 1
    api.post(LOGS, key=key, json=[{"prompt_name": "a", "version_tag": "1"}] * 3)
    assert total(api, key) == 4
    with pytest.raises(RuntimeError), transaction.atomic():
        api.post(LOGS, key=key, json=[{"prompt_name": "a", "version_tag": "1"}] * 2)
        assert total(api, key) == 6  # its own uncommitted writes
        raise RuntimeError("undo")
    assert total(api, key) == 4
    rebuild_rollups(workspace_id="default")
    LogRecord.objects.filter(workspace_id="default").delete()
    rebuild_rollups(workspace_id="default")
    assert total(api, key) == 0


def test_a_batch_lists_newest_first_by_id(api, key):
    ids = api.post(LOGS, key=key, json=[{"prompt_name": "a", "version_tag": "1"}] * 3).json()["ids"]
    assert [i["id"] for i in listed(api, key)] == sorted(ids, reverse=True)


def test_backdated_logs_list_by_time_not_by_id(api, key):
    old, new = log(api, key), log(api, key)
    set_time(new, datetime(2024, 1, 1, tzinfo=UTC))
    assert [i["id"] for i in listed(api, key)] == [old, new]
    assert listed(api, key)[1]["created_at"] == int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())


def test_the_default_limit_is_50(api, key):
    api.post(LOGS, key=key, json=[{"prompt_name": "a", "version_tag": "1"}] * 51)
    body = api.get(LOGS, key=key).json()
    assert (len(body["items"]), body["limit"], body["total"], body["totalPages"]) == (50, 50, 51, 2)


def test_an_empty_list(api, key):
    body = api.get(LOGS, key=key).json()
    assert (body["items"], body["total"], body["totalPages"], body["nextCursor"]) == ([], 0, 0, None)


@pytest.mark.parametrize(
    "query", ["page=0", "page=-1", "page=abc", "limit=0", "limit=101", "limit=x", "limit=2.5", "page=1e3"]
)
def test_bad_page_or_limit_is_a_422(api, key, query):
    fields(api.get(f"{LOGS}?{query}", key=key))


def test_filters(api, key):
    a = log(api, key, prompt_name="alpha", version_tag="1.0.0", model="gpt-4o", provider="openai")
    b = log(
        api,
        key,
        prompt_name="alpha",
        version_tag="2.0.0",
        model="claude-3-5-haiku-20241022",
        provider="anthropic",
        status="error",
        session_id="s1",
        user_id="u1",
    )
    c = log(
        api, key, prompt_name="beta", version_tag="1.0.0", model="gpt-4o", provider="azure", session_id="s1"
    )
    d = log(api, key, prompt_name="gamma-alphabet", version_tag="1.0.0", user_id="u1", http_status=503)

    def ids(query: str) -> list[int]:
        return [i["id"] for i in listed(api, key, "&" + query)]

    assert ids("prompt=alpha") == [b, a]
    assert ids("prompt_name=alpha") == [b, a]
    assert ids("prompt=alpha&version=1.0.0") == [a]
    assert ids("version=1.0.0") == [d, c, a]
    assert ids("model=gpt-4o") == [c, a]
    assert ids("provider=anthropic") == [b]
    assert ids("status=error") == [d, b]
    assert ids("status=ok") == [c, a]
    assert ids("session=s1") == [c, b]
    assert ids("user=u1") == [d, b]
    assert ids("q=alpha") == [d, b, a]
    assert ids("q=ALPHA") == [d, b, a]
    assert ids("q=haiku") == [b]
    assert ids("q=nothing-like-it") == []
    assert ids("prompt=nobody") == []
    # Filters combine with the page envelope's total.
    body = api.get(f"{LOGS}?model=gpt-4o&limit=1", key=key).json()
    assert (body["total"], body["totalPages"], [i["id"] for i in body["items"]]) == (2, 2, [c])


def test_time_range_in_unix_seconds_and_iso(api, key):
    times = [datetime(2025, 3, day, 12, tzinfo=UTC) for day in (1, 2, 3, 4)]
    ids = [log(api, key) for _ in times]
    for log_id, when in zip(ids, times, strict=True):
        set_time(log_id, when)

    def got(query: str) -> list[int]:
        return [i["id"] for i in listed(api, key, "&" + query)]

    second, third = int(times[1].timestamp()), int(times[2].timestamp())
    assert got(f"from={second}") == ids[:0:-1]
    assert got(f"to={second}") == [ids[1], ids[0]]
    assert got(f"from={second}&to={third}") == [ids[2], ids[1]]
    assert got("from=2025-03-02T12:00:00Z&to=2025-03-03T12:00:00Z") == [ids[2], ids[1]]
    assert got("from=2025-03-02T13:00:00%2B01:00") == ids[:0:-1]
    assert got("from=2025-03-03") == [ids[3], ids[2]]
    assert got(f"from={second + 0.5}") == [ids[3], ids[2]]
    assert got("to=0") == []


@pytest.mark.parametrize(
    "query",
    ["status=failed", "from=yesterday", "to=2025-13-45", "from=nan", "to=1e30", f"q={'x' * 257}"],
)
def test_a_bad_filter_value_is_a_422(api, key, query):
    log(api, key)
    fields(api.get(f"{LOGS}?{query}", key=key))


# --- Keyset pages ---


def walk(api, key: str, query: str = "", limit: int = 3) -> list[dict]:
    seen, cursor = [], ""
    for _ in range(200):
        response = api.get(f"{LOGS}?limit={limit}&cursor={cursor}{query}", key=key)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"items", "limit", "nextCursor"}
        assert len(body["items"]) <= limit
        seen += body["items"]
        if body["nextCursor"] is None:
            return seen
        cursor = body["nextCursor"]
    raise AssertionError("the cursor never ended")


def test_keyset_walk_returns_every_log_once_newest_first(api, key):
    singles = [log(api, key, model="m" if i % 2 else "n") for i in range(4)]
    batch = api.post(LOGS, key=key, json=[{"prompt_name": "b", "version_tag": "1", "model": "m"}] * 5).json()
    old = log(api, key, model="m")
    set_time(old, datetime(2020, 1, 1, tzinfo=UTC))
    same_time = [log(api, key) for _ in range(2)]
    for log_id in same_time:
        set_time(log_id, datetime(2021, 6, 1, 8, 30, tzinfo=UTC))

    walked = [i["id"] for i in walk(api, key)]
    assert len(walked) == len(set(walked)) == 12
    assert set(walked) == {*singles, *batch["ids"], old, *same_time}
    assert walked == [i["id"] for i in listed(api, key)]
    assert walked[-3:] == [same_time[1], same_time[0], old]
    times = [i["created_at"] for i in walk(api, key, limit=1)]
    assert times == sorted(times, reverse=True)

    filtered = [i["id"] for i in walk(api, key, "&model=m", limit=2)]
    assert filtered == [i["id"] for i in listed(api, key, "&model=m")]
    assert len(filtered) == 2 + 5 + 1


def test_keyset_continues_from_a_page_mode_cursor(api, key):
    ids = [log(api, key) for _ in range(5)]
    first = api.get(f"{LOGS}?limit=2", key=key).json()
    rest = api.get(f"{LOGS}?limit=50&cursor={first['nextCursor']}", key=key).json()
    assert [i["id"] for i in first["items"] + rest["items"]] == ids[::-1]


def test_an_exact_last_page_has_no_next_cursor(api, key):
    for _ in range(4):
        log(api, key)
    first = api.get(f"{LOGS}?limit=2&cursor=", key=key).json()
    second = api.get(f"{LOGS}?limit=2&cursor={first['nextCursor']}", key=key).json()
    assert len(second["items"]) == 2
    assert second["nextCursor"] is None


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "%25%25%25", "MTIz", "bm90fGEtbnVtYmVy", "MjAyNS0wMS0wMVQwMDowMDowMHwx", "w6k"],
)
def test_a_garbage_cursor_is_a_422(api, key, cursor):
    log(api, key)
    messages = fields(api.get(f"{LOGS}?cursor={cursor}", key=key))
    assert any("cursor" in m for m in messages), messages


def cursor_of(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize("path", [LOGS, "/v1/traces", "/v1/runs"])
@pytest.mark.parametrize(
    "raw", ["0001-01-01T00:00:00+14:00|1", "9999-12-31T23:59:59-14:00|1", "2025-01-01T00:00:00+00:00|1|2"]
)
def test_a_forged_cursor_out_of_range_is_a_422(api, key, path, raw):
    log(api, key)
    messages = fields(api.get(f"{path}?cursor={cursor_of(raw)}", key=key))
    assert any("cursor" in m for m in messages), messages


@pytest.mark.parametrize("path", [LOGS, "/v1/traces", "/v1/runs"])
def test_a_forged_cursor_past_every_id_is_an_ordinary_page(api, key, path):
    log(api, key)
    response = api.get(f"{path}?cursor={cursor_of('2000-01-01T00:00:00+00:00|' + '9' * 30)}", key=key)
    assert response.status_code == 200
    assert response.json() == {"items": [], "limit": 50, "nextCursor": None}


def test_keyset_limit_is_validated(api, key):
    fields(api.get(f"{LOGS}?cursor=&limit=101", key=key))


# --- Scopes and audit ---


def test_a_read_only_key_cannot_post(api, make_key):
    response = post(api, make_key("read")[1])
    assert response.status_code == 403
    assert response.json()["code"] == "FORBIDDEN"
    assert not LogRecord.objects.exists()


def test_an_ingest_key_can_post_but_not_read(api, make_key):
    ingest = make_key("ingest")[1]
    assert post(api, ingest).status_code == 202
    assert api.post(LOGS, key=ingest, json=[{"prompt_name": "a", "version_tag": "1"}]).status_code == 202
    response = api.get(LOGS, key=ingest)
    assert response.status_code == 403
    assert response.json()["code"] == "FORBIDDEN"
    assert LogRecord.objects.count() == 2


def test_no_key_is_a_401(api):
    assert post(api, None).status_code == 401
    assert api.get(LOGS).status_code == 401
    assert api.get(LOGS, key="pm_" + "0" * 64).status_code == 401
    assert not LogRecord.objects.exists()


def test_ingest_is_not_audited(api, key):
    # The audit log records control-plane changes and deletions; a row per ingest request would
    # double the writes of the hot path (and upstream's buffered entries were lossy anyway).
    log(api, key, prompt_name="not-audited")
    api.post(LOGS, key=key, json=[{"prompt_name": "batch", "version_tag": "1.0.0"}] * 3)
    assert not AuditLog.objects.filter(action="log:create").exists()


def test_a_numeric_error_code_is_kept_as_text(api, key):
    log_id = log(api, key, prompt_name="p", version_tag="1.0.0", status="error", error_code=429)
    assert fetch(api, key, log_id)["error_code"] == "429"
