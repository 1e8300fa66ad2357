"""Operator screens for prompts, their immutable versions, labels and the labels' history.

Versions are content: the admin shows them (the document pretty-printed) and never adds, edits or
deletes one. Labels are the only thing an operator changes here, and only through
``registry.services.label_set`` / ``label_delete``, so an admin move is audited, recorded in the
label history and visible on the very next resolve, exactly like a move through the API.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from config.admin import ServiceDeleteAdminMixin, ViewOnlyAdminMixin
from registry import semver
from registry.documents import serialize
from registry.models import Prompt, PromptLabel, PromptLabelEvent, PromptVersion, VersionStatus
from registry.services import label_delete, label_set
from tenancy.context import actor_from_request

# Columns of a version needed to name it; never the (possibly large) document.
_VERSION_NAME_FIELDS = ("id", "prompt_id", "version")


def _version_choices() -> QuerySet[PromptVersion]:
    return PromptVersion.objects.active().select_related("prompt").defer("document")


@admin.register(Prompt)
class PromptAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "workspace", "active_versions", "latest_version", "label_list"]
    list_filter = ["workspace"]
    list_select_related = ["workspace"]
    search_fields = ["name"]
    fields = ["workspace", "name", "created_at", "active_versions", "latest_version", "label_list"]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Prompt]:
        # One query for the page, one for its active versions, one for its labels: no N+1.
        return (
            super()
            .get_queryset(request)
            .annotate(
                active_version_count=Count(
                    "versions", filter=Q(versions__status=VersionStatus.ACTIVE), distinct=True
                )
            )
            .prefetch_related(
                Prefetch(
                    "versions",
                    queryset=PromptVersion.objects.active().only(*_VERSION_NAME_FIELDS),
                    to_attr="active_version_rows",
                ),
                Prefetch(
                    "labels",
                    queryset=PromptLabel.objects.select_related("version")
                    .only("id", "prompt_id", "name", "version_id", "version__id", "version__version")
                    .order_by("name"),
                    to_attr="label_rows",
                ),
            )
        )

    @admin.display(description="active versions", ordering="active_version_count")
    def active_versions(self, obj: Prompt) -> int:
        return obj.active_version_count  # type: ignore[attr-defined]

    @admin.display(description="latest version")
    def latest_version(self, obj: Prompt) -> str:
        return semver.latest([v.version for v in obj.active_version_rows]) or "-"  # type: ignore[attr-defined]

    @admin.display(description="labels")
    def label_list(self, obj: Prompt) -> str:
        rows = obj.label_rows  # type: ignore[attr-defined]
        return ", ".join(f"{label.name} → {label.version.version}" for label in rows) or "-"


@admin.register(PromptVersion)
class PromptVersionAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["prompt", "version", "status", "author", "short_commit_sha", "created_at"]
    list_filter = ["status", "workspace", "driver"]
    list_select_related = ["prompt"]
    search_fields = ["prompt__name", "version"]
    fields = [
        "workspace",
        "prompt",
        "version",
        "status",
        "driver",
        "author",
        "created_at",
        "commit_sha",
        "tag",
        "sha256",
        "pretty_document",
    ]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[PromptVersion]:
        queryset = super().get_queryset(request)
        # The changelist never shows documents; the change (view) page needs it.
        match = request.resolver_match
        if match is not None and (match.url_name or "").endswith("_changelist"):
            queryset = queryset.defer("document")
        return queryset

    @admin.display(description="commit", ordering="commit_sha")
    def short_commit_sha(self, obj: PromptVersion) -> str:
        return obj.commit_sha[:12] or "-"

    @admin.display(description="document")
    def pretty_document(self, obj: PromptVersion) -> str:
        return format_html(
            '<pre style="white-space: pre-wrap; margin: 0">{}</pre>', serialize(obj.document).decode()
        )


class PromptLabelForm(forms.ModelForm):
    """Add: choose prompt, label and version (blank = latest). Change: only the version moves."""

    class Meta:
        model = PromptLabel
        fields = ["prompt", "name", "version"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        version = self.fields.get("version")
        if self.instance.pk:
            if version is not None:
                version.queryset = _version_choices().filter(prompt_id=self.instance.prompt_id)
                version.label_from_instance = lambda v: v.version  # type: ignore[method-assign]
            return
        prompt = self.fields.get("prompt")
        if prompt is not None:
            prompt.queryset = Prompt.objects.order_by("workspace_id", "name")
            prompt.label_from_instance = lambda p: f"{p.workspace_id} / {p.name}"  # type: ignore[method-assign]
        if version is not None:
            version.queryset = _version_choices().order_by("workspace_id", "prompt__name", "-created_at")
            version.label_from_instance = (  # type: ignore[method-assign]
                lambda v: f"{v.workspace_id} / {v.prompt.name} @ {v.version}"
            )
            version.required = False
            version.empty_label = "(latest version)"
            version.help_text = "Blank points the label at the prompt's latest version."

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        prompt = self.instance.prompt if self.instance.pk else data.get("prompt")
        version = data.get("version")
        if prompt is None:
            return data
        if version is not None and version.prompt_id != prompt.pk:
            self.add_error("version", f"Choose a version of {prompt.name!r}.")
        elif version is None and not PromptVersion.objects.active().filter(prompt=prompt).exists():
            self.add_error("prompt", f"{prompt.name!r} has no active version yet.")
        name = data.get("name")
        if not self.instance.pk and name and PromptLabel.objects.filter(prompt=prompt, name=name).exists():
            self.add_error("name", f"{prompt.name!r} already has a label {name!r}; change that one instead.")
        return data


@admin.register(PromptLabel)
class PromptLabelAdmin(ServiceDeleteAdminMixin, admin.ModelAdmin):
    delete_select_related = ("prompt",)
    form = PromptLabelForm
    list_display = ["name", "prompt", "version_tag", "workspace", "set_by", "updated_at"]
    list_filter = ["workspace"]
    list_select_related = ["prompt", "version", "workspace"]
    search_fields = ["name", "prompt__name"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PromptLabel]:
        # The changelist adds list_select_related only to a queryset without select_related: name all.
        return (
            super().get_queryset(request).select_related(*self.list_select_related).defer("version__document")
        )

    def get_fields(self, request: HttpRequest, obj: PromptLabel | None = None) -> list[str]:
        if obj is None:
            return ["prompt", "name", "version"]
        return ["workspace", "prompt", "name", "version", "set_by", "created_at", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: PromptLabel | None = None) -> list[str]:
        if obj is None:
            return []
        return ["workspace", "prompt", "name", "set_by", "created_at", "updated_at"]

    @admin.display(description="version", ordering="version__version")
    def version_tag(self, obj: PromptLabel) -> str:
        return obj.version.version

    def save_model(self, request: HttpRequest, obj: PromptLabel, form: forms.Form, change: bool) -> None:
        version = form.cleaned_data.get("version")
        label = label_set(
            workspace_id=obj.prompt.workspace_id,
            prompt_name=obj.prompt.name,
            label=obj.name,
            version=version.version if version is not None else None,
            actor=actor_from_request(request),
        )
        obj.pk, obj.workspace_id, obj.version = label.pk, label.workspace_id, label.version
        obj.set_by, obj.created_at, obj.updated_at = label.set_by, label.created_at, label.updated_at

    def delete_model(self, request: HttpRequest, obj: PromptLabel) -> None:
        label_delete(
            workspace_id=obj.workspace_id,
            prompt_name=obj.prompt.name,
            label=obj.name,
            actor=actor_from_request(request),
        )


@admin.register(PromptLabelEvent)
class PromptLabelEventAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "workspace", "prompt", "label", "from_tag", "to_tag", "actor"]
    list_filter = ["workspace"]
    list_select_related = ["workspace", "prompt", "from_version", "to_version"]
    search_fields = ["prompt__name", "label", "actor"]
    fields = ["created_at", "workspace", "prompt", "label", "from_tag", "to_tag", "actor"]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[PromptLabelEvent]:
        return (
            super()
            .get_queryset(request)
            .select_related(*self.list_select_related)
            .defer("from_version__document", "to_version__document")
        )

    @admin.display(description="from")
    def from_tag(self, obj: PromptLabelEvent) -> str:
        return obj.from_version.version if obj.from_version is not None else "-"

    @admin.display(description="to")
    def to_tag(self, obj: PromptLabelEvent) -> str:
        return obj.to_version.version if obj.to_version is not None else "(removed)"
