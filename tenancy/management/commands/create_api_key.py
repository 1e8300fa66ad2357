from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenancy.context import command_actor
from tenancy.models import MASTER_WORKSPACE, Workspace
from tenancy.services import api_key_issue, expiry_after_days


class Command(BaseCommand):
    help = "Mint an API key and print it once (only its HMAC is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--scopes", default="read,write", help="comma-separated: read,write,admin,ingest")
        parser.add_argument(
            "--workspace", default="default", help=f"workspace id, or {MASTER_WORKSPACE!r} for a master key"
        )
        parser.add_argument("--expires-in-days", type=int, default=None)

    def handle(
        self, *args: Any, name: str, scopes: str, workspace: str, expires_in_days: int | None, **options: Any
    ) -> None:
        target = None
        if workspace != MASTER_WORKSPACE:
            target = Workspace.objects.filter(pk=workspace).first()
            if target is None:
                raise CommandError(
                    f"Workspace {workspace!r} does not exist (create it with create_workspace)."
                )
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be at least 1.")
        expires_at = expiry_after_days(expires_in_days)
        try:
            key, plaintext = api_key_issue(
                name=name, scopes=scopes, workspace=target, expires_at=expires_at, actor=command_actor()
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stderr.write(f"Created API key #{key.pk} {key.name!r} in {key.workspace_label} ({key.scopes}).")
        self.stderr.write("Store it now; it cannot be shown again:")
        self.stdout.write(plaintext)
