"""Heal prompt versions left pending by an interrupted write (the server also does this at start)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry.services import RECONCILE_GRACE_S, prompt_reconcile


class Command(BaseCommand):
    help = (
        "Promote pending versions whose content reached the prompt store, remove those whose "
        "content did not. Rows younger than --grace seconds may still be in flight and are left alone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--grace",
            type=float,
            default=RECONCILE_GRACE_S,
            metavar="SECONDS",
            help=f"only rows pending for longer than this (default: {RECONCILE_GRACE_S})",
        )

    def handle(self, *args: Any, grace: float, **options: Any) -> None:
        if not grace >= 0:  # also refuses NaN
            raise CommandError("--grace must be zero or more seconds.")
        report = prompt_reconcile(grace_seconds=grace)
        for outcome in ("promoted", "adopted", "removed", "failed"):
            style = self.style.ERROR if outcome == "failed" else str
            for version in getattr(report, outcome):
                self.stdout.write(style(f"{outcome} {version}"))
        self.stdout.write(
            f"promoted {len(report.promoted)}, adopted {len(report.adopted)}, "
            f"removed {len(report.removed)}, failed {len(report.failed)}"
        )
        if report.failed:
            raise CommandError(
                f"{len(report.failed)} version(s) stay pending: the prompt store could not be read."
            )
