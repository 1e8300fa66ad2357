from __future__ import annotations

from typing import Any

from rest_framework import serializers

from config.api import BlankAsNullField, UnixSecondsField
from registry.cache import ResolvedVersion
from registry.models import PromptLabel, PromptLabelEvent, PromptVersion


def version_record(resolved: ResolvedVersion | PromptVersion, name: str | None = None) -> dict[str, Any]:
    """Upstream's "version record" (git driver shape: name, version_tag, commit_sha, created_at),
    plus the tag, the content hash, the driver and the author."""
    created = resolved.created_at
    return {
        "name": name or resolved.name,  # type: ignore[union-attr]
        "version_tag": resolved.version,
        "commit_sha": resolved.commit_sha or None,
        "tag": resolved.tag or None,
        "sha256": resolved.sha256,
        "driver": resolved.driver,
        "author": resolved.author or None,
        "created_at": created if isinstance(created, int) else int(created.timestamp()),
    }


class PromptVersionRowSerializer(serializers.ModelSerializer[PromptVersion]):
    """The index row, as upstream's ``GET /v1/prompts/{name}/versions`` returns it."""

    name = serializers.CharField(source="prompt.name")
    version_tag = serializers.CharField(source="version")
    commit_sha = BlankAsNullField()
    fs_path = serializers.SerializerMethodField()
    active_version_id = serializers.SerializerMethodField()
    created_at = UnixSecondsField()

    class Meta:
        model = PromptVersion
        fields = [
            "id",
            "name",
            "version_tag",
            "commit_sha",
            "tag",
            "sha256",
            "fs_path",
            "driver",
            "created_at",
            "author",
            "workspace_id",
            "status",
            "active_version_id",
        ]

    def get_fs_path(self, obj: PromptVersion) -> None:
        return None  # upstream leaked an absolute server path here

    def get_active_version_id(self, obj: PromptVersion) -> None:
        return None  # set by upstream's A/B promotion, which this server does not have


class PromptLabelSerializer(serializers.ModelSerializer[PromptLabel]):
    prompt_name = serializers.CharField(source="prompt.name")
    version_tag = serializers.CharField(source="version.version")
    created_at = UnixSecondsField()
    updated_at = UnixSecondsField()

    class Meta:
        model = PromptLabel
        fields = ["prompt_name", "name", "version_tag", "set_by", "created_at", "updated_at"]


class PromptLabelEventSerializer(serializers.ModelSerializer[PromptLabelEvent]):
    prompt_name = serializers.CharField(source="prompt.name")
    from_version = serializers.CharField(source="from_version.version", default=None)
    to_version = serializers.CharField(source="to_version.version", default=None)
    action = serializers.CharField(read_only=True)
    created_at = UnixSecondsField()

    class Meta:
        model = PromptLabelEvent
        fields = ["id", "prompt_name", "label", "action", "from_version", "to_version", "actor", "created_at"]


class LabelInputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=128)
    version_tag = serializers.CharField(max_length=64, required=False, allow_null=True)


class RenderInputSerializer(serializers.Serializer[Any]):
    variables = serializers.DictField(required=False, default=dict)
    version = serializers.CharField(max_length=64, required=False)
    label = serializers.CharField(max_length=128, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "version" in attrs and "label" in attrs:
            raise serializers.ValidationError("give either version or label, not both")
        return attrs
