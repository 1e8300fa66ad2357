"""Tenants (workspaces), who may act in them (memberships, API keys) and what they did (audit log)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

# \Z, not $: "$" also matches before a trailing newline.
WORKSPACE_ID_RE = r"^[A-Za-z0-9_-]{1,128}\Z"
MASTER_WORKSPACE = "*"

workspace_id_validator = RegexValidator(
    WORKSPACE_ID_RE, "Workspace id must be 1-128 letters, digits, hyphens or underscores."
)


class Scope(models.TextChoices):
    READ = "read", "read"
    WRITE = "write", "write"
    ADMIN = "admin", "admin"
    # Least privilege for SDKs and OTLP exporters: telemetry writes only, no reads.
    INGEST = "ingest", "ingest"


class Workspace(models.Model):
    """A tenant. Every tenant-owned row points here and every uniqueness key includes it."""

    id = models.CharField(
        primary_key=True, max_length=128, validators=[workspace_id_validator], verbose_name="workspace id"
    )
    name = models.CharField(max_length=200, blank=True, help_text="Display name; defaults to the id.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name or self.id


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    EDITOR = "editor", "Editor"
    ADMIN = "admin", "Admin"


# What a dashboard user may do in a workspace, expressed in API-key scopes so that one permission
# check serves both kinds of caller.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.VIEWER: frozenset({Scope.READ}),
    Role.EDITOR: frozenset({Scope.READ, Scope.WRITE, Scope.INGEST}),
    Role.ADMIN: frozenset({Scope.READ, Scope.WRITE, Scope.INGEST, Scope.ADMIN}),
}


class Membership(models.Model):
    """A dashboard user's role in one workspace."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["workspace_id", "user_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "workspace"],
                name="tenancy_membership_unique_user_workspace",
                violation_error_message="This user is already a member of this workspace.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace_id} ({self.role})"


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """An API key. Only the HMAC-SHA256 of the plaintext is stored; a null workspace is a master key."""

    name = models.CharField(max_length=128)
    workspace = models.ForeignKey(
        Workspace,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="api_keys",
        help_text="Empty for a master key (workspace '*'), which may address every workspace.",
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.CharField(max_length=256, default="read,write", help_text="Comma-separated scopes.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"
        indexes = [models.Index(fields=["workspace", "created_at"], name="tenancy_apikey_ws_created")]
        constraints = [
            models.CheckConstraint(
                condition=~Q(name=""),
                name="tenancy_apikey_name_not_empty",
                violation_error_message="API key name must not be empty.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.workspace_label})"

    @property
    def is_master(self) -> bool:
        return self.workspace_id is None

    @property
    def workspace_label(self) -> str:
        return MASTER_WORKSPACE if self.workspace_id is None else self.workspace_id

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(s.strip() for s in self.scopes.split(",") if s.strip())

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at < now


class AuditLog(models.Model):
    """One successful mutation: who did what to which object, from where, and when."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="audit_logs")
    action = models.CharField(max_length=64)
    target_id = models.CharField(max_length=256, blank=True, default="")
    prompt_name = models.CharField(max_length=256, blank=True, default="")
    version_tag = models.CharField(max_length=256, blank=True, default="")
    api_key_name = models.CharField(max_length=256, blank=True, default="")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    timestamp = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["workspace", "timestamp"], name="tenancy_audit_ws_ts"),
            models.Index(fields=["workspace", "action", "timestamp"], name="tenancy_audit_ws_action_ts"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target_id} by {self.api_key_name or self.user_id}"
