from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tenancy.models import MASTER_WORKSPACE, ApiKey


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else "-"


class Command(BaseCommand):
    help = "List API keys (never their secrets)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", help=f"only this workspace ({MASTER_WORKSPACE!r} for master keys)")
        parser.add_argument("--include-revoked", action="store_true")

    def handle(self, *args: Any, workspace: str | None, include_revoked: bool, **options: Any) -> None:
        keys = ApiKey.objects.all() if include_revoked else ApiKey.objects.active()
        if workspace == MASTER_WORKSPACE:
            keys = keys.filter(workspace__isnull=True)
        elif workspace:
            keys = keys.filter(workspace_id=workspace)
        columns = ("ID", "NAME", "WORKSPACE", "SCOPES", "CREATED", "EXPIRES", "LAST USED", "REVOKED")
        header = "{:>5}  {:<24} {:<16} {:<24} {:<16} {:<16} {:<16} {}".format(*columns)
        self.stdout.write(header)
        for key in keys.order_by("id"):
            self.stdout.write(
                f"{key.pk:>5}  {key.name[:24]:<24} {key.workspace_label[:16]:<16} {key.scopes[:24]:<24} "
                f"{_when(key.created_at):<16} {_when(key.expires_at):<16} {_when(key.last_used_at):<16} "
                f"{_when(key.revoked_at)}"
            )
