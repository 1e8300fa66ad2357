"""Export an evaluation's results, oldest first, as JSONL (the API's result objects) or CSV."""

from __future__ import annotations

import csv
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from config.api import ApiError
from evaluations import exports
from evaluations.management.commands.import_dataset import progress_bar
from evaluations.models import Evaluation
from evaluations.selectors import evaluation_by_ref
from telemetry.management.commands.recompute_costs import parse_since
from tenancy.models import Workspace

FORMATS = ("jsonl", "csv")
_UNIX = re.compile(r"\d{1,12}(\.\d+)?")
PROGRESS_EVERY = 1000


def since_moment(value: str) -> datetime:
    """Unix seconds, an ISO date or datetime (UTC unless it says otherwise), or an age like 30d."""
    text = value.strip()
    if _UNIX.fullmatch(text) and not re.fullmatch(r"\d{4}", text):  # 2026 is a year, not 1970 + 2026 s
        return datetime.fromtimestamp(float(text), tz=UTC)
    return parse_since(text)


class _Text:
    """A text stream over ``self.stdout`` for csv.writer: written as given, no line ending added."""

    def __init__(self, wrapper: OutputWrapper) -> None:
        self.wrapper = wrapper

    def write(self, text: str) -> None:
        self.wrapper.write(text, ending="")


class Command(BaseCommand):
    help = (
        "Write an evaluation's results, oldest first (by creation time, then id), to stdout or --output: "
        "JSONL, one result per line as GET /v1/evaluations/{id}/results returns it, or CSV with columns "
        f"{', '.join(exports.CSV_COLUMNS)} (created_at in ISO 8601 UTC, metadata as JSON). An existing "
        "--output file is refused unless --force."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # Our --version TAG (a prompt version, as elsewhere in the API) replaces Django's --version.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("evaluation", metavar="EVALUATION", help="the evaluation's id or name")
        parser.add_argument("--workspace", default="default", help="workspace id (default: default)")
        parser.add_argument(
            "--format",
            dest="fmt",
            choices=FORMATS,
            default=None,
            help="jsonl or csv (default: csv for an --output ending in .csv, else jsonl)",
        )
        parser.add_argument("--output", metavar="FILE", help="write here instead of to stdout")
        parser.add_argument("--force", action="store_true", help="overwrite an existing --output file")
        parser.add_argument(
            "--since",
            metavar="WHEN",
            help="only results created at or after: unix seconds, an ISO date or datetime, or an age (30d)",
        )
        parser.add_argument(
            "--version", dest="version_tag", metavar="TAG", help="only results of this prompt version"
        )

    def handle(
        self,
        *args: Any,
        evaluation: str,
        workspace: str,
        fmt: str | None,
        output: str | None,
        force: bool,
        since: str | None,
        version_tag: str | None,
        **options: Any,
    ) -> None:
        if not Workspace.objects.filter(pk=workspace).exists():
            raise CommandError(f"Workspace {workspace!r} does not exist.")
        try:
            suite = evaluation_by_ref(Evaluation.objects.filter(workspace_id=workspace), evaluation)
        except ApiError:
            raise CommandError(f"Evaluation {evaluation!r} not found in workspace {workspace!r}.") from None
        start = None
        if since is not None:
            try:
                start = since_moment(since)
            except (ValueError, OverflowError, OSError) as error:
                raise CommandError(f"--since: {error}") from None
        path = Path(output) if output is not None else None
        fmt = fmt or ("csv" if path is not None and path.suffix.lower() == ".csv" else "jsonl")
        if path is not None:
            if path.is_dir():
                raise CommandError(f"{output!r} is a directory.")
            if path.exists() and not force:
                raise CommandError(f"{output!r} exists; nothing was written (use --force to overwrite it).")
            if not path.parent.is_dir():
                raise CommandError(f"{str(path.parent)!r} is not a directory.")

        rows = exports.result_rows(suite, since=start, version=version_tag)
        if path is None:
            count = self._write(_Text(self.stdout), fmt, rows, None)
            where, report = "stdout", self.stderr  # stdout carries the data only
        else:
            bar = None
            if options.get("verbosity", 1) >= 1:
                bar = progress_bar(self.stderr, rows.count(), "results")
            count = self._write_file(path, fmt, rows, bar)
            where, report = output, self.stdout
        report.write(
            f'Exported {count} result(s) of evaluation "{suite.name}" (id {suite.pk}) '
            f"in workspace {workspace} to {where}.",
            style_func=self.style.SUCCESS,
        )

    def _write_file(self, path: Path, fmt: str, rows: Any, bar: Any) -> int:
        """Into a temporary file beside ``path``, renamed over it once complete: an interrupted
        export leaves no half file (and an existing one, with --force, intact)."""
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                count = self._write(handle, fmt, rows, bar)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            if bar is not None:
                bar.finish()
        return count

    @staticmethod
    def _write(out: IO[str] | _Text, fmt: str, rows: Any, bar: Any) -> int:
        count = 0
        writer = csv.writer(out) if fmt == "csv" else None
        if writer is not None:
            writer.writerow(exports.CSV_COLUMNS)
        for row in exports.iter_rows(rows):
            if writer is not None:
                writer.writerow(exports.csv_cells(row))
            else:
                out.write(exports.jsonl_line(row) + "\n")
            count += 1
            if bar is not None and count % PROGRESS_EVERY == 0:
                bar.update(PROGRESS_EVERY)
        if bar is not None and count % PROGRESS_EVERY:
            bar.update(count % PROGRESS_EVERY)
        return count
