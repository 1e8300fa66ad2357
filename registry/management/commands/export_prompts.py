"""Export every active prompt version as ``DIR/{workspace}/{name}/{version}.json``, byte for byte."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry.documents import content_sha256, serialize
from registry.models import PromptVersion
from registry.storage import StoreError, get_store
from tenancy.models import Workspace


def stored_bytes(row: PromptVersion) -> bytes | None:
    """Exactly the bytes the store holds for ``row`` (whose ``sha256`` is of those bytes), or None.

    The row's document usually serializes back to them; where the database reorders object keys
    (PostgreSQL's jsonb does) they come from the store itself.
    """
    content = serialize(row.document)
    if content_sha256(content) == row.sha256:
        return content
    stored = get_store().get(workspace_id=row.workspace_id, name=row.prompt.name, version=row.version)
    if stored is not None and content_sha256(stored.content) == row.sha256:
        return stored.content
    return None


def write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Command(BaseCommand):
    help = (
        "Write every active prompt version as DIR/{workspace}/{name}/{version}.json, with exactly the "
        "bytes the prompt store holds. A differing existing file is left alone unless --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", metavar="DIR")
        parser.add_argument("--workspace", default=None, help="workspace id (default: default)")
        parser.add_argument("--all-workspaces", action="store_true", help="export every workspace")
        parser.add_argument("--force", action="store_true", help="overwrite existing files that differ")

    def handle(
        self,
        *args: Any,
        directory: str,
        workspace: str | None,
        all_workspaces: bool,
        force: bool,
        **options: Any,
    ) -> None:
        if all_workspaces and workspace is not None:
            raise CommandError("Give either --workspace or --all-workspaces, not both.")
        root = Path(directory)
        if root.exists() and not root.is_dir():
            raise CommandError(f"{directory!r} is not a directory.")
        versions = PromptVersion.objects.active().select_related("prompt")
        if not all_workspaces:
            workspace = workspace or "default"
            if not Workspace.objects.filter(pk=workspace).exists():
                raise CommandError(f"Workspace {workspace!r} does not exist.")
            versions = versions.filter(workspace_id=workspace)
        versions = versions.order_by("workspace_id", "prompt__name", "created_at", "id")
        total = versions.count()
        counts = {"written": 0, "unchanged": 0, "refused": 0, "failed": 0}
        width = len(str(total))
        for i, row in enumerate(versions.iterator(chunk_size=500), 1):
            relative = Path(row.workspace_id, row.prompt.name, f"{row.version}.json")
            outcome, message = self._export_one(row, root / relative, force)
            counts[outcome] += 1
            style = {"written": self.style.SUCCESS, "unchanged": str}.get(outcome, self.style.ERROR)
            self.stdout.write(style(f"[{i:>{width}}/{total}] {relative}: {message}"))
        summary = (
            f"exported {counts['written']}, unchanged {counts['unchanged']}, refused {counts['refused']}"
        )
        if counts["failed"]:
            summary += f", failed {counts['failed']}"
        self.stdout.write(summary)
        if counts["refused"]:
            raise CommandError(
                f"{counts['refused']} existing file(s) differ from the stored version; "
                "nothing was overwritten (use --force)."
            )
        if counts["failed"]:
            raise CommandError(f"{counts['failed']} version(s) could not be exported.")

    def _export_one(self, row: PromptVersion, path: Path, force: bool) -> tuple[str, str]:
        try:
            content = stored_bytes(row)
        except StoreError as exc:
            return "failed", f"failed: prompt store unavailable ({exc})"
        if content is None:
            return "failed", "failed: the stored bytes could not be reproduced"
        existed = path.exists()
        if existed:
            if not path.is_file():
                return "failed", "failed: the path exists and is not a file"
            if path.read_bytes() == content:
                return "unchanged", "unchanged"
            if not force:
                return "refused", "refused: an existing file differs (use --force)"
        write_atomically(path, content)
        return "written", "overwritten" if existed else "written"
