"""Fill a workspace with realistic demo data: prompts with versions and labels, LLM call logs, agent
traces with span trees, and workflow runs, spread over the last N days.

The dashboard and the benchmarks use it, so it must produce millions of logs quickly: logs are
generated hour by hour in time order (so primary keys grow with time, as with real ingest), built as
``LogRecord`` objects and written directly (``config.bulk.insert``: one ``executemany``) in
chunks of ``--chunk-size``, each chunk in one transaction together with its hourly rollups
(``rollup_logs``, the same code ingest runs, so rollups are exact; a chunk covers a few
consecutive hours and touches few rollup rows). Costs come from the price book
(``telemetry.pricing.compute_cost``, which memoizes its lookups, so no cache is needed here).
About 15,000 logs/s on SQLite on a 2-core machine: a million logs in a bit over a minute.

Everything is drawn from one ``random.Random(--seed)``, so the same seed and ``--end`` give the same
data. A workspace that already holds telemetry is refused unless ``--append`` is given (the ids are
then drawn from a different stream, so they do not collide with the earlier run's).

Logs from traces: each LLM span of a trace is also recorded as a log linked to it (``trace_id``,
``span_id``), as the OTLP receiver does; those logs count towards ``--logs`` (when they do not fit in
it, traces get no logs).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from config import bulk
from config.errors import Conflict
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
from telemetry.pricing import compute_cost
from telemetry.rollups import rollup_logs
from tenancy.context import command_actor
from tenancy.models import Workspace

HOUR = timedelta(hours=1)


# --- the catalogue --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    name: str
    provider: str
    base_ms: float  # time to first token, median
    ms_per_token: float  # per output token, median
    caches: bool = True
    reasoning: bool = False


MODELS = {
    m.name: m
    for m in (
        Model("gpt-4o-mini", "openai", 320, 11),
        Model("gpt-4o", "openai", 450, 17),
        Model("gpt-4.1-mini", "openai", 380, 12),
        Model("o3-mini", "openai", 900, 9, reasoning=True),
        Model("claude-sonnet-4-5", "anthropic", 850, 19),
        Model("claude-haiku-4-5", "anthropic", 420, 8),
        Model("gemini-2.0-flash", "google", 280, 5),
        Model("gemini-2.5-pro", "google", 1200, 12, reasoning=True),
        Model("mistral-large-latest", "mistral", 500, 16, caches=False),
        Model("deepseek-chat", "deepseek", 700, 22),
        Model("llama-3.3-70b-versatile", "groq", 180, 3, caches=False),
    )
}


@dataclass(frozen=True)
class Version:
    tag: str
    released: float  # fraction of the window at which it went live
    model: str
    label: str = "production"  # "production" track, or "staging" (canary traffic only)


@dataclass(frozen=True)
class PromptSpec:
    name: str
    weight: float  # share of the traffic
    tokens_in: tuple[float, float]  # median, sigma of the log-normal
    tokens_out: tuple[float, float]
    fallback: str  # model used on a small share of calls (provider failover)
    feature: str
    session_share: float
    versions: tuple[Version, ...]
    system: str
    supplied_cost: bool = False  # logged through a gateway that reports the cost itself


PROMPTS = (
    PromptSpec(
        "classify-intent",
        0.30,
        (320, 0.25),
        (4, 0.3),
        "gpt-4o-mini",
        "routing",
        0.9,
        (
            Version("1.0.0", 0.0, "gpt-4o-mini"),
            Version("1.1.0", 0.4, "llama-3.3-70b-versatile"),
            Version("1.2.0", 0.9, "llama-3.3-70b-versatile", "staging"),
        ),
        "Classify the customer's message into one of: billing, shipping, returns, technical, other.",
    ),
    PromptSpec(
        "support-reply",
        0.25,
        (1400, 0.45),
        (260, 0.5),
        "gpt-4o",
        "helpdesk",
        0.95,
        (
            Version("1.0.0", 0.0, "gpt-4o-mini"),
            Version("1.1.0", 0.2, "gpt-4o-mini"),
            Version("1.2.0", 0.5, "claude-haiku-4-5"),
            Version("2.0.0", 0.8, "claude-sonnet-4-5"),
        ),
        "You are a friendly support agent for {{company}}. Answer using the knowledge base excerpts.",
    ),
    PromptSpec(
        "summarize-ticket",
        0.20,
        (2800, 0.6),
        (180, 0.4),
        "gpt-4o-mini",
        "triage",
        0.1,
        (
            Version("1.0.0", 0.0, "gemini-2.0-flash"),
            Version("1.0.1", 0.35, "gemini-2.0-flash"),
            Version("1.1.0", 0.7, "gemini-2.0-flash"),
        ),
        "Summarize the support ticket below in three bullet points for the on-call engineer.",
    ),
    PromptSpec(
        "sql-generator",
        0.10,
        (1900, 0.35),
        (140, 0.5),
        "gpt-4o",
        "analytics",
        0.7,
        (
            Version("0.9.0", 0.0, "gpt-4.1-mini"),
            Version("1.0.0", 0.3, "gpt-4.1-mini"),
            Version("1.1.0", 0.75, "o3-mini", "staging"),
        ),
        "Translate the question into one read-only PostgreSQL query over the schema below.",
    ),
    PromptSpec(
        "product-description",
        0.10,
        (420, 0.3),
        (340, 0.35),
        "mistral-large-latest",
        "catalog",
        0.2,
        (
            Version("1.0.0", 0.0, "deepseek-chat"),
            Version("1.1.0", 0.6, "mistral-large-latest"),
        ),
        "Write a product description of 80 to 120 words in the brand voice for: {{product}}",
        supplied_cost=True,
    ),
    PromptSpec(
        "agent-planner",
        0.05,
        (3600, 0.4),
        (520, 0.45),
        "gpt-4o",
        "agents",
        1.0,
        (
            Version("1.0.0", 0.0, "gpt-4o"),
            Version("1.1.0", 0.45, "claude-sonnet-4-5"),
            Version("2.0.0", 0.85, "gemini-2.5-pro", "staging"),
        ),
        "Plan the next step of the task. Call a tool when you need information; answer when done.",
    ),
)
PROMPT_CUM_WEIGHTS = tuple(
    sum(p.weight for p in PROMPTS[: i + 1]) for i in range(len(PROMPTS))
)  # for rng.choices

# (error code, share of errors, latency range ms, message)
ERRORS = (
    ("rate_limit_exceeded", 0.35, (60, 400), "Rate limit reached for requests"),
    ("timeout", 0.15, (30_000, 60_000), "Request timed out"),
    ("500", 0.15, (400, 4_000), "The server had an error while processing your request"),
    ("overloaded", 0.20, (200, 2_000), "The model is overloaded, try again later"),
    ("context_length_exceeded", 0.10, (40, 200), "The prompt is longer than the model's context window"),
    ("content_filter", 0.05, (300, 1_500), "The response was filtered by the content policy"),
)
ERROR_CUM_WEIGHTS = tuple(sum(e[1] for e in ERRORS[: i + 1]) for i in range(len(ERRORS)))
ERROR_RATE = 0.028  # plus an incident: one provider failing for a few hours, ~3 % overall
REGIONS = ("us-east-1", "us-east-1", "eu-west-1", "ap-southeast-1")

WORKFLOWS = (
    # (workflow, prompt driving it, tools)
    ("support-agent", "agent-planner", ("search_kb", "get_order", "refund_order", "send_email")),
    ("research-agent", "agent-planner", ("web_search", "fetch_url", "read_pdf")),
    ("sql-agent", "sql-generator", ("list_tables", "describe_table", "run_query")),
)
RESULT_THRESHOLD = 0.7  # the demo suites' pass mark
TOOL_ERRORS = ("TimeoutError: tool call exceeded 10s", "HTTPError: 502 Bad Gateway", "ValueError: bad input")


_LOG_FIELDS = [(f.attname, f.get_default()) for f in LogRecord._meta.concrete_fields]


def new_log(**values: Any) -> LogRecord:
    """``LogRecord(**values)`` in a third of the time: positional arguments skip the keyword
    handling of ``Model.__init__`` (how the ORM itself builds rows read from the database). Every
    field not given takes its default; mutable defaults must be given (``metadata`` always is)."""
    return LogRecord(*[values.get(name, default) for name, default in _LOG_FIELDS])


# --- generation -----------------------------------------------------------------------------------


@dataclass
class Stats:
    logs: int = 0
    traces: int = 0
    spans: int = 0
    runs: int = 0
    prompts: int = 0
    versions: int = 0
    labels: int = 0
    results: int = 0


@dataclass
class TracePlan:
    trace: Trace
    spans: list[Span] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)
    failed: bool = False
    workflow: str = ""


class Generator:
    def __init__(self, *, workspace_id: str, rng: random.Random, end: datetime, days: int) -> None:
        self.ws, self.rng, self.end, self.days = workspace_id, rng, end, days
        self.start = end - timedelta(days=days)
        self.hours = days * 24
        self.weights = self._hour_weights()
        self.users = [f"user_{rng.getrandbits(40):010x}" for _ in range(400)]
        self.sessions: list[tuple[str, str]] = []
        incident_hour = rng.randrange(self.hours)
        self.incident = (
            self.start + incident_hour * HOUR,
            self.start + (incident_hour + 3) * HOUR,
            rng.choice(("anthropic", "openai", "google")),
        )

    # -- time ------------------------------------------------------------------------------------

    def _hour_weights(self) -> list[float]:
        """Traffic per hour: growing over the window, quieter at weekends and at night (UTC)."""
        rng = self.rng
        day_noise = [rng.lognormvariate(0, 0.15) for _ in range(self.days + 1)]
        weights = []
        for i in range(self.hours):
            at = self.start + i * HOUR
            hour = at.hour + at.minute / 60
            diurnal = (
                0.15 + math.exp(-(((hour - 15.5) / 4.0) ** 2)) + 0.35 * math.exp(-(((hour - 2.5) / 3.0) ** 2))
            )
            weekday = 0.55 if at.weekday() >= 5 else 1.0
            trend = 0.5 + 0.5 * i / self.hours
            weights.append(diurnal * weekday * trend * day_noise[i // 24])
        return weights

    def allocate(self, total: int) -> list[int]:
        """``total`` split over the hours by weight (largest remainder: exact and deterministic)."""
        whole = sum(self.weights)
        exact = [total * w / whole for w in self.weights]
        counts = [int(x) for x in exact]
        short = total - sum(counts)
        by_remainder = sorted(range(self.hours), key=lambda i: (counts[i] - exact[i], i))
        for i in by_remainder[:short]:
            counts[i] += 1
        return counts

    def random_instants(self, n: int) -> list[datetime]:
        """``n`` instants drawn with the hourly traffic weights, sorted."""
        hours = self.rng.choices(range(self.hours), weights=self.weights, k=n)
        return sorted(self.start + h * HOUR + timedelta(seconds=self.rng.random() * 3600) for h in hours)

    def fraction(self, at: datetime) -> float:
        return (at - self.start) / (self.end - self.start)

    # -- prompts, models, users --------------------------------------------------------------------

    def pick_version(self, prompt: PromptSpec, fraction: float) -> Version:
        live = [v for v in prompt.versions if v.released <= fraction] or [prompt.versions[0]]
        track = [v for v in live if v.label == "production"] or live
        r = self.rng.random()
        staging = [v for v in live if v.label == "staging"]
        if staging and r < 0.08:
            return staging[-1]
        if len(track) > 1 and r < 0.18:
            return track[-2]  # clients still pinned to the previous version
        return track[-1]

    def pick_session(self, share: float) -> tuple[str, str]:
        """(session id, user id): sessions live a while, users come back (a few of them often)."""
        rng = self.rng
        if rng.random() >= share:
            user = self.users[int(len(self.users) * rng.random() ** 2.5)] if rng.random() < 0.4 else ""
            return "", user
        if not self.sessions or rng.random() < 0.25:
            user = self.users[int(len(self.users) * rng.random() ** 2.5)]
            self.sessions.append((f"sess_{rng.getrandbits(64):016x}", user))
            if len(self.sessions) > 40:
                del self.sessions[0]
        return self.sessions[int(len(self.sessions) * rng.random() ** 0.5)]

    def usage(self, prompt: PromptSpec, model: Model) -> tuple[int, int, int | None, int | None]:
        rng = self.rng
        tokens_in = max(1, round(rng.lognormvariate(math.log(prompt.tokens_in[0]), prompt.tokens_in[1])))
        tokens_out = max(1, round(rng.lognormvariate(math.log(prompt.tokens_out[0]), prompt.tokens_out[1])))
        cached = None
        if model.caches and tokens_in >= 1024 and rng.random() < 0.45:
            cached = int(tokens_in * rng.uniform(0.4, 0.9))
        reasoning = None
        if model.reasoning:
            reasoning = round(tokens_out * rng.uniform(1.0, 4.0))
            tokens_out += reasoning  # part of the output tokens (OpenAI and OTel semantics)
        return tokens_in, tokens_out, cached, reasoning

    def latency(self, model: Model, tokens_in: int, tokens_out: int) -> int:
        rng = self.rng
        return round(
            model.base_ms * rng.lognormvariate(0, 0.35)
            + tokens_out * model.ms_per_token * rng.lognormvariate(0, 0.2)
            + tokens_in * 0.04
        )

    def failing(self, model: Model, at: datetime) -> bool:
        start, end, provider = self.incident
        if model.provider == provider and start <= at < end:
            return self.rng.random() < 0.35
        return self.rng.random() < ERROR_RATE

    def cost(
        self, model: Model, at: datetime, tokens: tuple[int, int, int | None, int | None]
    ) -> float | None:
        return compute_cost(
            workspace_id=self.ws,
            model=model.name,
            provider=model.provider,
            tokens_in=tokens[0],
            tokens_out=tokens[1],
            cached_tokens=tokens[2],
            reasoning_tokens=tokens[3],
            at=at,
        )

    # -- logs --------------------------------------------------------------------------------------

    def log(self, at: datetime) -> LogRecord:
        rng = self.rng
        prompt = rng.choices(PROMPTS, cum_weights=PROMPT_CUM_WEIGHTS)[0]
        version = self.pick_version(prompt, self.fraction(at))
        model = MODELS[version.model if rng.random() >= 0.04 else prompt.fallback]
        session_id, user_id = self.pick_session(prompt.session_share)
        metadata: dict[str, Any] = {
            "environment": "staging" if version.label == "staging" else "production",
            "region": REGIONS[rng.randrange(len(REGIONS))],
            "feature": prompt.feature,
        }
        record = new_log(
            workspace_id=self.ws,
            prompt_name=prompt.name,
            version_tag=version.tag,
            provider=model.provider,
            model=model.name,
            metadata=metadata,
            session_id=session_id,
            user_id=user_id,
            created_at=at,
        )
        if self.failing(model, at):
            code, _, (low, high), message = rng.choices(ERRORS, cum_weights=ERROR_CUM_WEIGHTS)[0]
            record.status, record.error_code = LogStatus.ERROR, code
            record.latency_ms = rng.randint(low, high)
            metadata["error"] = {"code": code, "message": message}
            record.cost_source = CostSource.UNKNOWN
            return record
        tokens = self.usage(prompt, model)
        record.tokens_in, record.tokens_out, record.cached_tokens, record.reasoning_tokens = tokens
        record.latency_ms = self.latency(model, tokens[0], tokens[1])
        record.cost_usd = self.cost(model, at, tokens)
        if record.cost_usd is None:
            record.cost_source = CostSource.UNKNOWN
        elif prompt.supplied_cost:
            record.cost_usd = round(record.cost_usd * 1.05, 8)  # the gateway's margin
            record.cost_source = CostSource.SUPPLIED
        else:
            record.cost_source = CostSource.COMPUTED
        return record

    # -- traces ------------------------------------------------------------------------------------

    def result(self, evaluation: Any, prompt: PromptSpec, at: datetime) -> SimpleNamespace:
        """One evaluation result: later versions of a prompt score a little better, with noise."""
        version = self.pick_version(prompt, self.fraction(at))
        rank = prompt.versions.index(version)
        score = round(min(1.0, max(0.0, self.rng.gauss(0.64 + 0.05 * rank, 0.12))), 4)
        return SimpleNamespace(
            workspace_id=self.ws,
            evaluation_id=evaluation.pk,
            score=score,
            passed=score >= RESULT_THRESHOLD,
            label="",
            version_tag=version.tag,
            run_id="",
            trace_id="",
            eval_run_id=None,
            metadata=None,
            created_at=at,
        )

    def span_id(self) -> str:
        return f"{self.rng.getrandbits(64):016x}"

    def trace(self, start: datetime) -> TracePlan:
        rng = self.rng
        workflow, prompt_name, tools = WORKFLOWS[rng.randrange(len(WORKFLOWS))]
        prompt = next(p for p in PROMPTS if p.name == prompt_name)
        version = self.pick_version(prompt, self.fraction(start))
        model = MODELS[version.model]
        session_id, user_id = self.pick_session(1.0)  # an agent always works for someone
        trace = Trace(
            workspace_id=self.ws,
            trace_id=f"{rng.getrandbits(128):032x}",
            name=workflow,
            prompt_name=prompt.name,
            version_tag=version.tag,
            session_id=session_id,
            user_id=user_id,
            metadata={"environment": "staging" if version.label == "staging" else "production"},
            source=TraceSource.OTLP,
            created_at=start,
        )
        plan = TracePlan(trace=trace, workflow=workflow)
        root = self._span(plan, "", workflow, "agent", start)
        cursor = start + timedelta(milliseconds=rng.uniform(2, 30))
        remaining, step = rng.randint(2, 11), 0
        failed = rng.random() < 0.05
        fail_at = rng.randrange(remaining) if rng.random() < 0.08 else -1
        while remaining > 0:
            if remaining >= 3 and step > 0 and rng.random() < 0.2:
                sub = self._span(plan, root.span_id, f"{workflow}.subtask", "agent", cursor)
                inner = cursor + timedelta(milliseconds=rng.uniform(1, 10))
                inner = self._llm(plan, sub.span_id, prompt, model, inner, step == fail_at)
                inner = self._tool(plan, sub.span_id, tools, inner, False)
                self._close(sub, inner + timedelta(milliseconds=rng.uniform(1, 10)), False)
                cursor, remaining = sub.end_time, remaining - 3
            elif step % 2 == 0:  # think, act, think, act, ...
                cursor = self._llm(plan, root.span_id, prompt, model, cursor, step == fail_at)
                remaining -= 1
            else:
                cursor = self._tool(plan, root.span_id, tools, cursor, step == fail_at)
                remaining -= 1
            cursor += timedelta(milliseconds=rng.uniform(1, 40))
            step += 1
        plan.failed = failed
        self._close(root, cursor, failed, "AgentError: gave up after repeated tool failures")
        if root.end_time is not None and root.end_time > self.end:
            self._shift(plan, root.end_time - self.end + timedelta(seconds=1))
        self._totals(plan)
        return plan

    @staticmethod
    def _shift(plan: TracePlan, delta: timedelta) -> None:
        """Move a trace that would end after the window back into it."""
        plan.trace.created_at -= delta
        for span in plan.spans:
            span.start_time -= delta  # type: ignore[operator]
            span.end_time -= delta  # type: ignore[operator]
            span.created_at = span.end_time
        for log in plan.logs:
            log.created_at -= delta

    def _span(self, plan: TracePlan, parent: str, name: str, kind: str, start: datetime) -> Span:
        span = Span(
            workspace_id=self.ws,
            span_id=self.span_id(),
            parent_id=parent,
            name=name,
            kind=kind,
            status=SpanStatus.OK,
            start_time=start,
            metadata={},
        )
        plan.spans.append(span)
        return span

    def _close(self, span: Span, end: datetime, error: bool, message: str = "") -> None:
        span.end_time = end
        span.created_at = end
        if error:
            span.status, span.status_message = SpanStatus.ERROR, message

    def _llm(
        self, plan: TracePlan, parent: str, prompt: PromptSpec, model: Model, start: datetime, error: bool
    ) -> datetime:
        span = self._span(plan, parent, f"chat {model.name}", "llm", start)
        span.model, span.provider = model.name, model.provider
        span.metadata = {"gen_ai.operation.name": "chat", "gen_ai.system": model.provider}
        if error:
            end = start + timedelta(milliseconds=self.rng.randint(60, 400))
            self._close(span, end, True, "rate_limit_exceeded")
        else:
            tokens = self.usage(prompt, model)
            span.tokens_in, span.tokens_out, span.cached_tokens, span.reasoning_tokens = tokens
            span.cost_usd = self.cost(model, start, tokens)
            end = start + timedelta(milliseconds=self.latency(model, tokens[0], tokens[1]))
            self._close(span, end, False)
        plan.logs.append(self._span_log(plan.trace, span))
        return end

    def _tool(
        self, plan: TracePlan, parent: str, tools: tuple[str, ...], start: datetime, error: bool
    ) -> datetime:
        tool = tools[self.rng.randrange(len(tools))]
        span = self._span(plan, parent, f"tool {tool}", "tool", start)
        span.metadata = {"tool.name": tool}
        duration = self.rng.lognormvariate(math.log(180), 0.9)
        end = start + timedelta(milliseconds=min(duration, 10_000) if not error else 10_000)
        self._close(span, end, error, TOOL_ERRORS[self.rng.randrange(len(TOOL_ERRORS))] if error else "")
        return end

    def _span_log(self, trace: Trace, span: Span) -> LogRecord:
        """The log the OTLP receiver records for an LLM span."""
        assert span.start_time is not None and span.end_time is not None
        error = span.status == SpanStatus.ERROR
        return new_log(
            workspace_id=self.ws,
            prompt_name=trace.prompt_name,
            version_tag=trace.version_tag,
            provider=span.provider,
            model=span.model,
            tokens_in=span.tokens_in,
            tokens_out=span.tokens_out,
            cached_tokens=span.cached_tokens,
            reasoning_tokens=span.reasoning_tokens,
            latency_ms=max(0, round((span.end_time - span.start_time).total_seconds() * 1000)),
            cost_usd=span.cost_usd,
            cost_source=CostSource.COMPUTED if span.cost_usd is not None else CostSource.UNKNOWN,
            metadata={"source": "otlp", "span_name": span.name},
            status=LogStatus.ERROR if error else LogStatus.OK,
            error_code=span.status_message[:64] if error else "",
            trace_id=trace.trace_id,
            span_id=span.span_id,
            session_id=trace.session_id,
            user_id=trace.user_id,
            created_at=span.end_time,
        )

    def _totals(self, plan: TracePlan) -> None:
        """The totals ``spans_ingest`` keeps on the trace (``refresh_trace_totals``)."""
        trace, spans = plan.trace, plan.spans
        trace.span_count = len(spans)
        trace.error_count = sum(s.status == SpanStatus.ERROR for s in spans)
        trace.tokens_in = sum(s.tokens_in or 0 for s in spans)
        trace.tokens_out = sum(s.tokens_out or 0 for s in spans)
        trace.cost_usd = sum(s.cost_usd or 0.0 for s in spans)
        trace.start_time = min(s.start_time for s in spans if s.start_time is not None)
        trace.end_time = max(s.end_time for s in spans if s.end_time is not None)
        trace.status = SpanStatus.ERROR if trace.error_count else SpanStatus.OK

    def run(self, plan: TracePlan | None, at: datetime | None) -> Run:
        rng = self.rng
        if plan is not None:
            trace = plan.trace
            at, finished = trace.start_time, trace.end_time
            workflow = plan.workflow
            status = RunStatus.FAILED if plan.failed else RunStatus.COMPLETED
        else:
            assert at is not None
            workflow = ("nightly-eval", "reindex-kb", "digest-email")[rng.randrange(3)]
            finished = at + timedelta(seconds=rng.lognormvariate(math.log(40), 0.8))
            status = RunStatus.FAILED if rng.random() < 0.05 else RunStatus.COMPLETED
            trace = None
        assert at is not None and finished is not None
        if finished > self.end:
            status, finished = RunStatus.RUNNING, at
        ticket = rng.randint(10_000, 99_999)
        return Run(
            workspace_id=self.ws,
            run_id=f"run_{rng.getrandbits(96):024x}",
            workflow_name=workflow,
            status=status,
            input={"ticket": ticket, "channel": ("email", "chat", "api")[rng.randrange(3)]},
            output={"resolved": True, "steps": plan.trace.span_count if plan else 1}
            if status == RunStatus.COMPLETED
            else None,
            trace=trace,
            metadata={"trigger": "api" if plan is not None else "schedule"},
            created_at=at,
            updated_at=finished,
        )


# --- writing ---------------------------------------------------------------------------------------


# --- progress -------------------------------------------------------------------------------------


class ProgressBar:
    """``logs [#########-----------]  45%  9,000/20,000  31,204 logs/s``: redrawn in place on a
    terminal, one line per 10 % otherwise (logs, cron, CI)."""

    WIDTH = 30

    def __init__(self, out: Any, total: int, label: str = "logs") -> None:
        self.out, self.total, self.label = out, total, label
        self.done, self.started = 0, time.monotonic()
        self.tty = hasattr(out, "isatty") and out.isatty()
        self.next_line = 0.1

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def update(self, n: int) -> None:
        self.done += n
        fraction = self.done / self.total if self.total else 1.0
        filled = int(self.WIDTH * fraction)
        line = (
            f"{self.label} [{'#' * filled}{'-' * (self.WIDTH - filled)}] {fraction:4.0%}  "
            f"{self.done:,}/{self.total:,}  {self.rate():,.0f} {self.label}/s"
        )
        if self.tty:
            self.out.write("\r" + line, ending="")
            self.out.flush()
        elif fraction >= self.next_line or self.done >= self.total:
            self.out.write(line)
            while self.next_line <= fraction:
                self.next_line += 0.1

    def finish(self) -> None:
        if self.tty:
            self.out.write("")


# --- the command ----------------------------------------------------------------------------------


def non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Create a demo workspace: prompts with versions and labels (when the registry is installed), "
        "LLM call logs, agent traces with span trees and workflow runs over the last --days days. "
        "Deterministic for a --seed; refuses a workspace that already has telemetry unless --append."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", default="demo", metavar="ID", help="workspace id (default: demo)")
        parser.add_argument("--logs", type=non_negative, default=20_000, metavar="N", help="default: 20,000")
        parser.add_argument("--traces", type=non_negative, default=500, metavar="N", help="default: 500")
        parser.add_argument(
            "--runs", type=non_negative, default=None, metavar="N", help="default: half the traces"
        )
        parser.add_argument(
            "--results",
            type=non_negative,
            default=2_000,
            metavar="N",
            help="evaluation results over one quality suite per prompt (default: 2,000)",
        )
        parser.add_argument("--days", type=non_negative, default=90, metavar="N", help="default: 90")
        parser.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
        parser.add_argument(
            "--end",
            metavar="DATETIME",
            help="end of the window, ISO 8601 (default: now); with --seed, makes runs identical",
        )
        parser.add_argument("--append", action="store_true", help="add to a workspace that has telemetry")
        parser.add_argument(
            "--chunk-size", type=non_negative, default=5000, metavar="N", help="logs per transaction"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ws: str = options["workspace"]
        days: int = options["days"]
        if days < 1:
            raise CommandError("--days must be at least 1.")
        if options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1.")
        end = self._end(options["end"])
        traces_n: int = options["traces"]
        runs_n: int = traces_n // 2 if options["runs"] is None else options["runs"]
        started = time.monotonic()

        existing = self._existing(ws)
        if any(existing.values()) and not options["append"]:
            counts = ", ".join(f"{n:,} {table}" for table, n in existing.items())
            raise CommandError(
                f"Workspace {ws!r} already has telemetry ({counts}). Use --append to add more, or "
                "choose another --workspace."
            )
        seed = options["seed"]
        # A second stream for an append, so that trace, span and run ids do not repeat the first.
        salt = f"{seed}:" + ":".join(str(n) for n in existing.values())
        rng = random.Random(seed if not any(existing.values()) else salt)
        self._workspace(ws)
        stats = Stats()
        self._prompts(ws, stats)

        gen = Generator(workspace_id=ws, rng=rng, end=end, days=days)
        plans = self._traces(gen, traces_n, runs_n, stats)
        span_logs = sorted((log for plan in plans for log in plan.logs), key=lambda log: log.created_at)
        if len(span_logs) > options["logs"]:
            self.stdout.write(
                f"The traces' {len(span_logs):,} LLM spans do not fit in --logs {options['logs']:,}: "
                "they get no logs."
            )
            span_logs = []
        self._logs(gen, options["logs"], span_logs, options["chunk_size"], stats)
        self._results(gen, options["results"], stats)

        elapsed = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded workspace {ws!r} ({days} days to {end:%Y-%m-%d %H:%M} UTC, seed {seed}): "
                f"{stats.logs:,} logs, {stats.traces:,} traces ({stats.spans:,} spans), {stats.runs:,} runs, "
                f"{stats.prompts} prompts ({stats.versions} new versions, {stats.labels} labels), "
                f"{stats.results:,} evaluation results "
                f"in {elapsed:.1f}s."
            )
        )

    # -- steps -------------------------------------------------------------------------------------

    @staticmethod
    def _end(raw: str | None) -> datetime:
        if raw is None:
            return timezone.now()
        try:
            value = parse_datetime(raw)
        except ValueError:
            value = None
        if value is None:
            raise CommandError(f"--end {raw!r} is not an ISO 8601 date and time.")
        return value.replace(tzinfo=UTC) if timezone.is_naive(value) else value.astimezone(UTC)

    @staticmethod
    def _existing(ws: str) -> dict[str, int]:
        return {
            "logs": LogRecord.objects.filter(workspace_id=ws).count(),
            "traces": Trace.objects.filter(workspace_id=ws).count(),
            "runs": Run.objects.filter(workspace_id=ws).count(),
        }

    def _workspace(self, ws: str) -> None:
        if Workspace.objects.filter(pk=ws).exists():
            return
        from tenancy.services import workspace_create

        try:
            workspace_create(
                workspace_id=ws, name=f"Demo ({ws})" if ws != "demo" else "Demo", actor=command_actor()
            )
        except (ValidationError, Conflict) as exc:  # a malformed id; created meanwhile
            raise CommandError(f"Cannot create workspace {ws!r}: {exc}") from exc
        self.stdout.write(f"Created workspace {ws!r}.")

    def _prompts(self, ws: str, stats: Stats) -> None:
        if not apps.is_installed("registry"):
            self.stdout.write("The registry app is not installed: no prompts created.")
            return
        from registry.models import PromptLabel, PromptVersion
        from registry.services import label_set, prompt_version_create

        actor = command_actor()
        for prompt in PROMPTS:
            stats.prompts += 1
            existing = set(
                PromptVersion.objects.filter(prompt__workspace_id=ws, prompt__name=prompt.name).values_list(
                    "version", flat=True
                )
            )
            for version in prompt.versions:
                if version.tag in existing:
                    continue
                prompt_version_create(workspace_id=ws, body=self._document(prompt, version), actor=actor)
                stats.versions += 1
            labels = set(
                PromptLabel.objects.filter(workspace_id=ws, prompt__name=prompt.name).values_list(
                    "name", flat=True
                )
            )
            production = [v for v in prompt.versions if v.label == "production"][-1]
            staging = prompt.versions[-1]
            for label, version in (("production", production), ("staging", staging)):
                if label not in labels:
                    label_set(
                        workspace_id=ws,
                        prompt_name=prompt.name,
                        label=label,
                        version=version.tag,
                        actor=actor,
                    )
                    stats.labels += 1
        self.stdout.write(f"Prompts: {stats.prompts} ({stats.versions} new versions, {stats.labels} labels).")

    @staticmethod
    def _document(prompt: PromptSpec, version: Version) -> dict[str, Any]:
        variables = {"input": {"type": "string", "required": True}}
        for name in ("company", "product"):
            if "{{" + name + "}}" in prompt.system:
                variables[name] = {"type": "string", "required": False}
        return {
            "name": prompt.name,
            "version": version.tag,
            "description": f"{prompt.feature}: {prompt.name} (demo data)",
            "messages": [
                {"role": "system", "content": f"{prompt.system} (v{version.tag})"},
                {"role": "user", "content": "{{input}}"},
            ],
            "variables": variables,
            "model_config": {"model": version.model, "temperature": 0.2, "max_tokens": 1024},
            "tags": ["demo", prompt.feature],
        }

    def _traces(self, gen: Generator, traces_n: int, runs_n: int, stats: Stats) -> list[TracePlan]:
        if not traces_n and not runs_n:
            return []
        plans = [gen.trace(at) for at in gen.random_instants(traces_n)]
        linked = sorted(gen.rng.sample(range(len(plans)), min(runs_n, len(plans))))
        runs = [gen.run(plans[i], None) for i in linked]
        runs += [gen.run(None, at) for at in gen.random_instants(max(0, runs_n - len(plans)))]
        runs.sort(key=lambda run: run.created_at)
        bar = ProgressBar(self.stdout, len(plans), "traces") if plans else None
        chunk = 500
        for start in range(0, len(plans), chunk):
            part = plans[start : start + chunk]
            with transaction.atomic():
                Trace.objects.bulk_create([p.trace for p in part])
                spans = []
                for plan in part:
                    for span in plan.spans:
                        span.trace = plan.trace
                    spans += plan.spans
                Span.objects.bulk_create(spans, batch_size=1000)
            stats.traces += len(part)
            stats.spans += len(spans)
            assert bar is not None
            bar.update(len(part))
        if bar is not None:
            bar.finish()
        for start in range(0, len(runs), chunk):
            with transaction.atomic():
                Run.objects.bulk_create(runs[start : start + chunk])
        stats.runs = len(runs)
        return plans

    def _logs(
        self, gen: Generator, total: int, span_logs: list[LogRecord], chunk_size: int, stats: Stats
    ) -> None:
        if total == 0:
            return
        bar = ProgressBar(self.stdout, total)
        counts = gen.allocate(total - len(span_logs))
        pending = iter(span_logs)
        next_span_log = next(pending, None)
        buffer: list[LogRecord] = []

        def flush() -> None:
            with transaction.atomic():
                bulk.insert(LogRecord, buffer)
                rollup_logs(buffer)
            stats.logs += len(buffer)
            bar.update(len(buffer))
            buffer.clear()

        rng = gen.rng
        for hour, count in enumerate(counts):
            hour_start = gen.start + hour * HOUR
            hour_end = hour_start + HOUR
            offsets = sorted(rng.random() * 3600 for _ in range(count))
            logs = [gen.log(hour_start + timedelta(seconds=offset)) for offset in offsets]
            merged = False
            while next_span_log is not None and next_span_log.created_at < hour_end:
                logs.append(next_span_log)
                next_span_log = next(pending, None)
                merged = True
            if merged:
                logs.sort(key=lambda log: log.created_at)
            buffer += logs
            if len(buffer) >= chunk_size:
                flush()
        if buffer:
            flush()
        bar.finish()

    def _results(self, gen: Generator, total: int, stats: Stats) -> None:
        """``total`` results of one numeric suite per prompt, spread like the traffic, written in
        chunks with their hourly rollups (the code result ingest runs)."""
        if total == 0 or not apps.is_installed("evaluations"):
            return
        from evaluations.models import Evaluation, EvaluationResult
        from evaluations.rollups import rollup_results
        from evaluations.services import evaluation_create

        suites = []
        for prompt in PROMPTS:
            name = f"{prompt.name}-quality"
            suite = Evaluation.objects.filter(workspace_id=gen.ws, name=name).first()
            if suite is None:
                body = {
                    "name": name,
                    "prompt_name": prompt.name,
                    "description": f"Answer quality of {prompt.name} (demo data)",
                    "threshold": RESULT_THRESHOLD,
                    "criteria": {"rules": [{"type": "length", "min": 1, "max": 4000}]},
                }
                suite = evaluation_create(workspace_id=gen.ws, body=body, actor=command_actor())
            suites.append((suite, prompt))
        bar = ProgressBar(self.stdout, total, "results")
        instants = gen.random_instants(total)
        chunk = 10_000
        for start in range(0, total, chunk):
            part = [gen.result(*gen.rng.choice(suites), at) for at in instants[start : start + chunk]]
            with transaction.atomic():
                bulk.insert(EvaluationResult, part)
                rollup_results(part)
            stats.results += len(part)
            bar.update(len(part))
        bar.finish()
