"""Prompts, their immutable versions, labels that point at versions, and the labels' history."""

from __future__ import annotations

import json
from typing import Any

from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from registry.documents import LABEL_RE, NAME_RE, serialize
from tenancy.models import Workspace

prompt_name_validator = RegexValidator(NAME_RE, "Name must be 1-128 letters, digits, hyphens or underscores.")
label_name_validator = RegexValidator(
    LABEL_RE, "Label must be 1-128 letters, digits, dots, hyphens or underscores, not only dots."
)


class DocumentField(models.TextField):
    """A JSON document kept as its exact stored text, not as ``jsonb``: PostgreSQL's jsonb reorders
    object keys, and the row must reproduce the bytes in the store (diffs, exports, the key order
    clients see). Python dicts keep insertion order both ways."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        return None if value is None else json.loads(value)

    def to_python(self, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None or isinstance(value, str):
            return value
        return serialize(value).decode()

    def value_to_string(self, obj: models.Model) -> str:
        return self.get_prep_value(self.value_from_object(obj)) or ""


class Prompt(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="prompts")
    name = models.CharField(max_length=128, validators=[prompt_name_validator])
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="prompt_unique_name")]

    def __str__(self) -> str:
        return self.name


class VersionStatus(models.TextChoices):
    # Two-phase write: the row is committed as pending before the store is written, and becomes
    # active only once the content is durable. Reads never see pending rows.
    PENDING = "pending", "pending"
    ACTIVE = "active", "active"


class PromptVersionQuerySet(models.QuerySet["PromptVersion"]):
    def active(self) -> PromptVersionQuerySet:
        return self.filter(status=VersionStatus.ACTIVE)


class PromptVersion(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=64, help_text="A SemVer 2.0 version, ordered by precedence.")
    document = DocumentField()
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the stored bytes.")
    commit_sha = models.CharField(max_length=40, blank=True)
    tag = models.CharField(max_length=255, blank=True)
    driver = models.CharField(max_length=16)
    author = models.CharField(max_length=256, blank=True)
    status = models.CharField(max_length=8, choices=VersionStatus.choices, default=VersionStatus.PENDING)
    created_at = models.DateTimeField(default=timezone.now)

    objects = PromptVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "prompt", "version"], name="prompt_version_unique")
        ]
        indexes = [
            models.Index(fields=["prompt", "status", "created_at"], name="prompt_version_list"),
            models.Index(fields=["status", "created_at"], name="prompt_version_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.prompt.name}@{self.version}"


class PromptLabel(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=128, validators=[label_name_validator])
    # RESTRICT, not PROTECT: deleting a whole prompt (or workspace) cascades through both.
    version = models.ForeignKey(PromptVersion, on_delete=models.RESTRICT, related_name="labels")
    set_by = models.CharField(max_length=256, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "prompt", "name"], name="prompt_label_unique")
        ]

    def __str__(self) -> str:
        return f"{self.prompt.name}:{self.name}"


class PromptLabelEvent(models.Model):
    """Append-only: one row per label move or removal (to_version is null for a removal)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="label_events")
    label = models.CharField(max_length=128)
    from_version = models.ForeignKey(
        PromptVersion, on_delete=models.RESTRICT, null=True, blank=True, related_name="+"
    )
    to_version = models.ForeignKey(
        PromptVersion, on_delete=models.RESTRICT, null=True, blank=True, related_name="+"
    )
    actor = models.CharField(max_length=256, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["prompt", "label", "created_at"], name="prompt_label_history")]

    def __str__(self) -> str:
        return f"{self.prompt.name}:{self.label}"

    @property
    def action(self) -> str:
        """What the event did, in the history's words: create, move or delete."""
        if self.to_version_id is None:
            return "delete"
        return "create" if self.from_version_id is None else "move"
