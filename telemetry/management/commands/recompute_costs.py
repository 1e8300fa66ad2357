"""Re-price the computed costs of stored logs after a price change (book update or custom price)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from telemetry.pricing import recompute_costs
from tenancy.models import Workspace

_RELATIVE = re.compile(r"(\d+)\s*([hdw])")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, *, now: datetime | None = None) -> datetime:
    """``2026-01-01`` (midnight UTC), ``2026-01-01T12:00[:00][+02:00|Z]`` (naive = UTC), or a
    relative ``30d`` / ``12h`` / ``2w`` before now."""
    text = value.strip()
    relative = _RELATIVE.fullmatch(text.lower())
    if relative:
        amount, unit = int(relative.group(1)), _UNITS[relative.group(2)]
        return (now or timezone.now()) - timedelta(**{unit: amount})
    try:
        moment = parse_datetime(text)
        day = None if moment else parse_date(text)
    except ValueError as error:  # well formed but impossible, such as 2026-02-30
        raise ValueError(f"{value!r} is not a valid date: {error}") from None
    if moment is None and day is not None:
        moment = datetime.combine(day, time.min)
    if moment is None:
        raise ValueError(f"{value!r} is neither an ISO date/datetime nor a relative age like 30d")
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Re-price logs whose cost was computed from a price (and logs with tokens but no cost) "
        "created since a date, after the price book or a workspace's custom prices changed. Costs "
        "supplied by clients are never touched. The hourly rollups are rebuilt afterwards."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since",
            required=True,
            metavar="WHEN",
            help="ISO date or datetime (UTC unless it says otherwise), or an age such as 30d, 12h, 2w",
        )
        parser.add_argument("--workspace", metavar="ID", help="only this workspace (default: all)")
        parser.add_argument(
            "--batch-size", type=int, default=5000, metavar="N", help="logs per batch (default: 5000)"
        )

    def handle(self, *args: Any, since: str, workspace: str | None, batch_size: int, **options: Any) -> None:
        try:
            start = parse_since(since)
        except ValueError as error:
            raise CommandError(f"--since: {error}") from None
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if workspace is not None and not Workspace.objects.filter(id=workspace).exists():
            raise CommandError(f"Workspace {workspace!r} does not exist.")
        verbose = options.get("verbosity", 1) >= 1
        scope = f"workspace {workspace}" if workspace else "all workspaces"
        if verbose:
            self.stdout.write(f"Re-pricing logs of {scope} created since {start.isoformat()} …")

        def progress(scanned: int, changed: int) -> None:
            if verbose:
                self.stdout.write(f"  scanned {scanned:,} logs, re-priced {changed:,}")

        changed = recompute_costs(
            since=start, workspace_id=workspace, batch_size=batch_size, progress=progress
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-priced {changed:,} log(s) and span(s) of {scope} created since {start.isoformat()}."
            )
        )
