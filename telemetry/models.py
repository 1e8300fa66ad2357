"""Telemetry: one row per LLM call (LogRecord), traces of spans, workflow runs, hourly rollups,
per-workspace prices and retention.

Ids sent by clients (trace, span, run) are stored as text: UUIDs, OTel hex ids and prefixed ids
alike. Logs and spans refer to traces and runs by id, not by foreign key, because telemetry
arrives in any order (OTLP exporters send children before their parents).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from tenancy.models import Workspace


class LogStatus(models.TextChoices):
    OK = "ok", "ok"
    ERROR = "error", "error"


class CostSource(models.TextChoices):
    SUPPLIED = "supplied", "supplied by the client"
    COMPUTED = "computed", "computed from the price book"
    UNKNOWN = "", "unknown (no price)"


class LogRecord(models.Model):
    """One LLM call."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    prompt_name = models.CharField(max_length=128, blank=True)
    version_tag = models.CharField(max_length=64, blank=True)
    provider = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=128, blank=True)
    tokens_in = models.PositiveBigIntegerField(null=True, blank=True)
    tokens_out = models.PositiveBigIntegerField(null=True, blank=True)
    cached_tokens = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Input tokens read from cache."
    )
    reasoning_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    latency_ms = models.PositiveBigIntegerField(null=True, blank=True)
    cost_usd = models.FloatField(null=True, blank=True)
    cost_source = models.CharField(max_length=8, choices=CostSource.choices, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=LogStatus.choices, default=LogStatus.OK)
    error_code = models.CharField(max_length=64, blank=True)
    ollama_options = models.JSONField(null=True, blank=True)
    ollama_keep_alive = models.CharField(max_length=16, blank=True)
    ollama_format = models.JSONField(null=True, blank=True)
    trace_id = models.CharField(max_length=128, blank=True)
    span_id = models.CharField(max_length=128, blank=True)
    run_id = models.CharField(max_length=128, blank=True)
    session_id = models.CharField(max_length=256, blank=True)
    user_id = models.CharField(max_length=256, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Every list is "this workspace, newest first" (keyset on (created_at, id)), narrowed by
            # at most one selective filter; each filter gets its own (workspace, field, time) index.
            models.Index(fields=["workspace", "-created_at", "-id"], name="log_ws_time"),
            models.Index(
                fields=["workspace", "prompt_name", "version_tag", "-created_at"], name="log_ws_prompt"
            ),
            models.Index(fields=["workspace", "model", "-created_at"], name="log_ws_model"),
            models.Index(fields=["workspace", "status", "-created_at"], name="log_ws_status"),
            models.Index(fields=["workspace", "session_id", "-created_at"], name="log_ws_session"),
            models.Index(fields=["workspace", "trace_id"], name="log_ws_trace"),
            models.Index(fields=["workspace", "run_id"], name="log_ws_run"),
        ]

    def __str__(self) -> str:
        return f"log {self.pk}"


class SpanStatus(models.TextChoices):
    UNSET = "unset", "unset"
    OK = "ok", "ok"
    ERROR = "error", "error"
    RUNNING = "running", "running"


class TraceSource(models.TextChoices):
    API = "api", "REST API"
    OTLP = "otlp", "OpenTelemetry (OTLP)"


class Trace(models.Model):
    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    trace_id = models.CharField(max_length=128)
    name = models.CharField(max_length=256, blank=True)
    prompt_name = models.CharField(max_length=128, blank=True)
    version_tag = models.CharField(max_length=64, blank=True)
    session_id = models.CharField(max_length=256, blank=True)
    user_id = models.CharField(max_length=256, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=SpanStatus.choices, default=SpanStatus.UNSET)
    source = models.CharField(max_length=8, choices=TraceSource.choices, default=TraceSource.API)
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    # Rolled up from the spans at every span write, so lists and the trace page never aggregate.
    span_count = models.PositiveIntegerField(default=0)
    # Bumped by every span write: the trace page's rendered body is cached under (id, version).
    version = models.PositiveBigIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)
    cost_usd = models.FloatField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["workspace", "trace_id"], name="trace_unique_id")]
        indexes = [
            models.Index(fields=["workspace", "-created_at", "-id"], name="trace_ws_time"),
            models.Index(fields=["workspace", "prompt_name", "-created_at"], name="trace_ws_prompt"),
            models.Index(fields=["workspace", "status", "-created_at"], name="trace_ws_status"),
            models.Index(fields=["workspace", "session_id", "-created_at"], name="trace_ws_session"),
            models.Index(fields=["workspace", "user_id", "-created_at"], name="trace_ws_user"),
        ]

    def __str__(self) -> str:
        return self.trace_id

    @property
    def duration_ms(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds() * 1000


class Span(models.Model):
    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="spans", db_index=False)
    span_id = models.CharField(max_length=128)
    parent_id = models.CharField(max_length=128, blank=True)
    name = models.CharField(max_length=256)
    kind = models.CharField(max_length=32, blank=True, help_text="llm, tool, agent, chain, retriever, …")
    status = models.CharField(max_length=8, choices=SpanStatus.choices, default=SpanStatus.UNSET)
    status_message = models.TextField(blank=True)
    # Microsecond precision (OTLP sends nanoseconds; the REST API milliseconds).
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True, help_text="REST metadata or OTLP attributes.")
    events = models.JSONField(default=list, blank=True)
    model = models.CharField(max_length=128, blank=True)
    provider = models.CharField(max_length=64, blank=True)
    tokens_in = models.PositiveBigIntegerField(null=True, blank=True)
    tokens_out = models.PositiveBigIntegerField(null=True, blank=True)
    cached_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    reasoning_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    cost_usd = models.FloatField(null=True, blank=True)
    cost_source = models.CharField(max_length=8, choices=CostSource.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["start_time", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "trace", "span_id"], name="span_unique_id")
        ]
        indexes = [models.Index(fields=["trace", "start_time"], name="span_trace_time")]

    def __str__(self) -> str:
        return self.span_id


class RunStatus(models.TextChoices):
    RUNNING = "running", "running"
    COMPLETED = "completed", "completed"
    FAILED = "failed", "failed"


class Run(models.Model):
    """A workflow run (upstream's ``runs``)."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    run_id = models.CharField(max_length=128)
    workflow_name = models.CharField(max_length=128)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    trace = models.ForeignKey(Trace, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["workspace", "run_id"], name="run_unique_id")]
        indexes = [
            models.Index(fields=["workspace", "-created_at", "-id"], name="run_ws_time"),
            models.Index(fields=["workspace", "workflow_name", "-created_at"], name="run_ws_workflow"),
            models.Index(fields=["workspace", "status", "-created_at"], name="run_ws_status"),
        ]

    def __str__(self) -> str:
        return self.run_id


class LogRollup(models.Model):
    """Per workspace, hour and prompt version: sums of the logs, kept current at ingest, so metrics
    read a few hundred rows instead of scanning millions of logs. Latency percentiles come from a
    fixed log-scale histogram (``latency_histogram``: bucket index -> count)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    hour = models.DateTimeField()
    prompt_name = models.CharField(max_length=128, blank=True)
    version_tag = models.CharField(max_length=64, blank=True)
    request_count = models.PositiveBigIntegerField(default=0)
    error_count = models.PositiveBigIntegerField(default=0)
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)
    cost_usd = models.FloatField(default=0)
    latency_count = models.PositiveBigIntegerField(default=0)
    latency_sum_ms = models.PositiveBigIntegerField(default=0)
    latency_histogram = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "hour", "prompt_name", "version_tag"], name="log_rollup_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.prompt_name}@{self.version_tag}"


class ModelPrice(models.Model):
    """A workspace's own price for a model, taking precedence over the built-in price book."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="model_prices")
    model_pattern = models.CharField(
        max_length=128, help_text="An exact model name, or a glob such as gpt-4o-* (exact names win)."
    )
    provider = models.CharField(max_length=64, blank=True)
    input_per_mtok = models.FloatField(help_text="USD per million input tokens.")
    output_per_mtok = models.FloatField(help_text="USD per million output tokens.")
    cached_input_per_mtok = models.FloatField(null=True, blank=True)
    reasoning_per_mtok = models.FloatField(null=True, blank=True, help_text="Defaults to the output price.")
    effective_from = models.DateField(default=timezone.now)

    class Meta:
        ordering = ["model_pattern", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "model_pattern", "provider", "effective_from"], name="model_price_unique"
            )
        ]

    def __str__(self) -> str:
        return self.model_pattern


class TelemetrySettings(models.Model):
    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="telemetry_settings")
    retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Delete logs, traces, spans and runs older than this; empty keeps all.",
    )

    class Meta:
        verbose_name_plural = "telemetry settings"

    def __str__(self) -> str:
        return f"telemetry settings of {self.workspace_id}"
