"""Evaluation suites, their results over time, datasets and evaluation runs.

A suite (``Evaluation``) scores one prompt; each ``EvaluationResult`` is one scored output, tagged
with the prompt version actually scored. ``ResultRollup`` keeps hourly sums per (suite, version)
so trends and version comparisons read a few thousand rows, not millions of results. A ``Dataset``
is a list of inputs with expected outputs; an ``EvalRun`` scores a suite's rules over a dataset
and always ends, ``completed`` or ``failed`` (upstream's runs stayed ``running`` forever).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from tenancy.models import Workspace


class ScoreType(models.TextChoices):
    NUMERIC = "numeric", "numeric"
    BOOLEAN = "boolean", "boolean (score 1 or 0)"
    CATEGORICAL = "categorical", "categorical (a label)"


class PassRule(models.TextChoices):
    GTE = "gte", "score ≥ threshold"
    GT = "gt", "score > threshold"
    LTE = "lte", "score ≤ threshold"
    LT = "lt", "score < threshold"


class Evaluation(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    name = models.CharField(max_length=128)
    description = models.CharField(max_length=1024, blank=True)
    prompt_name = models.CharField(max_length=128)
    version_tag = models.CharField(max_length=64, blank=True, help_text="The version scored by default.")
    criteria = models.JSONField(null=True, blank=True, help_text='Free-form; {"rules": [...]} is scored.')
    score_type = models.CharField(max_length=16, choices=ScoreType.choices, default=ScoreType.NUMERIC)
    threshold = models.FloatField(null=True, blank=True)
    pass_rule = models.CharField(max_length=8, choices=PassRule.choices, default=PassRule.GTE)
    pass_labels = models.JSONField(default=list, blank=True, help_text="Categorical: the labels that pass.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="evaluation_unique_name")]
        indexes = [models.Index(fields=["workspace", "-created_at", "-id"], name="evaluation_ws_time")]

    def __str__(self) -> str:
        return self.name


class EvalRunStatus(models.TextChoices):
    RUNNING = "running", "running"
    COMPLETED = "completed", "completed"
    FAILED = "failed", "failed"


class Dataset(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    name = models.CharField(max_length=128)
    description = models.CharField(max_length=1024, blank=True)
    row_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "-created_at", "-id"], name="dataset_ws_time")]

    def __str__(self) -> str:
        return self.name


class DatasetRow(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="rows", db_index=False)
    position = models.PositiveIntegerField()
    input = models.JSONField()
    expected_output = models.JSONField(null=True, blank=True)
    # A row may carry the output to score (a run then needs no ``outputs`` array).
    output = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["dataset", "position"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "position"], name="dataset_row_unique_position")
        ]

    def __str__(self) -> str:
        return f"row {self.position} of dataset {self.dataset_id}"


class EvalRun(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="runs")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, null=True, blank=True, related_name="runs")
    version_tag = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=EvalRunStatus.choices, default=EvalRunStatus.RUNNING)
    score = models.FloatField(null=True, blank=True)
    passed_count = models.PositiveIntegerField(null=True, blank=True)
    row_count = models.PositiveIntegerField(null=True, blank=True)
    # Per row: {"row": position, "score", "passed", "checks": [...]}; the wire's ``results_json``.
    results = models.JSONField(null=True, blank=True)
    reason = models.CharField(max_length=1024, blank=True, help_text="Why a run failed.")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.evaluation_id}"


class EvaluationResult(models.Model):
    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    evaluation = models.ForeignKey(
        Evaluation, on_delete=models.CASCADE, related_name="results", db_index=False
    )
    score = models.FloatField(null=True, blank=True)
    passed = models.BooleanField(null=True, blank=True)
    label = models.CharField(max_length=128, blank=True)
    version_tag = models.CharField(max_length=64, blank=True)
    run_id = models.CharField(max_length=128, blank=True)
    trace_id = models.CharField(max_length=128, blank=True)
    eval_run = models.ForeignKey(
        EvalRun, on_delete=models.CASCADE, null=True, blank=True, related_name="+", db_index=False
    )
    metadata = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["evaluation", "-created_at", "-id"], name="result_eval_time"),
            models.Index(fields=["workspace", "created_at"], name="result_ws_time"),
            models.Index(fields=["eval_run"], name="result_eval_run"),
        ]

    def __str__(self) -> str:
        return f"result {self.pk}"


class ResultRollup(models.Model):
    """Sums of one suite's results for one UTC hour and prompt version, kept at ingest."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="+", db_index=False)
    hour = models.DateTimeField()
    version_tag = models.CharField(max_length=64, blank=True)
    result_count = models.PositiveBigIntegerField(default=0)
    score_count = models.PositiveBigIntegerField(default=0)
    score_sum = models.FloatField(default=0.0)
    score_sq_sum = models.FloatField(default=0.0)
    score_min = models.FloatField(null=True, blank=True)
    score_max = models.FloatField(null=True, blank=True)
    passed_count = models.PositiveBigIntegerField(default=0)
    judged_count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["evaluation", "hour", "version_tag"], name="result_rollup_unique")
        ]
        indexes = [models.Index(fields=["workspace", "hour"], name="result_rollup_ws_hour")]

    def __str__(self) -> str:
        return f"{self.evaluation_id} {self.hour:%Y-%m-%d %H}h {self.version_tag}"
