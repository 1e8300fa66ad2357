"""Import prompt documents (JSON or YAML files) into a workspace, one new version per file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.api import ApiError
from config.errors import Conflict
from registry.documents import content_sha256, serialize, validate_document
from registry.models import PromptVersion
from registry.services import prompt_version_create
from tenancy.context import command_actor
from tenancy.models import Workspace

SUFFIXES = (".json", ".yaml", ".yml")


class InvalidFile(Exception):
    pass


def prompt_files(root: Path) -> list[Path]:
    """Every prompt file under ``root``, recursively, in a stable (sorted) order."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_document(path: Path) -> Any:
    """The file's content as JSON-compatible data (YAML through ``safe_load``)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InvalidFile(f"unreadable ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise InvalidFile("not UTF-8 text") from exc
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text, parse_constant=_reject_constant)
        data = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidFile(f"unparseable ({' '.join(str(exc).split())})") from exc
    try:
        # YAML also yields dates, sets of keys that are not strings, NaN...: keep what JSON can say.
        return json.loads(json.dumps(data, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidFile(f"not representable as JSON ({exc})") from exc


class Command(BaseCommand):
    help = (
        "Import every *.json, *.yaml and *.yml prompt document under DIR as a new version. "
        "Versions that exist already are skipped, so running it again changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", metavar="DIR")
        parser.add_argument("--workspace", default="default", help="workspace id (default: default)")

    def handle(self, *args: Any, directory: str, workspace: str, **options: Any) -> None:
        root = Path(directory)
        if not root.is_dir():
            raise CommandError(f"{directory!r} is not a directory.")
        if not Workspace.objects.filter(pk=workspace).exists():
            raise CommandError(f"Workspace {workspace!r} does not exist (create it with create_workspace).")
        files = prompt_files(root)
        counts = {"created": 0, "skipped": 0, "invalid": 0, "failed": 0}
        actor = command_actor()
        width = len(str(len(files)))
        for i, path in enumerate(files, 1):
            outcome, message = self._import_one(path, workspace, actor)
            counts[outcome] += 1
            line = f"[{i:>{width}}/{len(files)}] {path.relative_to(root)}: {message}"
            style = {"created": self.style.SUCCESS, "skipped": str}.get(outcome, self.style.ERROR)
            self.stdout.write(style(line))
        summary = f"created {counts['created']}, skipped {counts['skipped']}, invalid {counts['invalid']}"
        if counts["failed"]:
            summary += f", failed {counts['failed']}"
        self.stdout.write(summary)
        if counts["invalid"] or counts["failed"]:
            bad = counts["invalid"] + counts["failed"]
            raise CommandError(f"{bad} of {len(files)} file(s) could not be imported.")

    def _import_one(self, path: Path, workspace: str, actor: Any) -> tuple[str, str]:
        try:
            body = read_document(path)
        except InvalidFile as exc:
            return "invalid", f"invalid: {exc}"
        try:
            row = prompt_version_create(workspace_id=workspace, body=body, actor=actor)
        except Conflict:
            return "skipped", _skipped(workspace, body)
        except ApiError as exc:
            if exc.status_code == 422:
                fields = (exc.details or {}).get("fields") or [exc.message]
                return "invalid", f"invalid: {'; '.join(fields)}"
            return "failed", f"failed: {exc.message}"
        return "created", f"created {row.prompt.name}@{row.version}"


def _skipped(workspace: str, body: dict[str, Any]) -> str:
    document, _ = validate_document(body)
    name, version = document["name"], document["version"]
    message = f"skipped (exists) {name}@{version}"
    stored = (
        PromptVersion.objects.active()
        .filter(workspace_id=workspace, prompt__name=name, version=version)
        .values_list("sha256", flat=True)
        .first()
    )
    if stored is not None and stored != content_sha256(serialize(document)):
        message += " — the stored version differs from this file"
    return message
