"""Import a dataset from a JSONL or CSV file into a workspace.

The file is read twice, as a stream, never held in memory: first every row is checked with the
rules of ``POST /v1/datasets`` (``services.dataset_row``) and every bad row is reported; only when
all are good is it read again and stored by ``services.dataset_import`` (chunked inserts in one
transaction, audited). Unlike the API there is no 10,000-row cap.

JSONL (``.jsonl``, ``.ndjson``): one object per line, ``{"input": {...}, "expectedOutput"`` or
``"expected_output": ..., "output": ...}``; blank lines are skipped.

CSV (``.csv``): a header row, then one row per line (quoted cells may span lines). With an
``input`` column, its cells hold the input as a JSON object (other unknown columns are ignored,
with a warning); without one, every column other than ``expected_output`` / ``expectedOutput`` and
``output`` becomes a key of the input object, its cells kept as strings. ``expected_output`` and
``output`` cells are parsed as JSON when they parse (``42``, ``true``, ``{"a": 1}``, ``"quoted"``)
and kept as strings otherwise; an empty cell is no value. Rows whose cells are all empty are skipped.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from evaluations.models import Dataset
from evaluations.services import dataset_import, dataset_row
from telemetry.management.commands.seed_demo import ProgressBar
from tenancy.context import command_actor
from tenancy.models import Workspace

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
REPORTED_MAX = 20
NAME_MAX = 128
DESCRIPTION_MAX = 1024
EXPECTED_COLUMNS = ("expected_output", "expectedOutput")
OUTPUT_COLUMN = "output"
INPUT_COLUMN = "input"
# A CSV cell may hold a whole JSON input; the csv module's default limit is 128 KiB.
CSV_FIELD_MAX = 16 * 1024 * 1024

# (line number, the row as the API would receive it, or None with why it could not be read)
RawRow = tuple[int, Any, str | None]


class BadFile(Exception):
    """The file as a whole cannot be read (not UTF-8, a CSV header that makes no sense)."""


class _Unstyled:
    """``self.stderr`` without the red that Django gives it on a terminal: progress is no error."""

    def __init__(self, wrapper: OutputWrapper) -> None:
        self.wrapper = wrapper

    def write(self, text: str, ending: str | None = None) -> None:
        self.wrapper.write(text, style_func=str, ending=ending)

    def flush(self) -> None:
        self.wrapper.flush()

    def isatty(self) -> bool:
        return self.wrapper.isatty()


def progress_bar(stderr: OutputWrapper, total: int, label: str) -> ProgressBar:
    """seed_demo's progress bar, drawn on stderr (so stdout carries only data and the summary)."""
    return ProgressBar(_Unstyled(stderr), total, label)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: JSON has no infinity, and the database would refuse it
        raise ValueError(f"number {text} is out of range")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)


def _json_error(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


def _cell_value(cell: str) -> Any:
    """An ``expected_output`` / ``output`` cell: its JSON value when it is JSON, else the text."""
    if cell == "":
        return None
    try:
        return parse_json(cell)
    except (ValueError, RecursionError):
        return cell


def jsonl_rows(handle: IO[str], warn: Callable[[str], None]) -> Iterator[RawRow]:
    for number, text in enumerate(handle, 1):
        if not text.strip():
            continue
        try:
            yield number, parse_json(text.rstrip()), None
        except (ValueError, RecursionError) as exc:
            yield number, None, f"not valid JSON ({_json_error(exc)})"


def _csv_header(header: list[str], warn: Callable[[str], None]) -> tuple[list[str], str | None, bool]:
    """The column names, the expected-output column (if any), whether there is an output column."""
    columns = [name.strip() for name in header]
    if any(not name for name in columns):
        raise BadFile(f"line 1: the header has an unnamed column (column {columns.index('') + 1})")
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise BadFile(f"line 1: the header names {', '.join(repeated)} more than once")
    expected = [name for name in EXPECTED_COLUMNS if name in columns]
    if len(expected) > 1:
        raise BadFile("line 1: the header names both expected_output and expectedOutput; keep one")
    known = {*EXPECTED_COLUMNS, OUTPUT_COLUMN}
    if INPUT_COLUMN in columns:
        ignored = [name for name in columns if name not in known and name != INPUT_COLUMN]
        if ignored:
            warn(f"Ignoring column(s) {', '.join(ignored)}: the input comes from the input column.")
    elif not [name for name in columns if name not in known]:
        raise BadFile("line 1: the header has no input column (input, or any column naming an input key)")
    return columns, (expected[0] if expected else None), OUTPUT_COLUMN in columns


def csv_rows(handle: IO[str], warn: Callable[[str], None]) -> Iterator[RawRow]:
    if csv.field_size_limit() < CSV_FIELD_MAX:
        csv.field_size_limit(CSV_FIELD_MAX)
    reader = csv.reader(handle)
    try:
        header = next(reader, None)
        if header is None:
            return
        columns, expected, has_output = _csv_header(header, warn)
        input_columns = [c for c in columns if c not in (*EXPECTED_COLUMNS, OUTPUT_COLUMN)]
        ended = reader.line_num
        for cells in reader:
            number, ended = ended + 1, reader.line_num  # the line the row starts on
            if not any(cells):
                continue
            if len(cells) > len(columns):
                yield number, None, f"{len(cells)} cells, but the header names {len(columns)} columns"
                continue
            values = dict(zip(columns, cells, strict=False))  # missing trailing cells are empty
            item: dict[str, Any] = {}
            if INPUT_COLUMN in columns:
                raw = values.get(INPUT_COLUMN, "")
                if raw.strip():
                    try:
                        item["input"] = parse_json(raw)
                    except (ValueError, RecursionError) as exc:
                        yield number, None, f'"input" is not valid JSON ({_json_error(exc)})'
                        continue
            else:
                item["input"] = {name: values.get(name, "") for name in input_columns}
            if expected is not None:
                item["expected_output"] = _cell_value(values.get(expected, ""))
            if has_output:
                item["output"] = _cell_value(values.get(OUTPUT_COLUMN, ""))
            yield number, item, None
    except csv.Error as exc:
        raise BadFile(f"line {reader.line_num}: {exc}") from exc


READERS = {"jsonl": jsonl_rows, "csv": csv_rows}


def checked_rows(
    path: Path, fmt: str, warn: Callable[[str], None] = lambda _: None
) -> Iterator[tuple[int, dict[str, Any] | None, list[str]]]:
    """(line, the validated row or None, messages) for every row of the file, streamed."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for number, item, problem in READERS[fmt](handle, warn):
                if problem is not None:
                    yield number, None, [problem]
                    continue
                row, errors = dataset_row(0, item)
                yield number, row, [_row_message(message) for message in errors]
    except UnicodeDecodeError as exc:
        raise BadFile(f"not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise BadFile(f"unreadable ({exc.strerror or exc})") from exc


def _row_message(message: str) -> str:
    # The API names rows by index ("rows[0].input"); here the line number says which row.
    return message.replace('"rows[0].', '"').replace('"rows[0]"', "the row")


class Command(BaseCommand):
    help = (
        "Create a dataset from a JSONL file (one {input, expected_output, output} object per line) or a "
        "CSV file (a header row; an input column holding JSON objects, or one column per input key). "
        "Every row is checked first, with the API's rules: when any row is bad, all of them (up to "
        f"{REPORTED_MAX}) are reported and nothing is stored. No row limit."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", metavar="FILE", help="a .jsonl, .ndjson or .csv file")
        parser.add_argument("--name", required=True, help="the dataset's name (up to 128 characters)")
        parser.add_argument("--workspace", default="default", help="workspace id (default: default)")
        parser.add_argument("--description", default="", help="up to 1024 characters")
        parser.add_argument(
            "--format",
            dest="fmt",
            choices=sorted(READERS),
            default=None,
            help="jsonl or csv (default: from the file's extension)",
        )

    def handle(
        self,
        *args: Any,
        file: str,
        name: str,
        workspace: str,
        description: str,
        fmt: str | None,
        **options: Any,
    ) -> None:
        path = Path(file)
        fmt = fmt or FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise CommandError(
                f"Cannot tell the format of {file!r} from its extension: name it .jsonl, .ndjson or .csv, "
                "or give --format jsonl|csv."
            )
        if not path.is_file():
            raise CommandError(f"{file!r} is not a file.")
        if not name.strip():
            raise CommandError("--name must not be empty.")
        if len(name) > NAME_MAX:
            raise CommandError(f"--name must be at most {NAME_MAX} characters long.")
        if len(description) > DESCRIPTION_MAX:
            raise CommandError(f"--description must be at most {DESCRIPTION_MAX} characters long.")
        if not Workspace.objects.filter(pk=workspace).exists():
            raise CommandError(f"Workspace {workspace!r} does not exist (create it with create_workspace).")

        total = self._check(path, fmt, file)
        same_name = Dataset.objects.filter(workspace_id=workspace, name=name).count()
        if same_name:
            self.stderr.write(
                f'Note: workspace {workspace} already has {same_name} dataset(s) named "{name}"; '
                "this import adds another.",
                style_func=self.style.WARNING,
            )

        bar = progress_bar(self.stderr, total, "rows") if options.get("verbosity", 1) >= 1 else None

        def progress(count: int) -> None:
            if bar is not None and count > bar.done:
                bar.update(count - bar.done)

        try:
            dataset = dataset_import(
                workspace_id=workspace,
                name=name,
                description=description,
                rows=self._rows(path, fmt),
                actor=command_actor(),
                progress=progress,
            )
        except BadFile as exc:
            raise CommandError(f"{file}: {exc}; nothing was imported.") from exc
        finally:
            if bar is not None:
                bar.finish()
        self.stdout.write(
            self.style.SUCCESS(
                f'Imported {dataset.row_count} rows into dataset "{dataset.name}" (id {dataset.pk}) '
                f"in workspace {workspace}."
            )
        )

    def _check(self, path: Path, fmt: str, file: str) -> int:
        """Read the whole file once; report every bad row. The number of rows, when all are good."""
        total = bad = 0

        def warn(message: str) -> None:
            self.stderr.write(message, style_func=self.style.WARNING)

        try:
            for number, row, messages in checked_rows(path, fmt, warn):
                if messages:
                    bad += 1
                    if bad <= REPORTED_MAX:
                        self.stderr.write(f"line {number}: {'; '.join(messages)}")
                elif row is not None:
                    total += 1
        except BadFile as exc:
            raise CommandError(f"{file}: {exc}; nothing was imported.") from exc
        if bad > REPORTED_MAX:
            self.stderr.write(f"and {bad - REPORTED_MAX} more")
        if bad:
            raise CommandError(f"{file}: {bad} bad row(s); nothing was imported.")
        if total == 0:
            raise CommandError(f"{file} holds no rows; nothing was imported.")
        return total

    @staticmethod
    def _rows(path: Path, fmt: str) -> Iterator[dict[str, Any]]:
        """The rows again, for the insert; a file changed since the check aborts it (rolled back)."""
        for number, row, messages in checked_rows(path, fmt):
            if messages or row is None:
                raise BadFile(f"line {number} changed while importing ({'; '.join(messages)})")
            yield row
