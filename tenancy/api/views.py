from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from config.api import not_found, parse_int, validation_failed
from tenancy.api.base import ADMIN_SCOPES, PipelineMixin, ScopedViewSet
from tenancy.api.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateInputSerializer,
    ApiKeySerializer,
    AuditLogSerializer,
    WorkspaceCreateInputSerializer,
    WorkspaceSerializer,
)
from tenancy.context import actor_from_request
from tenancy.filters import AuditLogFilter
from tenancy.models import MASTER_WORKSPACE, ApiKey, AuditLog, Workspace
from tenancy.services import api_key_mint, api_key_revoke, workspace_create


class ApiKeyViewSet(mixins.ListModelMixin, ScopedViewSet):
    """``/v1/api-keys``: mint, list and revoke keys; ``/v1/api-keys/me`` describes the caller."""

    queryset = ApiKey.objects.active()
    serializer_class = ApiKeySerializer
    lookup_value_regex = "[^/]+"
    master_sees_all_workspaces = True
    scopes = {"list": ADMIN_SCOPES, "create": ADMIN_SCOPES, "destroy": ADMIN_SCOPES, "me": ()}

    def create(self, request: Request) -> Response:
        data = ApiKeyCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key, plaintext = api_key_mint(
            caller=request.auth,
            request_workspace_id=request.workspace_id,
            name=data.validated_data["name"],
            scopes=data.validated_data["scopes"],
            target_workspace_id=data.validated_data.get("workspace_id"),
            expires_in_days=data.validated_data.get("expires_in_days"),
            actor=actor_from_request(request),
        )
        key.key = plaintext
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str) -> Response:
        key_id = parse_int(pk)
        if key_id is None or key_id < 0:
            raise validation_failed(["Invalid API key id"])
        key = self.get_queryset().filter(pk=key_id).first()
        if key is None:
            raise not_found("API key")
        api_key_revoke(
            api_key=key,
            actor=actor_from_request(request),
            audit_workspace_id=request.workspace_id if key.is_master else None,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=False, methods=["get"])
    def me(self, request: Request) -> Response:
        principal = request.auth
        body = {
            "id": principal.api_key_id,
            "name": principal.name,
            "scopes": principal.scopes_label,
            "workspace_id": MASTER_WORKSPACE if principal.is_master else request.workspace_id,
            "expires_at": int(principal.expires_at) if principal.expires_at is not None else None,
        }
        # A plain dict: this is the cheapest authenticated read, used as the auth probe by clients.
        return Response(body)


class AuditLogViewSet(mixins.ListModelMixin, ScopedViewSet):
    """``/v1/audit-logs``: the request workspace's audit trail, newest first."""

    queryset = AuditLog.objects.all()
    serializer_class = AuditLogSerializer
    filterset_class = AuditLogFilter
    scopes = {"list": ADMIN_SCOPES}


class WorkspaceViewSet(PipelineMixin, mixins.ListModelMixin, GenericViewSet):
    """``/v1/workspaces``: admins see their workspace, master keys see and create all of them."""

    queryset = Workspace.objects.all()
    serializer_class = WorkspaceSerializer
    scopes = {"list": ADMIN_SCOPES, "create": ADMIN_SCOPES}

    def get_queryset(self) -> QuerySet[Workspace]:
        # Workspaces are the tenants themselves, so scoping means "only the caller's own".
        queryset = super().get_queryset()
        if self.request.auth.is_master:
            return queryset
        return queryset.filter(pk=self.request.workspace_id)

    def create(self, request: Request) -> Response:
        if not request.auth.is_master:
            raise PermissionDenied("Only a master key can create workspaces")
        data = WorkspaceCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        workspace = workspace_create(
            workspace_id=data.validated_data["id"],
            name=data.validated_data.get("name", ""),
            actor=actor_from_request(request),
        )
        return Response(WorkspaceSerializer(workspace).data, status=status.HTTP_201_CREATED)
