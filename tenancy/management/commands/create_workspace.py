from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.errors import Conflict
from tenancy.context import command_actor
from tenancy.services import workspace_create


class Command(BaseCommand):
    help = "Create a workspace (tenant)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workspace_id", help="1-128 letters, digits, hyphens or underscores")
        parser.add_argument("--name", default="", help="display name (defaults to the id)")

    def handle(self, *args: Any, workspace_id: str, name: str, **options: Any) -> None:
        try:
            workspace = workspace_create(workspace_id=workspace_id, name=name, actor=command_actor())
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        except Conflict as exc:
            raise CommandError(f"Workspace {workspace_id!r} already exists.") from exc
        self.stdout.write(self.style.SUCCESS(f"Created workspace {workspace.id!r}."))
