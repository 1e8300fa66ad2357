"""``/v1/prompts``: versions, resolution (by version, label or latest), rendering, diffs, labels."""

from __future__ import annotations

import difflib
from typing import Any

from django.db.models import QuerySet
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import ApiError, validation_failed
from registry import documents, selectors, services
from registry.api.serializers import (
    LabelInputSerializer,
    PromptLabelEventSerializer,
    PromptLabelSerializer,
    PromptVersionRowSerializer,
    RenderInputSerializer,
    version_record,
)
from registry.cache import ResolvedVersion
from registry.models import Prompt, PromptLabel, PromptLabelEvent, PromptVersion
from tenancy.api.base import ScopedViewSet
from tenancy.context import actor_from_request
from tenancy.models import Scope

MAX_QUERY = 256
_VARIABLE_PREFIX, _VARIABLE_SUFFIX = "variables[", "]"


def _query_variables(request: Request) -> dict[str, Any]:
    return {
        key[len(_VARIABLE_PREFIX) : -1]: value
        for key, value in request.query_params.items()
        if key.startswith(_VARIABLE_PREFIX) and key.endswith(_VARIABLE_SUFFIX)
    }


class PromptViewSet(mixins.ListModelMixin, ScopedViewSet):
    queryset = Prompt.objects.all()
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    scopes = {"render": (Scope.READ,)}

    def narrow_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        q = self.request.query_params.get("q")
        if q is not None and len(q) > MAX_QUERY:
            raise ApiError(
                400, "BAD_REQUEST", f"Search query exceeds maximum length of {MAX_QUERY} characters"
            )
        return selectors.prompts_with_versions(queryset, q=q)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset().values_list("name", flat=True))
        return self.get_paginated_response([{"name": name} for name in page])

    @action(detail=False, methods=["get"])
    def search(self, request: Request) -> Response:
        return self.list(request)

    def create(self, request: Request) -> Response:
        row = services.prompt_version_create(
            workspace_id=request.workspace_id, body=request.data, actor=actor_from_request(request)
        )
        return Response(version_record(row, row.prompt.name), status=status.HTTP_201_CREATED)

    def _resolve(self, name: str, version: str | None, label: str | None) -> ResolvedVersion:
        if version is not None and label is not None:
            raise validation_failed(["give either version or label, not both"])
        return selectors.prompt_resolve(
            workspace_id=self.request.workspace_id, name=name, version=version, label=label
        )

    def retrieve(self, request: Request, name: str) -> Response:
        params = request.query_params
        # An empty parameter means "not given", as clients building query strings often send them.
        resolved = self._resolve(name, params.get("version") or None, params.get("label") or None)
        content = resolved.document
        if params.get("render") != "false":
            variables = _query_variables(request)
            selectors.require_variables(content, variables)
            if variables:
                content = selectors.rendered(content, variables)
        return Response({"content": content, "version": version_record(resolved)})

    @action(detail=True, methods=["post"])
    def render(self, request: Request, name: str) -> Response:
        data = RenderInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        args = data.validated_data
        resolved = self._resolve(name, args.get("version"), args.get("label"))
        document = resolved.document
        rendered, variables = selectors.prompt_render(document, args["variables"])
        body: dict[str, Any] = {**version_record(resolved), "type": document.get("type", "chat")}
        if body["type"] == "text":
            body["text"] = rendered["template"]
        else:
            body["messages"] = rendered["messages"]
        body["model_config"] = document.get("model_config")
        body["variables"] = variables
        return Response(body)

    @action(detail=True, methods=["get"])
    def diff(self, request: Request, name: str) -> Response:
        old_tag, new_tag = request.query_params.get("from"), request.query_params.get("to")
        missing = [f'"{key}" is required' for key, value in (("from", old_tag), ("to", new_tag)) if not value]
        if missing:
            raise validation_failed(missing)
        workspace_id = request.workspace_id
        old = selectors.prompt_resolve(workspace_id=workspace_id, name=name, version=old_tag)
        new = selectors.prompt_resolve(workspace_id=workspace_id, name=name, version=new_tag)
        lines = difflib.unified_diff(
            documents.serialize(old.document).decode().splitlines(keepends=True),
            documents.serialize(new.document).decode().splitlines(keepends=True),
            fromfile=f"prompts/{name}/{old.version}.json",
            tofile=f"prompts/{name}/{new.version}.json",
        )
        return Response({"name": name, "from": old.version, "to": new.version, "diff": "".join(lines)})


class PromptVersionViewSet(mixins.ListModelMixin, ScopedViewSet):
    """``/v1/prompts/{name}/versions``: the index rows (an unknown prompt lists nothing, as upstream)."""

    queryset = PromptVersion.objects.all()
    serializer_class = PromptVersionRowSerializer

    def narrow_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return selectors.versions_for_listing(queryset, name=self.kwargs["prompt_name"])


class PromptLabelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """``/v1/prompts/{name}/labels[/{label}[/history]]``."""

    queryset = PromptLabel.objects.all()
    serializer_class = PromptLabelSerializer
    lookup_field = "name"
    lookup_value_regex = "[^/]+"

    def narrow_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return selectors.labels_for_listing(queryset, name=self.kwargs["prompt_name"])

    def get_object(self) -> PromptLabel:
        label = self.get_queryset().filter(name=self.kwargs["name"]).first()
        if label is None:
            raise ApiError(404, "NOT_FOUND", "Label not found")
        return label

    def create(self, request: Request, prompt_name: str) -> Response:
        data = LabelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        label = services.label_set(
            workspace_id=request.workspace_id,
            prompt_name=prompt_name,
            label=data.validated_data["name"],
            version=data.validated_data.get("version_tag"),
            actor=actor_from_request(request),
        )
        label = self.get_queryset().get(pk=label.pk)
        return Response(PromptLabelSerializer(label).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, prompt_name: str, name: str) -> Response:
        services.label_delete(
            workspace_id=request.workspace_id,
            prompt_name=prompt_name,
            label=name,
            actor=actor_from_request(request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class PromptLabelHistoryViewSet(mixins.ListModelMixin, ScopedViewSet):
    """``/v1/prompts/{name}/labels/{label}/history``: every move and removal, newest first."""

    queryset = PromptLabelEvent.objects.all()
    serializer_class = PromptLabelEventSerializer

    def narrow_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return selectors.label_history(queryset, name=self.kwargs["prompt_name"], label=self.kwargs["label"])

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        if response.data["total"] == 0:
            raise ApiError(404, "NOT_FOUND", "Label not found")
        return response
