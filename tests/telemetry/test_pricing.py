"""Cost from the price book and workspace prices; re-pricing stored logs after a price change."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.utils import timezone

from telemetry import pricing, rollups
from telemetry.management.commands.recompute_costs import parse_since
from telemetry.models import CostSource, LogRecord, LogRollup, ModelPrice
from telemetry.pricing import compute_cost, find_price, prices_changed, recompute_costs

AT = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_prices():
    prices_changed()
    yield
    prices_changed()


def cost(
    model: str,
    tokens_in: int | None,
    tokens_out: int | None,
    *,
    workspace: str = "acme",
    at: datetime = AT,
    **kw,
) -> float | None:
    return compute_cost(
        workspace_id=workspace, model=model, tokens_in=tokens_in, tokens_out=tokens_out, at=at, **kw
    )


def price(workspace, model_pattern: str, input_: float, output: float, **kw) -> ModelPrice:
    row = ModelPrice.objects.create(
        workspace=workspace,
        model_pattern=model_pattern,
        input_per_mtok=input_,
        output_per_mtok=output,
        effective_from=kw.pop("effective_from", date(2020, 1, 1)),
        **kw,
    )
    prices_changed(row.workspace_id)
    return row


@pytest.fixture
def acme(workspace):
    return workspace("acme")


# --- the book -------------------------------------------------------------------------------------


def test_the_price_book_is_well_formed_and_covers_every_provider():
    data = json.loads(resources.files("telemetry").joinpath("data/prices.json").read_text())
    assert data["source"] and data["as_of"]
    items = pricing.parse_price_book(data)  # raises on a malformed entry
    assert len(items) >= len(data["prices"])
    seen = set()
    for entry in data["prices"]:
        key = (entry["model"].lower(), entry["effective_from"])
        assert key not in seen, f"duplicate price {key}"
        seen.add(key)
        for name in ("input", "output", "cached_input", "reasoning"):
            assert name in entry, f"{entry['model']} lacks {name}"
    providers = {entry["provider"] for entry in data["prices"]}
    for provider in ("openai", "anthropic", "google", "mistral", "cohere", "meta", "deepseek"):
        assert provider in providers


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "o1",
        "o3",
        "o3-mini",
        "o4-mini",
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "claude-3-5-sonnet-20241022",
        "claude-3-7-sonnet-20250219",
        "claude-3-5-haiku-20241022",
        "claude-opus-4-20250514",
        "claude-opus-4-1-20250805",
        "claude-sonnet-4-20250514",
        "claude-sonnet-4-5-20250929",
        "claude-haiku-4-5-20251001",
        "gemini-1.5-flash",
        "gemini-1.5-pro",
        "gemini-2.0-flash",
        "gemini-2.5-flash",
        "gemini-2.5-pro",
        "mistral-large-latest",
        "mistral-small-latest",
        "codestral-latest",
        "command-r",
        "command-r-plus",
        "command-a-03-2025",
        "llama-3.1-8b",
        "llama-3.1-70b",
        "llama-3.1-405b",
        "llama-3.3-70b",
        "deepseek-chat",
        "deepseek-reasoner",
    ],
)
def test_current_models_of_every_provider_have_a_price(acme, model):
    assert cost(model, 1000, 1000) > 0


# --- matching -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("logged", "as_"),
    [
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-2024-11-20", "gpt-4o"),
        ("GPT-4o", "gpt-4o"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet-20241022"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("openai/gpt-4o", "gpt-4o"),
        ("openai/gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("models/gemini-1.5-pro", "gemini-1.5-pro"),
        ("gemini-1.5-pro-002", "gemini-1.5-pro"),
        ("anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet-20241022"),
        ("deepseek/deepseek-chat", "deepseek-chat"),
    ],
)
def test_snapshots_aliases_and_provider_prefixes_match(acme, logged, as_):
    assert cost(logged, 1234, 567) == cost(as_, 1234, 567)


def test_a_longer_pattern_wins_over_a_shorter_one(acme):
    # A workspace's broad gpt-4o-* and narrower gpt-4o-mini-* both match gpt-4o-mini-2024-07-18.
    price(acme, "gpt-4o-*", 9.0, 9.0)
    price(acme, "gpt-4o-mini-*", 0.15, 0.6)
    assert cost("gpt-4o-mini-2024-07-18", 1_000_000, 0) == pytest.approx(0.15)
    assert cost("gpt-4o-2024-08-06", 1_000_000, 0) == pytest.approx(9.0)
    ModelPrice.objects.filter(workspace=acme).delete()
    prices_changed()
    # The same in the book: gpt-4o-mini-20* over gpt-4o-20*.
    assert cost("gpt-4o-mini-2024-07-18", 1_000_000, 0) == pytest.approx(0.15)
    assert cost("gpt-4o-2024-08-06", 1_000_000, 0) == pytest.approx(2.5)
    # An exact name beats every pattern: the May 2024 snapshot kept its launch price.
    assert cost("gpt-4o-2024-05-13", 1_000_000, 0) == pytest.approx(5.0)


def test_unknown_models_and_missing_tokens_have_no_cost(acme):
    assert cost("my-own-finetune", 100, 100) is None
    assert cost("", 100, 100) is None
    assert cost("gpt-4o", None, None) is None
    assert cost("gpt-4o", 0, 0) == 0.0
    assert cost("gpt-4o", None, 1_000_000) == pytest.approx(10.0)


# --- effective dates ------------------------------------------------------------------------------


def test_the_book_price_in_force_at_the_time_of_the_call(acme):
    # o3 launched at $10/$40 and was cut to $2/$8 on 2025-06-10.
    before = datetime(2025, 5, 1, tzinfo=UTC)
    after = datetime(2025, 7, 1, tzinfo=UTC)
    assert cost("o3", 1_000_000, 1_000_000, at=before) == pytest.approx(50.0)
    assert cost("o3", 1_000_000, 1_000_000, at=after) == pytest.approx(10.0)
    assert cost("o3", 1_000_000, 1_000_000, at=datetime(2025, 6, 10, tzinfo=UTC)) == pytest.approx(10.0)
    # Before a model's first known price: that first price (the best estimate there is).
    assert cost("o3", 1_000_000, 1_000_000, at=datetime(2024, 1, 1, tzinfo=UTC)) == pytest.approx(50.0)


def test_workspace_prices_apply_from_their_effective_date(acme):
    price(acme, "house-model", 1.0, 2.0, effective_from=date(2025, 1, 1))
    price(acme, "house-model", 3.0, 4.0, effective_from=date(2025, 6, 1))
    million = (1_000_000, 1_000_000)
    assert cost("house-model", *million, at=datetime(2025, 3, 1, tzinfo=UTC)) == pytest.approx(3.0)
    assert cost("house-model", *million, at=datetime(2025, 6, 1, 0, 0, tzinfo=UTC)) == pytest.approx(7.0)
    assert cost("house-model", *million, at=datetime(2026, 1, 1, tzinfo=UTC)) == pytest.approx(7.0)
    # Before the first workspace price there is none (a negotiated rate does not rewrite history).
    assert cost("house-model", *million, at=datetime(2024, 12, 31, tzinfo=UTC)) is None
    # ... and a workspace override of a book model falls back to the book before its date.
    price(acme, "gpt-4o", 0.0, 0.0, effective_from=date(2025, 9, 1))
    assert cost("gpt-4o", *million, at=datetime(2025, 8, 31, tzinfo=UTC)) == pytest.approx(12.5)
    assert cost("gpt-4o", *million, at=datetime(2025, 9, 1, tzinfo=UTC)) == 0.0


# --- cached and reasoning tokens ------------------------------------------------------------------


def test_cached_tokens_are_a_part_of_the_input_billed_at_the_cached_rate(acme):
    # gpt-4o: $2.50 input, $1.25 cached input, $10 output per million.
    # 600 uncached * 2.5 + 400 cached * 1.25 + 500 out * 10 = 1500 + 500 + 5000 = 7000 / 1e6
    assert cost("gpt-4o", 1000, 500, cached_tokens=400) == pytest.approx(0.007, abs=1e-12)
    # Without the cache: 1000 * 2.5 + 5000 = 7500 / 1e6.
    assert cost("gpt-4o", 1000, 500) == pytest.approx(0.0075, abs=1e-12)
    assert cost("gpt-4o", 1000, 500, cached_tokens=0) == pytest.approx(0.0075, abs=1e-12)
    # All input cached: 1000 * 1.25 + 5000.
    assert cost("gpt-4o", 1000, 500, cached_tokens=1000) == pytest.approx(0.00625, abs=1e-12)
    # claude-sonnet-4-5: $3 in, $0.30 cache read, $15 out: 2000*3 + 8000*0.3 + 100*15 = 9900.
    assert cost("claude-sonnet-4-5-20250929", 10_000, 100, cached_tokens=8000) == pytest.approx(
        0.0099, abs=1e-12
    )


def test_cached_tokens_of_a_model_without_cache_discount_cost_the_input_price(acme):
    # mistral-large: $2 / $6, no cached price: 1000 * 2 + 100 * 6 whether or not 400 were cached.
    assert cost("mistral-large-latest", 1000, 100, cached_tokens=400) == pytest.approx(0.0026, abs=1e-12)
    assert cost("mistral-large-latest", 1000, 100) == pytest.approx(0.0026, abs=1e-12)


def test_more_cached_than_input_tokens_are_counted_separately_never_twice(acme):
    # Anthropic-style usage (cache reads not included in input): 100 * 3 + 1000 * 0.3 + 10 * 15.
    assert cost("claude-sonnet-4-5", 100, 10, cached_tokens=1000) == pytest.approx(0.00075, abs=1e-12)


def test_reasoning_tokens_cost_the_output_price_by_default(acme):
    # o3 after the cut: $2 in, $8 out; 1500 of the 2000 output tokens were reasoning.
    at = datetime(2025, 7, 1, tzinfo=UTC)
    with_reasoning = cost("o3", 1000, 2000, reasoning_tokens=1500, at=at)
    assert with_reasoning == pytest.approx(0.018, abs=1e-12)  # 1000*2 + 2000*8 = 18000
    assert with_reasoning == cost("o3", 1000, 2000, at=at)


def test_reasoning_tokens_at_their_own_rate(acme):
    # The book: gemini-2.5-flash preview billed thinking at $3.50 against $0.60 for the answer.
    # 1000 * 0.15 + 600 * 0.60 + 400 * 3.50 = 150 + 360 + 1400 = 1910
    at = datetime(2025, 5, 1, tzinfo=UTC)
    assert cost("gemini-2.5-flash-preview-04-17", 1000, 1000, reasoning_tokens=400, at=at) == pytest.approx(
        0.00191, abs=1e-12
    )
    # A workspace price: $1 in, $2 out, $10 reasoning: 1000*1 + 400*2 + 600*10 = 7800.
    price(acme, "thinker", 1.0, 2.0, reasoning_per_mtok=10.0)
    assert cost("thinker", 1000, 1000, reasoning_tokens=600) == pytest.approx(0.0078, abs=1e-12)
    # Reasoning reported beside the output (more than it): each billed once, 1000 + 100*2 + 600*10.
    assert cost("thinker", 1000, 100, reasoning_tokens=600) == pytest.approx(0.0072, abs=1e-12)
    # Cached and reasoning together, with a cached price: 700*1 + 300*0.5 + 400*2 + 600*10 = 7650.
    price(acme, "thinker-2", 1.0, 2.0, cached_input_per_mtok=0.5, reasoning_per_mtok=10.0)
    assert cost("thinker-2", 1000, 1000, cached_tokens=300, reasoning_tokens=600) == pytest.approx(
        0.00765, abs=1e-12
    )


def test_long_context_tier(acme):
    # gemini-2.5-pro: $1.25/$10 up to 200k prompt tokens, $2.50/$15 for the whole call above.
    assert cost("gemini-2.5-pro", 100_000, 1000) == pytest.approx(0.135, abs=1e-12)
    assert cost("gemini-2.5-pro", 300_000, 1000) == pytest.approx(0.765, abs=1e-12)


# --- workspace prices -----------------------------------------------------------------------------


def test_a_workspace_price_wins_over_the_book_in_that_workspace_only(acme, workspace):
    workspace("other")
    price(acme, "gpt-4o", 1.0, 1.0)
    assert cost("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(2.0)
    assert cost("openai/gpt-4o", 1_000_000, 1_000_000) == pytest.approx(2.0)
    assert cost("gpt-4o", 1_000_000, 1_000_000, workspace="other") == pytest.approx(12.5)
    assert find_price(workspace_id="acme", model="gpt-4o", at=AT).source == "workspace"
    assert find_price(workspace_id="other", model="gpt-4o", at=AT).source == "book"


def test_workspace_patterns_exact_names_and_providers(acme):
    price(acme, "gpt-4o*", 1.0, 1.0)
    # A workspace pattern beats the book's exact name; a workspace exact name beats the pattern.
    assert cost("gpt-4o-mini", 1_000_000, 0) == pytest.approx(1.0)
    price(acme, "gpt-4o-mini", 0.5, 0.5)
    assert cost("gpt-4o-mini", 1_000_000, 0) == pytest.approx(0.5)
    # A price naming a provider applies to that provider's calls (and to calls naming none) only.
    price(acme, "llama-3.3-70b", 0.1, 0.1, provider="groq")
    assert cost("llama-3.3-70b", 1_000_000, 0, provider="groq") == pytest.approx(0.1)
    assert cost("llama-3.3-70b", 1_000_000, 0, provider="Groq") == pytest.approx(0.1)
    assert cost("llama-3.3-70b", 1_000_000, 0) == pytest.approx(0.1)
    assert cost("llama-3.3-70b", 1_000_000, 0, provider="together") == pytest.approx(0.88)
    # Between two workspace prices of a name, the one naming the caller's provider wins.
    price(acme, "llama-3.3-70b", 0.2, 0.2, provider="")
    assert cost("llama-3.3-70b", 1_000_000, 0, provider="groq") == pytest.approx(0.1)
    assert cost("llama-3.3-70b", 1_000_000, 0, provider="together") == pytest.approx(0.2)


def test_workspace_prices_are_cached_until_prices_changed(acme):
    assert cost("house-model", 1_000_000, 0) is None
    ModelPrice.objects.create(
        workspace=acme,
        model_pattern="house-model",
        input_per_mtok=1,
        output_per_mtok=1,
        effective_from=date(2020, 1, 1),
    )
    assert cost("house-model", 1_000_000, 0) is None  # this process still trusts what it read
    prices_changed("acme")
    assert cost("house-model", 1_000_000, 0) == pytest.approx(1.0)


def test_cached_workspace_prices_expire(acme, monkeypatch):
    assert cost("house-model", 1_000_000, 0) is None
    ModelPrice.objects.create(
        workspace=acme,
        model_pattern="house-model",
        input_per_mtok=1,
        output_per_mtok=1,
        effective_from=date(2020, 1, 1),
    )
    clock = pricing.time.monotonic() + pricing.WORKSPACE_PRICES_TTL_S + 1
    monkeypatch.setattr(pricing.time, "monotonic", lambda: clock)
    assert cost("house-model", 1_000_000, 0) == pytest.approx(1.0)


# --- recompute ------------------------------------------------------------------------------------


def log(workspace_id: str, model: str, *, at: datetime, cost_usd=None, source="", **kw) -> LogRecord:
    return LogRecord.objects.create(
        workspace_id=workspace_id,
        model=model,
        tokens_in=kw.pop("tokens_in", 1_000_000),
        tokens_out=kw.pop("tokens_out", 1_000_000),
        cost_usd=cost_usd,
        cost_source=source,
        created_at=at,
        **kw,
    )


@pytest.fixture
def stored_logs(acme, workspace):
    workspace("other")
    now = timezone.now()
    recent = now - timedelta(days=1)
    old = now - timedelta(days=60)
    computed = CostSource.COMPUTED
    return {
        "computed": log("acme", "gpt-4o", at=recent, cost_usd=12.5, source=computed),
        "same_time": log("acme", "gpt-4o-mini", at=recent, cost_usd=0.75, source=computed),
        "cached": log(
            "acme",
            "gpt-4o",
            at=recent + timedelta(seconds=1),
            cost_usd=11.25,
            source=computed,
            cached_tokens=1_000_000,
        ),
        "supplied": log("acme", "gpt-4o", at=recent, cost_usd=123.0, source=CostSource.SUPPLIED),
        "unpriced": log("acme", "house-model", at=recent, cost_usd=None, source=CostSource.UNKNOWN),
        "no_tokens": log("acme", "house-model", at=recent, tokens_in=None, tokens_out=None),
        "old": log("acme", "gpt-4o", at=old, cost_usd=12.5, source=computed),
        "other": log("other", "gpt-4o", at=recent, cost_usd=12.5, source=computed),
        "unchanged": log("acme", "claude-haiku-4-5", at=recent, cost_usd=6.0, source=computed),
    }


def test_recompute_reprices_computed_costs_and_never_supplied_ones(stored_logs, acme):
    price(acme, "gpt-4o*", 1.0, 2.0)
    price(acme, "house-model", 0.5, 0.5)
    since = timezone.now() - timedelta(days=30)
    calls = []
    changed = recompute_costs(
        since=since, workspace_id="acme", batch_size=2, progress=lambda *a: calls.append(a)
    )
    # computed, same_time (gpt-4o-mini matches gpt-4o*), cached, unpriced.
    assert changed == 4
    rows = {name: LogRecord.objects.get(pk=row.pk) for name, row in stored_logs.items()}
    assert rows["computed"].cost_usd == pytest.approx(3.0)
    assert rows["same_time"].cost_usd == pytest.approx(3.0)
    assert rows["cached"].cost_usd == pytest.approx(3.0)  # no cached price: input rate
    assert (rows["unpriced"].cost_usd, rows["unpriced"].cost_source) == (
        pytest.approx(1.0),
        CostSource.COMPUTED,
    )
    assert (rows["supplied"].cost_usd, rows["supplied"].cost_source) == (123.0, CostSource.SUPPLIED)
    assert rows["no_tokens"].cost_usd is None and rows["no_tokens"].cost_source == ""
    assert rows["old"].cost_usd == 12.5  # before --since
    assert rows["other"].cost_usd == 12.5  # another workspace
    assert rows["unchanged"].cost_usd == 6.0
    # Batches of two over five candidate rows (two share a timestamp): every row seen once.
    assert calls[-1] == (5, 4)
    assert [scanned for scanned, _ in calls] == [2, 4, 5]
    # Running it again changes nothing.
    assert recompute_costs(since=since, workspace_id="acme") == 0


def test_recompute_across_workspaces_and_when_a_price_disappears(stored_logs, acme):
    row = price(acme, "gpt-4o", 1.0, 1.0)
    since = timezone.now() - timedelta(days=30)
    assert recompute_costs(since=since) == 2  # acme's gpt-4o computed + cached; "other" already right
    assert LogRecord.objects.get(pk=stored_logs["other"].pk).cost_usd == 12.5
    row.delete()
    prices_changed("acme")
    ModelPrice.objects.create(
        workspace=acme,
        model_pattern="gpt-4o-mini",
        input_per_mtok=0,
        output_per_mtok=0,
        effective_from=date(2020, 1, 1),
    )
    # Back to the book for gpt-4o; gpt-4o-mini now free.
    assert recompute_costs(since=since, workspace_id="acme") == 3
    assert LogRecord.objects.get(pk=stored_logs["computed"].pk).cost_usd == pytest.approx(12.5)
    assert LogRecord.objects.get(pk=stored_logs["cached"].pk).cost_usd == pytest.approx(11.25)
    assert LogRecord.objects.get(pk=stored_logs["same_time"].pk).cost_usd == 0.0


def test_a_computed_cost_whose_price_is_gone_becomes_unknown(acme):
    at = timezone.now() - timedelta(hours=1)
    row = log("acme", "vanished-model", at=at, cost_usd=1.0, source=CostSource.COMPUTED)
    assert recompute_costs(since=at - timedelta(minutes=1)) == 1
    row.refresh_from_db()
    assert (row.cost_usd, row.cost_source) == (None, CostSource.UNKNOWN)


def test_recompute_rebuilds_the_rollups_of_changed_workspaces(stored_logs, acme, monkeypatch):
    calls = []
    monkeypatch.setattr(rollups, "rebuild_rollups", lambda **kw: calls.append(kw))
    price(acme, "gpt-4o", 1.0, 1.0)
    since = datetime.now(UTC) - timedelta(days=30)
    recompute_costs(since=since)
    assert calls == [{"workspace_id": "acme", "since": since.replace(minute=0, second=0, microsecond=0)}]


def test_recompute_leaves_rollups_matching_the_logs(stored_logs, acme):
    price(acme, "gpt-4o*", 1.0, 2.0)
    recompute_costs(since=timezone.now() - timedelta(days=30), workspace_id="acme")
    recent_hour = (
        stored_logs["computed"].created_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    )
    logs = LogRecord.objects.filter(workspace_id="acme", created_at__gte=recent_hour)
    rollups = LogRollup.objects.filter(workspace_id="acme", hour__gte=recent_hour)
    assert rollups.aggregate(c=Sum("cost_usd"))["c"] == pytest.approx(logs.aggregate(c=Sum("cost_usd"))["c"])


# --- the command ----------------------------------------------------------------------------------


def test_the_command_reprices_and_reports(stored_logs, acme):
    price(acme, "gpt-4o*", 1.0, 2.0)
    out = StringIO()
    call_command("recompute_costs", "--since", "30d", "--workspace", "acme", "--batch-size", "2", stdout=out)
    text = out.getvalue()
    assert "Re-pricing logs of workspace acme created since" in text
    assert "scanned 5 logs, re-priced 3" in text
    last_line = text.strip().splitlines()[-1]
    assert last_line.startswith("Re-priced 3 log(s) and span(s) of workspace acme created since")
    assert LogRecord.objects.get(pk=stored_logs["supplied"].pk).cost_usd == 123.0


def test_the_command_with_an_iso_date_and_all_workspaces(stored_logs, acme):
    price(acme, "gpt-4o", 1.0, 1.0)
    out = StringIO()
    since = (timezone.now() - timedelta(days=2)).date().isoformat()
    call_command("recompute_costs", f"--since={since}", stdout=out, verbosity=0)
    assert (
        out.getvalue().strip()
        == f"Re-priced 2 log(s) and span(s) of all workspaces created since {since}T00:00:00+00:00."
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "neither an ISO date"),
        (["--since", "2026-02-30"], "not a valid date"),
        (["--since", "1d", "--workspace", "nope"], "does not exist"),
        (["--since", "1d", "--batch-size", "0"], "at least 1"),
    ],
)
def test_the_command_refuses_bad_arguments(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("recompute_costs", *args, stdout=StringIO())


def test_parse_since():
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert parse_since("2026-01-01") == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_since("2026-01-01T10:30") == datetime(2026, 1, 1, 10, 30, tzinfo=UTC)
    assert parse_since("2026-01-01T10:30:00+02:00") == datetime(2026, 1, 1, 8, 30, tzinfo=UTC)
    assert parse_since("2026-01-01T10:30:00Z") == datetime(2026, 1, 1, 10, 30, tzinfo=UTC)
    assert parse_since("30d", now=now) == now - timedelta(days=30)
    assert parse_since("12h", now=now) == now - timedelta(hours=12)
    assert parse_since("2w", now=now) == now - timedelta(weeks=2)


def test_recompute_reprices_computed_span_costs_and_trace_totals_but_not_supplied_ones(api, make_key):
    from telemetry.models import ModelPrice, Span, Trace
    from telemetry.pricing import prices_changed, recompute_costs

    _, key = make_key("read,write")
    trace_id = api.post("/v1/traces", key=key, json={}).json()["trace_id"]
    spans = [
        {"span_id": "book", "name": "llm", "model": "acme-model-x", "tokens_in": 1_000_000, "tokens_out": 0},
        {"span_id": "own", "name": "llm", "model": "acme-model-x", "tokens_in": 1_000_000, "cost_usd": 7.0},
    ]
    assert api.post(f"/v1/traces/{trace_id}/spans", key=key, json=spans).status_code == 201
    assert Span.objects.get(span_id="book").cost_source == ""  # no price known yet
    ModelPrice.objects.create(
        workspace_id="default",
        model_pattern="acme-model-x",
        input_per_mtok=2.0,
        output_per_mtok=4.0,
        effective_from="2000-01-01",
    )
    prices_changed()

    changed = recompute_costs(since=Span.objects.get(span_id="book").created_at)

    assert changed == 1
    book, own = Span.objects.get(span_id="book"), Span.objects.get(span_id="own")
    assert (book.cost_usd, book.cost_source) == (2.0, "computed")
    assert (own.cost_usd, own.cost_source) == (7.0, "supplied")
    assert Trace.objects.get(trace_id=trace_id).cost_usd == 9.0
