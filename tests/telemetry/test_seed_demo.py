"""``manage.py seed_demo``: realistic, deterministic demo data (prompts, logs, traces with span trees,
runs) over the last N days, written fast and refused twice into the same workspace."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, Sum
from django.utils import timezone

from telemetry.models import (
    CostSource,
    LogRecord,
    LogRollup,
    LogStatus,
    Run,
    RunStatus,
    Span,
    SpanStatus,
    Trace,
)
from telemetry.pricing import compute_cost

END = timezone.now().replace(microsecond=0)


def seed(*args: str, end: str | None = END.isoformat()) -> str:
    out = StringIO()
    call_command("seed_demo", *args, *(["--end", end] if end else []), stdout=out)
    return out.getvalue()


def log_rows(workspace: str) -> list[tuple]:
    fields = [f.attname for f in LogRecord._meta.concrete_fields if f.attname not in ("id", "workspace_id")]
    return list(
        LogRecord.objects.filter(workspace_id=workspace).order_by("created_at", "id").values_list(*fields)
    )


def trace_rows(workspace: str) -> list[tuple]:
    fields = [f.attname for f in Trace._meta.concrete_fields if f.attname not in ("id", "workspace_id")]
    return list(
        Trace.objects.filter(workspace_id=workspace).order_by("created_at", "id").values_list(*fields)
    )


def span_rows(workspace: str) -> list[tuple]:
    return list(
        Span.objects.filter(workspace_id=workspace)
        .order_by("trace__created_at", "start_time", "id")
        .values_list(
            "trace__trace_id",
            "span_id",
            "parent_id",
            "name",
            "kind",
            "status",
            "start_time",
            "end_time",
            "model",
            "tokens_in",
            "tokens_out",
            "cost_usd",
        )
    )


def run_rows(workspace: str) -> list[tuple]:
    return list(
        Run.objects.filter(workspace_id=workspace)
        .order_by("created_at", "id")
        .values_list("run_id", "workflow_name", "status", "input", "output", "trace__trace_id", "created_at")
    )


@pytest.mark.django_db
def test_seed_demo_creates_what_it_says():
    output = seed("--logs", "2000", "--traces", "20")

    assert "Seeded workspace 'demo'" in output
    assert "2,000 logs, 20 traces" in output
    assert re.search(r"logs \[#+\] 100%\s+2,000/2,000\s+[\d,]+ logs/s", output)

    logs = LogRecord.objects.filter(workspace_id="demo")
    assert logs.count() == 2000
    # Spread over the whole window: the last 90 days up to --end, nearly every day, none outside.
    start = END - timedelta(days=90)
    instants = list(logs.values_list("created_at", flat=True))
    assert start <= min(instants) < start + timedelta(days=2)
    assert END - timedelta(days=1) < max(instants) <= END
    assert len({(at - start).days for at in instants}) >= 85
    assert len({at.hour for at in instants}) == 24
    # More traffic lately (the demo's workload grows) and on weekdays.
    first_half = sum(at < start + timedelta(days=45) for at in instants)
    assert first_half < 1000

    # Realistic content: several providers and models, about 3 % errors, sessions and users.
    models = Counter(logs.values_list("model", flat=True))
    assert {"gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.0-flash"} <= set(models)
    assert len(set(logs.values_list("provider", flat=True))) >= 5
    errors = logs.filter(status=LogStatus.ERROR)
    assert 0.015 * 2000 <= errors.count() <= 0.05 * 2000
    assert all(code for code in errors.values_list("error_code", flat=True))
    assert logs.exclude(session_id="").values("session_id").distinct().count() > 50
    assert logs.exclude(user_id="").values("user_id").distinct().count() > 20
    ok = logs.filter(status=LogStatus.OK)
    assert not ok.filter(tokens_in__isnull=True).exists()
    assert not ok.filter(latency_ms__isnull=True).exists()
    assert ok.filter(cached_tokens__gt=0).exists()
    latencies = sorted(ok.values_list("latency_ms", flat=True))
    assert 150 < latencies[len(latencies) // 2] < 10_000  # a median of an LLM call
    assert latencies[int(len(latencies) * 0.99)] > 2 * latencies[len(latencies) // 2]  # a long tail

    # Costs from the price book (or, for one prompt, supplied by a gateway).
    computed = ok.filter(cost_source=CostSource.COMPUTED)
    assert computed.count() > 1000
    for log in computed.order_by("id")[:200]:
        assert log.cost_usd == compute_cost(
            workspace_id="demo",
            model=log.model,
            provider=log.provider,
            tokens_in=log.tokens_in,
            tokens_out=log.tokens_out,
            cached_tokens=log.cached_tokens,
            reasoning_tokens=log.reasoning_tokens,
            at=log.created_at,
        )
    assert ok.filter(cost_source=CostSource.SUPPLIED, cost_usd__gt=0).exists()

    # The hourly rollups agree with the logs, as after ingest.
    rollups = LogRollup.objects.filter(workspace_id="demo").aggregate(
        n=Sum("request_count"), errors=Sum("error_count"), cost=Sum("cost_usd"), tokens=Sum("tokens_out")
    )
    exact = logs.aggregate(cost=Sum("cost_usd"), tokens=Sum("tokens_out"))
    assert rollups["n"] == 2000 and rollups["errors"] == errors.count()
    assert rollups["tokens"] == exact["tokens"]
    assert rollups["cost"] == pytest.approx(exact["cost"])


@pytest.mark.django_db
def test_seed_demo_traces_are_span_trees_with_their_totals_and_runs():
    seed("--logs", "2000", "--traces", "20", "--runs", "12")
    start = END - timedelta(days=90)

    traces = Trace.objects.filter(workspace_id="demo")
    assert traces.count() == 20
    kinds: Counter[str] = Counter()
    for trace in traces:
        spans = list(trace.spans.all())
        assert 3 <= len(spans) <= 12
        ids = {s.span_id for s in spans}
        assert len(ids) == len(spans)
        roots = [s for s in spans if not s.parent_id]
        assert len(roots) == 1 and roots[0].kind == "agent"
        assert all(s.parent_id in ids for s in spans if s.parent_id)
        kinds.update(s.kind for s in spans)
        for span in spans:
            assert start <= span.start_time <= span.end_time <= END
            if span.parent_id:
                parent = next(p for p in spans if p.span_id == span.parent_id)
                assert parent.start_time <= span.start_time and span.end_time <= parent.end_time
        # The totals ingest keeps on a trace.
        assert trace.span_count == len(spans)
        assert trace.error_count == sum(s.status == SpanStatus.ERROR for s in spans)
        assert trace.tokens_in == sum(s.tokens_in or 0 for s in spans)
        assert trace.tokens_out == sum(s.tokens_out or 0 for s in spans)
        assert trace.cost_usd == pytest.approx(sum(s.cost_usd or 0 for s in spans))
        assert trace.start_time == min(s.start_time for s in spans)
        assert trace.end_time == max(s.end_time for s in spans)
        assert trace.status == (SpanStatus.ERROR if trace.error_count else SpanStatus.OK)
        assert trace.name == roots[0].name and trace.prompt_name and trace.session_id
        # Every LLM span is also a log, linked to the trace and the span.
        llm = {s.span_id for s in spans if s.kind == "llm"}
        assert (
            set(
                LogRecord.objects.filter(workspace_id="demo", trace_id=trace.trace_id).values_list(
                    "span_id", flat=True
                )
            )
            == llm
        )
    assert kinds["llm"] > 20 and kinds["tool"] > 10
    assert traces.aggregate(n=Sum("span_count"))["n"] == Span.objects.filter(workspace_id="demo").count()

    runs = Run.objects.filter(workspace_id="demo")
    assert runs.count() == 12
    for run in runs.select_related("trace"):
        assert run.trace is not None
        assert run.workflow_name == run.trace.name
        assert run.created_at == run.trace.start_time and run.updated_at == run.trace.end_time
        assert run.status in (RunStatus.COMPLETED, RunStatus.FAILED)
        assert (run.output is None) == (run.status == RunStatus.FAILED)
    assert runs.values("trace").distinct().count() == 12


@pytest.mark.django_db
def test_seed_demo_creates_prompts_with_versions_and_labels():
    from registry.models import Prompt, PromptLabel, PromptVersion

    seed("--logs", "100", "--traces", "0")

    prompts = Prompt.objects.filter(workspace_id="demo")
    assert prompts.count() >= 5
    for prompt in prompts.annotate(n=Count("versions")):
        assert prompt.n >= 2
        production = PromptLabel.objects.get(prompt=prompt, name="production")
        assert production.version.status == "active"
    # Logs name the registry's prompts and versions.
    versions = set(
        PromptVersion.objects.filter(prompt__workspace_id="demo").values_list("prompt__name", "version")
    )
    logged = set(LogRecord.objects.filter(workspace_id="demo").values_list("prompt_name", "version_tag"))
    assert logged <= versions


@pytest.mark.django_db
def test_seed_demo_without_the_registry_still_seeds_telemetry(monkeypatch):
    from django.apps import apps

    from registry.models import Prompt

    real = apps.is_installed
    monkeypatch.setattr(apps, "is_installed", lambda name: name != "registry" and real(name))

    output = seed("--logs", "300", "--traces", "3")

    assert "registry app is not installed" in output
    assert not Prompt.objects.filter(workspace_id="demo").exists()
    assert LogRecord.objects.filter(workspace_id="demo").count() == 300


@pytest.mark.django_db
def test_seed_demo_is_deterministic_for_a_seed():
    seed("--workspace", "demo-a", "--logs", "1500", "--traces", "15", "--seed", "7")
    seed("--workspace", "demo-b", "--logs", "1500", "--traces", "15", "--seed", "7")
    seed("--workspace", "demo-c", "--logs", "1500", "--traces", "15", "--seed", "8")

    assert log_rows("demo-a") == log_rows("demo-b")
    assert trace_rows("demo-a") == trace_rows("demo-b")
    assert span_rows("demo-a") == span_rows("demo-b")
    assert run_rows("demo-a") == run_rows("demo-b")
    assert log_rows("demo-a") != log_rows("demo-c")
    assert trace_rows("demo-a") != trace_rows("demo-c")


@pytest.mark.django_db
def test_seed_demo_refuses_a_second_run_unless_appending():
    seed("--logs", "500", "--traces", "10")
    before = (LogRecord.objects.count(), Trace.objects.count(), Run.objects.count())

    with pytest.raises(CommandError, match="already has telemetry.*--append"):
        seed("--logs", "500", "--traces", "10")
    assert (LogRecord.objects.count(), Trace.objects.count(), Run.objects.count()) == before

    seed("--logs", "500", "--traces", "10", "--append")
    assert LogRecord.objects.filter(workspace_id="demo").count() == 1000
    assert Trace.objects.filter(workspace_id="demo").count() == 20
    assert Run.objects.filter(workspace_id="demo").count() == 10
    assert LogRollup.objects.filter(workspace_id="demo").aggregate(n=Sum("request_count"))["n"] == 1000


@pytest.mark.django_db
def test_seed_demo_into_an_existing_workspace_and_with_nothing_but_logs(workspace):
    workspace("default")
    output = seed("--workspace", "default", "--logs", "50", "--traces", "0", "--days", "1", end=None)
    assert "Created workspace" not in output
    logs = LogRecord.objects.filter(workspace_id="default")
    assert logs.count() == 50
    assert logs.filter(created_at__gte=timezone.now() - timedelta(days=1, minutes=1)).count() == 50
    assert not Trace.objects.filter(workspace_id="default").exists()
    assert not Run.objects.filter(workspace_id="default").exists()


@pytest.mark.django_db
def test_seed_demo_refuses_bad_arguments():
    with pytest.raises(CommandError, match="--end"):
        seed("--logs", "10", end="yesterday")
    with pytest.raises(CommandError, match="--days"):
        seed("--logs", "10", "--days", "0")
    with pytest.raises(CommandError):
        seed("--logs", "-5")
    assert not LogRecord.objects.exists()


@pytest.mark.django_db
def test_seed_demo_throughput(capsys):
    """Not a benchmark (those live in bench/): prints the rate so that a regression is visible."""
    started = time.perf_counter()
    seed("--workspace", "fast", "--logs", "50000", "--traces", "0")
    elapsed = time.perf_counter() - started
    assert LogRecord.objects.filter(workspace_id="fast").count() == 50_000
    by_day = defaultdict(int)
    for day in LogRecord.objects.filter(workspace_id="fast").values_list("created_at__date", flat=True):
        by_day[day] += 1
    assert len(by_day) >= 90
    with capsys.disabled():
        print(f"\nseed_demo: 50,000 logs in {elapsed:.1f} s = {50_000 / elapsed:,.0f} logs/s")  # noqa: T201


@pytest.mark.django_db
def test_seed_demo_scores_one_suite_per_prompt_over_the_window(api, make_key):
    from evaluations.models import Evaluation, EvaluationResult, ResultRollup

    output = seed("--logs", "0", "--traces", "0", "--results", "3000")
    assert "3,000 evaluation results" in output
    assert re.search(r"results \[#+\] 100%\s+3,000/3,000", output)
    suites = Evaluation.objects.filter(workspace_id="demo")
    assert suites.count() == 6 and all(s.threshold == 0.7 for s in suites)
    results = EvaluationResult.objects.filter(workspace_id="demo")
    instants = list(results.values_list("created_at", flat=True))
    assert len(instants) == 3000 and min(instants) >= END - timedelta(days=90) and max(instants) <= END
    # The rollups hold exactly what the results say, per suite and version.
    by_rows = Counter(results.values_list("evaluation_id", "version_tag"))
    by_rollups = {
        (row["evaluation_id"], row["version_tag"]): row["n"]
        for row in ResultRollup.objects.values("evaluation_id", "version_tag").annotate(n=Sum("result_count"))
    }
    assert by_rollups == by_rows
    assert all(r.passed == (r.score >= 0.7) for r in results)
    # Later versions score better: the comparison the dashboard shows has something to find.
    key = make_key("read", workspace="demo")[1]
    suite = suites.get(name="summarize-ticket-quality")
    versions = sorted({v for s, v in by_rows if s == suite.pk})
    query = f"versions={versions[0]},{versions[-1]}"
    compared = api.get(f"/v1/evaluations/{suite.pk}/compare?{query}", key=key, workspace="demo")
    assert compared.status_code == 200, compared.content
    assert compared.json()["comparisons"][0]["mean"]["difference"] > 0
