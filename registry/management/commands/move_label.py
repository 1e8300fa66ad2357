"""Point a prompt's label at a version, as ``POST /v1/prompts/{name}/labels`` does."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.api import ApiError
from registry.models import PromptLabel
from registry.services import label_set
from tenancy.context import command_actor
from tenancy.models import Workspace


class Command(BaseCommand):
    help = "Create or move a label (e.g. production) to a version of a prompt; audited and recorded."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", metavar="NAME", help="prompt name")
        parser.add_argument("label", metavar="LABEL", help="label name, e.g. production")
        parser.add_argument("version", metavar="VERSION", help="an active version, e.g. 1.2.0")
        parser.add_argument("--workspace", default="default", help="workspace id (default: default)")

    def handle(self, *args: Any, name: str, label: str, version: str, workspace: str, **options: Any) -> None:
        if not Workspace.objects.filter(pk=workspace).exists():
            raise CommandError(f"Workspace {workspace!r} does not exist.")
        previous = (
            PromptLabel.objects.filter(workspace_id=workspace, prompt__name=name, name=label)
            .values_list("version__version", flat=True)
            .first()
        )
        try:
            label_set(
                workspace_id=workspace, prompt_name=name, label=label, version=version, actor=command_actor()
            )
        except ApiError as exc:
            raise CommandError(_explain(exc, workspace=workspace, name=name, version=version)) from exc
        if previous is None:
            message = f"Created label {label!r} of {name!r} in {workspace!r} at {version}."
        elif previous == version:
            message = f"Label {label!r} of {name!r} in {workspace!r} already points at {version}."
        else:
            message = f"Moved label {label!r} of {name!r} in {workspace!r}: {previous} -> {version}."
        self.stdout.write(self.style.SUCCESS(message))


def _explain(exc: ApiError, *, workspace: str, name: str, version: str) -> str:
    if exc.status_code == 404:
        return f"Prompt {name!r} does not exist in workspace {workspace!r} (or has no active version)."
    if exc.status_code == 400:
        return f"Prompt {name!r} has no active version {version!r} in workspace {workspace!r}."
    if exc.status_code == 422:
        return "; ".join((exc.details or {}).get("fields") or [exc.message])
    return exc.message
