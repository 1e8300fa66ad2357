"""Reads of the prompt registry: resolving (name, label | version) to a version, and the lists."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.functions import Trunc

from config.api import ApiError, not_found, validation_failed
from registry import documents
from registry.cache import PromptPointers, ResolvedVersion, prompt_cache
from registry.models import Prompt, PromptLabel, PromptLabelEvent, PromptVersion
from registry.rendering import TemplateError, render_document


def prompt_pointers(*, workspace_id: str, name: str) -> PromptPointers:
    pointers = prompt_cache.pointers(workspace_id, name)
    if pointers is None:
        raise not_found("Prompt")
    return pointers


def prompt_resolve(
    *, workspace_id: str, name: str, version: str | None = None, label: str | None = None
) -> ResolvedVersion:
    """The version a client asked for: an exact version, a label's target, or the latest release."""
    pointers = prompt_pointers(workspace_id=workspace_id, name=name)
    if label is not None:
        target = pointers.labels.get(label)
        if target is None:
            raise ApiError(404, "NOT_FOUND", "Label not found", {"prompt_name": name, "label": label})
    else:
        target = version if version is not None else pointers.latest
    resolved = prompt_cache.document(pointers, target) if target is not None else None
    if resolved is None:
        raise ApiError(404, "NOT_FOUND", "Prompt not found", {"name": name, "version": target})
    return resolved


def require_variables(document: dict[str, Any], variables: dict[str, Any]) -> None:
    """Upstream's 400 when a required variable has no value."""
    missing = documents.missing_required(document, variables)
    if missing:
        raise ApiError(400, "BAD_REQUEST", f"Missing required variables: {', '.join(missing)}")


def rendered(document: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
    """The document with its templates rendered; a template that does not parse is a 422."""
    try:
        return render_document(document, variables)
    except TemplateError as exc:
        raise validation_failed([f"The template does not parse: {exc}"]) from None


def prompt_render(document: dict[str, Any], given: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The document rendered with its declared defaults overlaid by ``given``, and the variables
    used: 422 for values of the wrong type, 400 for a missing required one."""
    definitions = document.get("variables") or {}
    defaults = {k: d["default"] for k, d in definitions.items() if isinstance(d, dict) and "default" in d}
    variables = {**defaults, **given}
    type_errors = documents.variable_type_errors(document, given)
    if type_errors:
        raise validation_failed(type_errors)
    require_variables(document, variables)
    return rendered(document, variables), variables


def prompts_with_versions(queryset: QuerySet[Prompt], *, q: str | None = None) -> QuerySet[Prompt]:
    """Prompts that have at least one active version (pending-only prompts are not visible yet)."""
    active = PromptVersion.objects.active().filter(prompt=OuterRef("pk"))
    queryset = queryset.filter(Exists(active))
    if q:
        queryset = queryset.filter(name__icontains=q)
    return queryset.order_by("name")


def versions_for_listing(queryset: QuerySet[PromptVersion], *, name: str) -> QuerySet[PromptVersion]:
    # Upstream stores whole seconds and its clients expect versions created in the same second in
    # creation order (its e2e test: 1.0.0 before 1.1.0), so order by the second, then by id.
    return (
        queryset.active()
        .filter(prompt__name=name)
        .select_related("prompt")
        .annotate(created_second=Trunc("created_at", "second"))
        .order_by("-created_second", "id")
    )


def labels_for_listing(queryset: QuerySet[PromptLabel], *, name: str) -> QuerySet[PromptLabel]:
    return (
        queryset.filter(prompt__name=name).select_related("prompt", "version").order_by("-created_at", "id")
    )


def label_history(
    queryset: QuerySet[PromptLabelEvent], *, name: str, label: str
) -> QuerySet[PromptLabelEvent]:
    return (
        queryset.filter(prompt__name=name, label=label)
        .select_related("prompt", "from_version", "to_version")
        .order_by("-created_at", "-id")
    )
