"""Cost of an LLM call from its tokens: the workspace's own prices, then the built-in price book.

Where a price comes from
    1. The workspace's ``ModelPrice`` rows (admin: telemetry > model prices), then
    2. the price book shipped with the code, ``telemetry/data/prices.json``.
    In each source an exact model name wins over a glob pattern, and a longer (more specific)
    pattern over a shorter one; names compare case-insensitively. A logged name with a path prefix
    (``openai/gpt-4o``, ``models/gemini-1.5-pro``, ``accounts/fireworks/models/…``) is tried as
    given first, then with each leading ``segment/`` stripped. Among the prices of the winning
    name, the one with the latest ``effective_from`` on or before the call's time applies.
    A workspace price applies only from its ``effective_from`` (so a negotiated rate does not
    rewrite history) and, when it names a provider, not to calls logged with another one. The book's
    ``provider`` is only a preference between equally good matches (gpt-4o through Azure costs
    what it costs at OpenAI), and a call older than a model's first book date gets its first price.

Token semantics (those of OpenAI and the OpenTelemetry GenAI conventions)
    ``cached_tokens`` are the part of ``tokens_in`` read from a prompt cache: ``tokens_in -
    cached`` are billed at the input rate and ``cached`` at the cached-input rate (the input rate
    when the model has no cache discount). ``reasoning_tokens`` are the part of ``tokens_out`` spent
    thinking: they are billed at the reasoning rate (which defaults to the output rate, so by
    default nothing changes) and the rest of ``tokens_out`` at the output rate. No token is billed
    twice. When a caller reports more cached tokens than input tokens (or more reasoning than
    output tokens), the counts cannot be a subset, so they are taken as reported separately
    (Anthropic's and Gemini's native usage fields) and each is billed once at its own rate.
    Long-context tiers of the book (Gemini, Claude Sonnet 4/4.5 above 200k prompt tokens) replace
    all rates of a call whose prompt (input + cached) exceeds the threshold. Costs are in USD,
    rounded to 1e-10. Anthropic cache writes, audio/image tokens and batch discounts are not
    modelled.

``compute_cost`` returns None when neither token count is known or no price matches the model:
the log then says "cost unknown", and ``recompute_costs`` prices it once a price exists.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from telemetry import rollups

logger = logging.getLogger(__name__)

PRICE_BOOK = ("telemetry", "data/prices.json")
PER_TOKENS = 1_000_000
# How long a process trusts the custom prices it read for a workspace (see ``_workspace_index``).
WORKSPACE_PRICES_TTL_S = 30.0
_GLOB_CHARS = frozenset("*?[")
_MEMO_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens. None: cached → the input rate, reasoning → the output rate."""

    input: float
    output: float
    cached_input: float | None = None
    reasoning: float | None = None


@dataclass(frozen=True, slots=True)
class Tier:
    above_input_tokens: int
    rates: Rates


@dataclass(frozen=True, slots=True)
class Price:
    """One price of one model from one date on; ``source`` is "workspace" or "book"."""

    match: str  # the exact name or the pattern that matched
    provider: str
    effective_from: date
    rates: Rates
    tiers: tuple[Tier, ...] = ()
    source: str = "book"

    def rates_for(self, prompt_tokens: int) -> Rates:
        chosen = self.rates
        for tier in self.tiers:  # sorted by threshold
            if prompt_tokens > tier.above_input_tokens:
                chosen = tier.rates
        return chosen

    def cost(
        self,
        *,
        tokens_in: int | None,
        tokens_out: int | None,
        cached_tokens: int | None = None,
        reasoning_tokens: int | None = None,
    ) -> float:
        tokens_in, tokens_out = max(tokens_in or 0, 0), max(tokens_out or 0, 0)
        cached, reasoning = max(cached_tokens or 0, 0), max(reasoning_tokens or 0, 0)
        # Subsets (OpenAI / OTel semantics) unless the counts prove they were reported separately.
        uncached = tokens_in - cached if cached <= tokens_in else tokens_in
        visible_out = tokens_out - reasoning if reasoning <= tokens_out else tokens_out
        rates = self.rates_for(uncached + cached)
        cached_rate = rates.input if rates.cached_input is None else rates.cached_input
        reasoning_rate = rates.output if rates.reasoning is None else rates.reasoning
        total = (
            uncached * rates.input
            + cached * cached_rate
            + visible_out * rates.output
            + reasoning * reasoning_rate
        )
        return round(total / PER_TOKENS, 10)


# --- matching -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Index:
    """Prices of one source, keyed for lookup: exact names, and patterns most specific first."""

    exact: dict[str, list[Price]]
    patterns: list[tuple[str, int, Price]]  # (lowercased glob, specificity, price), most specific first
    strict: bool  # workspace prices: provider is a filter and nothing applies before its date
    memo: dict[tuple[tuple[str, ...], str, date], Price | None] = field(default_factory=dict)

    @classmethod
    def build(cls, items: Iterable[tuple[str, bool, Price]], *, strict: bool) -> _Index:
        exact: dict[str, list[Price]] = {}
        patterns: list[tuple[str, int, Price]] = []
        for key, is_pattern, price in items:
            key = key.strip().lower()
            if not key:
                continue
            if is_pattern:
                patterns.append((key, _specificity(key), price))
            else:
                exact.setdefault(key, []).append(price)
        patterns.sort(key=lambda item: -item[1])
        return cls(exact=exact, patterns=patterns, strict=strict)

    def find(self, names: tuple[str, ...], provider: str, day: date) -> Price | None:
        # Ingest prices every log: remember answers (the index is immutable; a new one replaces it).
        key = (names, provider, day)
        try:
            return self.memo[key]
        except KeyError:
            pass
        found = self._find(names, provider, day)
        if len(self.memo) >= _MEMO_SIZE:
            self.memo.clear()
        self.memo[key] = found
        return found

    def _find(self, names: tuple[str, ...], provider: str, day: date) -> Price | None:
        for name in names:
            found = self._pick(self.exact.get(name, ()), provider, day)
            if found is not None:
                return found
        for name in names:
            # Matching patterns grouped by specificity, most specific group first.
            groups: dict[int, list[Price]] = {}
            for pattern, specificity, price in self.patterns:
                if fnmatch.fnmatchcase(name, pattern):
                    groups.setdefault(specificity, []).append(price)
            for specificity in sorted(groups, reverse=True):
                found = self._pick(groups[specificity], provider, day)
                if found is not None:
                    return found
        return None

    def _pick(self, prices: Iterable[Price], provider: str, day: date) -> Price | None:
        prices = list(prices)
        if self.strict:
            prices = [p for p in prices if not p.provider or not provider or p.provider == provider]
        if not prices:
            return None
        # A price naming the caller's provider beats one that does not.
        same = [p for p in prices if provider and p.provider == provider]
        for group in (same, prices):
            current = [p for p in group if p.effective_from <= day]
            if current:
                return max(current, key=lambda p: p.effective_from)
        if not self.strict:
            return min(same or prices, key=lambda p: p.effective_from)
        return None


def _specificity(pattern: str) -> int:
    return sum(1 for char in pattern if char not in _GLOB_CHARS)


def _is_pattern(value: str) -> bool:
    return any(char in _GLOB_CHARS for char in value)


def candidate_names(model: str) -> list[str]:
    """``Openai/GPT-4o`` → ``["openai/gpt-4o", "gpt-4o"]``: as logged, then without path prefixes."""
    name = model.strip().lower()
    names = [name] if name else []
    while "/" in name:
        name = name.split("/", 1)[1]
        if name:
            names.append(name)
    return names


# --- the price book -------------------------------------------------------------------------------


def _rates(raw: dict[str, Any], where: str) -> Rates:
    values: dict[str, float | None] = {}
    for name in ("input", "output", "cached_input", "reasoning"):
        value = raw.get(name)
        if value is None and name in ("input", "output"):
            raise ValueError(f"{where}: '{name}' is required")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise ValueError(f"{where}: '{name}' must be a number >= 0, not {value!r}")
        values[name] = None if value is None else float(value)
    return Rates(**values)  # type: ignore[arg-type]


def parse_price_book(data: dict[str, Any]) -> list[tuple[str, bool, Price]]:
    """The book's entries as (name or pattern, is_pattern, Price); raises ValueError when malformed."""
    items: list[tuple[str, bool, Price]] = []
    for number, raw in enumerate(data["prices"]):
        where = f"prices[{number}] ({raw.get('model', '?')})"
        model = raw.get("model")
        if not isinstance(model, str) or not model:
            raise ValueError(f"{where}: 'model' is required")
        tiers = tuple(
            sorted(
                (
                    Tier(int(tier["above_input_tokens"]), _rates(tier, f"{where} tier"))
                    for tier in raw.get("tiers", ())
                ),
                key=lambda tier: tier.above_input_tokens,
            )
        )
        price = Price(
            match=model,
            provider=str(raw.get("provider", "")).lower(),
            effective_from=date.fromisoformat(raw["effective_from"]),
            rates=_rates(raw, where),
            tiers=tiers,
            source="book",
        )
        items.append((model, False, price))
        for pattern in raw.get("patterns", ()):
            # A "pattern" without glob characters is an alias, matched like an exact name.
            items.append((pattern, _is_pattern(pattern), replace(price, match=pattern)))
    return items


@lru_cache(maxsize=1)
def load_price_book() -> _Index:
    """The shipped price book, parsed once per process."""
    package, path = PRICE_BOOK
    text = resources.files(package).joinpath(path).read_text(encoding="utf-8")
    return _Index.build(parse_price_book(json.loads(text)), strict=False)


# --- workspace prices -----------------------------------------------------------------------------

# Per-process cache of each workspace's custom prices: {workspace_id: (expires_at_monotonic, index)}.
# Custom prices are few and change rarely, while compute_cost runs on every ingested log, so a
# query per call is not affordable. ``prices_changed()`` (called by the admin, and by any code that
# writes ModelPrice rows) drops this process's copy at once; other worker processes and nodes pick
# the change up within WORKSPACE_PRICES_TTL_S. We chose a short TTL over a shared version key in
# Redis because the latter costs a network round trip per ingest request, and a cost computed with
# a price up to 30 s stale is repaired by ``recompute_costs`` anyway.
_workspace_prices: dict[str, tuple[float, _Index]] = {}


def prices_changed(workspace_id: str | None = None) -> None:
    """Forget this process's cached custom prices (of one workspace, or of all)."""
    if workspace_id is None:
        _workspace_prices.clear()
    else:
        _workspace_prices.pop(workspace_id, None)


def _workspace_index(workspace_id: str) -> _Index:
    now = time.monotonic()
    cached = _workspace_prices.get(workspace_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    from telemetry.models import ModelPrice

    items = []
    for row in ModelPrice.objects.filter(workspace_id=workspace_id):
        items.append(
            (
                row.model_pattern,
                _is_pattern(row.model_pattern),
                Price(
                    match=row.model_pattern,
                    provider=row.provider.strip().lower(),
                    effective_from=_as_date(row.effective_from),
                    rates=Rates(
                        input=row.input_per_mtok,
                        output=row.output_per_mtok,
                        cached_input=row.cached_input_per_mtok,
                        reasoning=row.reasoning_per_mtok,
                    ),
                    source="workspace",
                ),
            )
        )
    index = _Index.build(items, strict=True)
    _workspace_prices[workspace_id] = (now + WORKSPACE_PRICES_TTL_S, index)
    return index


def _as_date(value: date | datetime) -> date:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if timezone.is_aware(value) else value.date()
    return value


# --- public API -----------------------------------------------------------------------------------


def find_price(
    *, workspace_id: str, model: str, provider: str = "", at: datetime | None = None
) -> Price | None:
    """The price that applies to a call of ``model`` at ``at`` (default: now), or None."""
    names = tuple(candidate_names(model or ""))
    if not names:
        return None
    day = _as_date(at or timezone.now())
    provider = (provider or "").strip().lower()
    for index in (_workspace_index(workspace_id), load_price_book()):
        price = index.find(names, provider, day)
        if price is not None:
            return price
    return None


def compute_cost(
    *,
    workspace_id: str,
    model: str,
    provider: str = "",
    tokens_in: int | None,
    tokens_out: int | None,
    cached_tokens: int | None = None,
    reasoning_tokens: int | None = None,
    at: datetime | None = None,
) -> float | None:
    """USD cost of one call, or None when no tokens are known or no price matches (module doc)."""
    if tokens_in is None and tokens_out is None:
        return None
    price = find_price(workspace_id=workspace_id, model=model, provider=provider, at=at)
    if price is None:
        return None
    return price.cost(
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cached_tokens=cached_tokens,
        reasoning_tokens=reasoning_tokens,
    )


def recompute_costs(
    *,
    since: datetime,
    workspace_id: str | None = None,
    batch_size: int = 5000,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Re-price the computed costs of logs and spans created at or after ``since`` (with their
    rollups and trace totals); returns how many rows changed.

    Touches logs whose cost was computed from a price (``cost_source="computed"``) and logs with
    tokens but no cost at all (no price was known when they arrived): each gets the cost its
    current price gives, or becomes "unknown" if no price matches any more. A cost supplied by the
    client is never touched. Each workspace is walked in keyset batches over its
    ``(workspace, created_at, id)`` index (no OFFSET, no full-table scan) and each batch's changes
    are written with one ``bulk_update``. ``progress(scanned, changed)`` is called after every
    batch. Afterwards the hourly rollups of each changed workspace are rebuilt from ``since``'s
    hour on (``telemetry.rollups.rebuild_rollups``), since they hold cost sums too.

    Logs are never updated by ingest after they are written, so re-pricing runs safely beside it;
    logs ingested by another process within WORKSPACE_PRICES_TTL_S of a price change may carry the
    old price; run this again to catch them.
    """
    from telemetry.models import CostSource, LogRecord
    from tenancy.models import Workspace

    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if timezone.is_naive(since):
        since = timezone.make_aware(since, UTC)
    prices_changed()  # price with what the database says now, not with this process's copy
    if workspace_id is not None:
        workspace_ids = [workspace_id]
    else:
        workspace_ids = list(Workspace.objects.order_by("id").values_list("id", flat=True))

    repriceable = Q(cost_source=CostSource.COMPUTED) | (
        Q(cost_source=CostSource.UNKNOWN, cost_usd__isnull=True)
        & (Q(tokens_in__isnull=False) | Q(tokens_out__isnull=False))
    )
    fields = [
        "id",
        "workspace_id",
        "model",
        "provider",
        "tokens_in",
        "tokens_out",
        "cached_tokens",
        "reasoning_tokens",
        "cost_usd",
        "cost_source",
        "created_at",
    ]
    scanned = changed = 0
    for ws in workspace_ids:
        base = (
            LogRecord.objects.filter(workspace_id=ws, created_at__gte=since)
            .filter(repriceable)
            .only(*fields)
            .order_by("created_at", "id")
        )
        workspace_changed = 0
        after: tuple[datetime, int] | None = None
        while True:
            page = base
            if after is not None:
                page = page.filter(Q(created_at__gt=after[0]) | Q(created_at=after[0], id__gt=after[1]))
            batch = list(page[:batch_size])
            if not batch:
                break
            after = (batch[-1].created_at, batch[-1].pk)
            updates = []
            for log in batch:
                cost = compute_cost(
                    workspace_id=ws,
                    model=log.model,
                    provider=log.provider,
                    tokens_in=log.tokens_in,
                    tokens_out=log.tokens_out,
                    cached_tokens=log.cached_tokens,
                    reasoning_tokens=log.reasoning_tokens,
                    at=log.created_at,
                )
                source = CostSource.COMPUTED if cost is not None else CostSource.UNKNOWN
                if cost != log.cost_usd or source != log.cost_source:
                    log.cost_usd, log.cost_source = cost, source
                    updates.append(log)
            if updates:
                with transaction.atomic():
                    LogRecord.objects.bulk_update(updates, ["cost_usd", "cost_source"])
            scanned += len(batch)
            changed += len(updates)
            workspace_changed += len(updates)
            if progress is not None:
                progress(scanned, changed)
            if len(batch) < batch_size:
                break
        if workspace_changed:
            _rebuild_rollups(ws, since)
        changed += _recompute_span_costs(ws, since, repriceable, batch_size)
    return changed


def _recompute_span_costs(workspace_id: str, since: datetime, repriceable: Q, batch_size: int) -> int:
    """Re-price the spans (created at or after ``since``) whose cost came from the book, and the
    totals of their traces. Batches by primary key: spans have no (workspace, time) index, and a
    maintenance command may scan where a request may not."""
    from telemetry.models import CostSource, Span, Trace
    from telemetry.services import refresh_trace_totals

    changed, after = 0, 0
    while True:
        batch = list(
            Span.objects.filter(workspace_id=workspace_id, created_at__gte=since, id__gt=after)
            .filter(repriceable)
            .order_by("id")[:batch_size]
        )
        if not batch:
            return changed
        after = batch[-1].pk
        updates = []
        for span in batch:
            cost = compute_cost(
                workspace_id=workspace_id,
                model=span.model,
                provider=span.provider,
                tokens_in=span.tokens_in,
                tokens_out=span.tokens_out,
                cached_tokens=span.cached_tokens,
                reasoning_tokens=span.reasoning_tokens,
                at=span.start_time or span.created_at,
            )
            source = CostSource.COMPUTED if cost is not None else CostSource.UNKNOWN
            if cost != span.cost_usd or source != span.cost_source:
                span.cost_usd, span.cost_source = cost, source
                updates.append(span)
        if updates:
            with transaction.atomic():
                Span.objects.bulk_update(updates, ["cost_usd", "cost_source"])
                for trace in Trace.objects.select_for_update().filter(pk__in={s.trace_id for s in updates}):
                    refresh_trace_totals(trace)
        changed += len(updates)


def _rebuild_rollups(workspace_id: str, since: datetime) -> None:
    # Rollups are hourly: rebuild whole hours, so the hour holding ``since`` is not half-counted.
    hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    rollups.rebuild_rollups(workspace_id=workspace_id, since=hour)
