"""Delete telemetry past each workspace's retention, in batches; made to run from cron beside ingest."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from telemetry.retention import (
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_SIZE,
    TABLES,
    expired_counts,
    prune_telemetry,
    retention_policies,
)
from tenancy.models import Workspace


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[table]:,} {table}" for table in TABLES)


class Command(BaseCommand):
    help = (
        "Delete logs, hourly rollups, runs, and traces with their spans older than each workspace's "
        "retention (telemetry settings in the admin; workspaces without one keep everything). Deletes "
        "in short batches, so ingest continues meanwhile; exits 0 when there is nothing to do."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", metavar="ID", help="only this workspace (default: all)")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            metavar="N",
            help=f"rows per delete transaction (default: {DEFAULT_BATCH_SIZE})",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would be deleted, delete nothing"
        )

    def handle(
        self, *args: Any, workspace: str | None, batch_size: int, dry_run: bool, **options: Any
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}.")
        if workspace is not None and not Workspace.objects.filter(pk=workspace).exists():
            raise CommandError(f"Workspace {workspace!r} does not exist.")
        policies = retention_policies(workspace_id=workspace)
        if not policies:
            if workspace:
                self.stdout.write(f"Workspace {workspace!r} has no retention set: nothing to prune.")
            else:
                self.stdout.write("No workspace has a retention set: nothing to prune.")
            return
        for ws, days in policies:
            self.stdout.write(f"{ws}: retention {days} day{'s' if days != 1 else ''}")
        if dry_run:
            counts = expired_counts(workspace_id=workspace)
            self.stdout.write(f"Dry run: would delete {_summary(counts)}.")
            return

        done: dict[tuple[str, str], int] = {}

        def progress(ws: str, table: str, count: int) -> None:
            done[ws, table] = done.get((ws, table), 0) + count
            self.stdout.write(f"  {ws}: deleted {count:,} {table} ({done[ws, table]:,} so far)")

        counts = prune_telemetry(batch_size=batch_size, workspace_id=workspace, progress=progress)
        if any(counts.values()):
            self.stdout.write(self.style.SUCCESS(f"Deleted {_summary(counts)}."))
        else:
            self.stdout.write("Nothing past retention: deleted nothing.")
