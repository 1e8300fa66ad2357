"""Operator screens for workspaces, memberships, API keys and the audit log.

Keys are created through ``api_key_issue`` (the plaintext is shown once, in a message) and revoked
through ``api_key_revoke``; the admin never deletes a key row or shows its hash as editable.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from config.admin import ServiceDeleteAdminMixin, ViewOnlyAdminMixin
from tenancy.context import actor_from_request
from tenancy.models import ApiKey, AuditLog, Membership, Scope, Workspace
from tenancy.services import (
    api_key_issue,
    api_key_revoke,
    expiry_after_days,
    membership_delete,
    membership_set,
    workspace_create,
    workspace_delete,
)


@admin.register(Workspace)
class WorkspaceAdmin(ServiceDeleteAdminMixin, admin.ModelAdmin):
    list_display = ["id", "name", "created_at"]
    search_fields = ["id", "name"]

    def get_readonly_fields(self, request: HttpRequest, obj: Workspace | None = None) -> list[str]:
        return ["id", "created_at"] if obj else ["created_at"]

    def save_model(self, request: HttpRequest, obj: Workspace, form: forms.Form, change: bool) -> None:
        if change:
            obj.save(update_fields=["name"])
        else:
            workspace_create(workspace_id=obj.id, name=obj.name, actor=actor_from_request(request))

    def delete_model(self, request: HttpRequest, obj: Workspace) -> None:
        workspace_delete(workspace=obj)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, set[str], Any]:
        # Deleting a workspace deletes its keys and audit trail by design; those admins refuse
        # deletion one row at a time, which must not veto the workspace's own deletion.
        deleted, counts, _, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected


@admin.register(Membership)
class MembershipAdmin(ServiceDeleteAdminMixin, admin.ModelAdmin):
    delete_select_related = ("user",)
    list_display = ["user", "workspace", "role", "created_at"]
    list_filter = ["role", "workspace"]
    autocomplete_fields = ["user", "workspace"]

    def save_model(self, request: HttpRequest, obj: Membership, form: forms.Form, change: bool) -> None:
        membership = membership_set(
            user=obj.user, workspace=obj.workspace, role=obj.role, actor=actor_from_request(request)
        )
        obj.pk = membership.pk

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        membership_delete(membership=obj, actor=actor_from_request(request))


class ApiKeyAddForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, widget=forms.CheckboxSelectMultiple, initial=["read", "write"]
    )
    master = forms.BooleanField(required=False, help_text="A master key may address every workspace.")
    expires_in_days = forms.IntegerField(required=False, min_value=1)

    class Meta:
        model = ApiKey
        fields = ["name", "workspace", "scopes"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("master") and not data.get("workspace"):
            raise forms.ValidationError("Choose a workspace, or tick 'master'.")
        return data


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "workspace_label",
        "scopes",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["workspace", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name"]
    readonly_fields = ["key_hash", "created_at", "last_used_at", "revoked_at"]
    fields = [
        "name",
        "workspace",
        "scopes",
        "expires_at",
        "key_hash",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    actions = ["revoke_selected"]

    def get_form(
        self, request: HttpRequest, obj: ApiKey | None = None, **kwargs: Any
    ) -> type[forms.ModelForm]:
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return ["name", "workspace", "master", "scopes", "expires_in_days"]
        return self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return []
        # Changing a key's reach would silently widen what an already-distributed secret can do.
        return ["name", "workspace", "scopes", "expires_at", *self.readonly_fields]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: forms.Form, change: bool) -> None:
        if change:
            return
        data = form.cleaned_data
        key, plaintext = api_key_issue(
            name=data["name"],
            scopes=data["scopes"],
            workspace=None if data.get("master") else data["workspace"],
            expires_at=expiry_after_days(data.get("expires_in_days")),
            actor=actor_from_request(request),
        )
        obj.pk = key.pk
        messages.warning(request, f"New API key (copy it now, it will not be shown again): {plaintext}")

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return False

    @admin.action(description="Revoke selected API keys")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=key, actor=actor_from_request(request))
        messages.success(request, "Revoked.")


@admin.register(AuditLog)
class AuditLogAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["timestamp", "workspace", "action", "target_id", "api_key_name", "user", "ip_address"]
    list_filter = ["action", "workspace"]
    search_fields = ["target_id", "prompt_name", "api_key_name"]
    date_hierarchy = "timestamp"
