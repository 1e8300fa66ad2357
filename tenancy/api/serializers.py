from __future__ import annotations

from rest_framework import serializers

from config.api import BlankAsNullField, UnixSecondsField
from tenancy.models import MASTER_WORKSPACE, WORKSPACE_ID_RE, ApiKey, AuditLog, Workspace


class ApiKeySerializer(serializers.ModelSerializer):
    workspace_id = serializers.CharField(source="workspace_label", read_only=True)
    created_at = UnixSecondsField()
    expires_at = UnixSecondsField()
    last_used_at = UnixSecondsField()

    class Meta:
        model = ApiKey
        fields = ["id", "name", "scopes", "workspace_id", "created_at", "expires_at", "last_used_at"]
        read_only_fields = fields


class ApiKeyCreatedSerializer(ApiKeySerializer):
    """The create response: the only time the plaintext ``key`` is ever shown."""

    key = serializers.CharField(read_only=True)

    class Meta(ApiKeySerializer.Meta):
        fields = ["id", "name", "workspace_id", "scopes", "created_at", "expires_at", "key"]
        read_only_fields = fields


class ApiKeyCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=128)
    # A comma-separated string, as upstream; a JSON array is refused (422) as upstream does.
    scopes = serializers.CharField(max_length=256, default="read,write")
    workspace_id = serializers.CharField(max_length=128, required=False)
    expires_in_days = serializers.IntegerField(min_value=1, max_value=36500, required=False)

    def validate_workspace_id(self, value: str) -> str:
        if value != MASTER_WORKSPACE:
            serializers.RegexField(WORKSPACE_ID_RE).run_validation(value)
        return value


class AuditLogSerializer(serializers.ModelSerializer):
    timestamp = UnixSecondsField()
    prompt_name = BlankAsNullField()
    version_tag = BlankAsNullField()
    target_id = BlankAsNullField()
    api_key_name = serializers.SerializerMethodField()

    class Meta:
        model = AuditLog
        fields = [
            "id",
            "action",
            "prompt_name",
            "version_tag",
            "api_key_name",
            "ip_address",
            "timestamp",
            "workspace_id",
            "target_id",
        ]
        read_only_fields = fields

    def get_api_key_name(self, entry: AuditLog) -> str:
        return entry.api_key_name or "unknown"


class WorkspaceSerializer(serializers.ModelSerializer):
    created_at = UnixSecondsField()

    class Meta:
        model = Workspace
        fields = ["id", "name", "created_at"]
        read_only_fields = fields


class WorkspaceCreateInputSerializer(serializers.Serializer):
    id = serializers.RegexField(WORKSPACE_ID_RE, max_length=128)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
