"""Writes of the prompt registry: versions (two-phase, index + store), labels, reconciliation.

A version is written in three steps so that the index row and the stored content never disagree:
a ``pending`` row is committed first, then the store is written, then the row becomes ``active``
(with the audit entry, in one transaction). A crash in between leaves a pending row, which
``prompt_reconcile`` (run at server start and by ``manage.py reconcile_prompts``) promotes when the
content reached the store and removes when it did not. Reads only ever see active rows.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from config.api import ApiError, not_found, validation_failed
from config.errors import Conflict
from registry import semver
from registry.cache import prompt_cache
from registry.documents import LABEL_RE, content_sha256, serialize, validate_document, validate_version
from registry.models import Prompt, PromptLabel, PromptLabelEvent, PromptVersion, VersionStatus
from registry.storage import StoredDifferently, StoredVersion, StoreError, get_store
from tenancy.context import Actor
from tenancy.services import audit_record

logger = logging.getLogger(__name__)

# A pending row younger than this may belong to a write still in flight (on any node): leave it.
RECONCILE_GRACE_S = 30


def _actor_name(actor: Actor) -> str:
    if actor.api_key_name:
        return actor.api_key_name
    return actor.user.get_username() if actor.user is not None else ""


def _invalidate(workspace_id: str, name: str) -> None:
    # Bumped inside the transaction (this connection's next read sees the change) and again after
    # commit (other workers may have cached the pre-commit state under the first bump).
    prompt_cache.invalidate(workspace_id, name)
    transaction.on_commit(lambda: prompt_cache.invalidate(workspace_id, name))


def store_unavailable(exc: Exception) -> ApiError:
    return ApiError(
        503, "STORAGE_UNAVAILABLE", "Prompt storage is unavailable, try again", {"reason": str(exc)}
    )


def prompt_version_create(*, workspace_id: str, body: object, actor: Actor) -> PromptVersion:
    """Validate and store a new immutable version; a version that exists already is a 409."""
    document, errors = validate_document(body)
    if errors:
        raise validation_failed(errors)
    name, version = document["name"], document["version"]
    content = serialize(document)
    # Outside the insert's transaction: a promotion found here must be committed, not rolled back
    # with the 409 that follows it.
    _reclaim_stale(workspace_id, name, version)
    row = _insert_pending(workspace_id, document, content, _actor_name(actor))
    try:
        record = get_store().put(
            workspace_id=workspace_id, name=name, version=version, content=content, author=row.author
        )
    except StoredDifferently as exc:
        row.delete()
        raise _stored_differently(name, version) from exc
    except StoreError as exc:
        record = _look_after_failed_put(row, exc)
    _activate(row, record=record, actor=actor)
    return row


def _stored_differently(name: str, version: str) -> Conflict:
    return Conflict(
        "Prompt version already exists in storage with other content", {"name": name, "version": version}
    )


def _look_after_failed_put(row: PromptVersion, exc: StoreError) -> StoredVersion:
    """The store may have failed after the content became durable (a timeout on the reply): look
    before answering. If it cannot even be read, the row stays pending for reconciliation."""
    try:
        stored = get_store().get(workspace_id=row.workspace_id, name=row.prompt.name, version=row.version)
    except StoreError:
        raise store_unavailable(exc) from exc
    if stored is None:
        row.delete()
        raise store_unavailable(exc) from exc
    if content_sha256(stored.content) != row.sha256:
        row.delete()
        raise _stored_differently(row.prompt.name, row.version) from exc
    return stored.record


def _activate(
    row: PromptVersion, *, record: StoredVersion, actor: Actor, adopted: bytes | None = None
) -> None:
    """Make a pending row active, with its audit entry, in one transaction."""
    updates: dict[str, object] = {
        "status": VersionStatus.ACTIVE,
        "commit_sha": record.commit_sha or "",
        "tag": record.tag or "",
    }
    if adopted is not None:
        # The store is the durable record: if it holds other bytes for this version, they win.
        updates["document"] = json.loads(adopted)
        updates["sha256"] = content_sha256(adopted)
    name = row.prompt.name
    with transaction.atomic():
        if not PromptVersion.objects.filter(pk=row.pk, status=VersionStatus.PENDING).update(**updates):
            return  # activated meanwhile by a concurrent reconciliation
        audit_record(
            actor=actor,
            workspace_id=row.workspace_id,
            action="create_prompt",
            target_id=name,
            prompt_name=name,
            version_tag=row.version,
        )
        _invalidate(row.workspace_id, name)
    for key, value in updates.items():
        setattr(row, key, value)


def _insert_pending(workspace_id: str, document: dict, content: bytes, author: str) -> PromptVersion:
    name, version = document["name"], document["version"]
    duplicate = Conflict("Prompt already exists", {"name": name, "version": version})
    try:
        with transaction.atomic():
            prompt, _ = Prompt.objects.get_or_create(workspace_id=workspace_id, name=name)
            existing = PromptVersion.objects.filter(prompt=prompt, version=version).first()
            if existing is not None and existing.status == VersionStatus.PENDING:
                raise Conflict(
                    "Prompt version is being created; retry shortly", {"name": name, "version": version}
                )
            if existing is not None:
                raise duplicate
            return PromptVersion.objects.create(
                workspace_id=workspace_id,
                prompt=prompt,
                version=version,
                document=document,
                sha256=content_sha256(content),
                driver=get_store().driver,
                author=author,
                status=VersionStatus.PENDING,
            )
    except IntegrityError as exc:
        # Two concurrent creates of the same version: the unique key lets exactly one through.
        raise duplicate from exc


def _reclaim_stale(workspace_id: str, name: str, version: str) -> None:
    """Reconcile this version's pending row first if it is older than the grace period."""
    cutoff = timezone.now() - timedelta(seconds=RECONCILE_GRACE_S)
    stale = (
        PromptVersion.objects.filter(
            workspace_id=workspace_id,
            prompt__name=name,
            version=version,
            status=VersionStatus.PENDING,
            created_at__lte=cutoff,
        )
        .select_related("prompt")
        .first()
    )
    if stale is not None:
        try:
            _reconcile_row(stale)
        except StoreError as exc:
            raise store_unavailable(exc) from exc


def _reconcile_row(row: PromptVersion) -> str:
    stored = get_store().get(workspace_id=row.workspace_id, name=row.prompt.name, version=row.version)
    if stored is None:
        PromptVersion.objects.filter(pk=row.pk, status=VersionStatus.PENDING).delete()
        return "removed"
    adopted = stored.content if content_sha256(stored.content) != row.sha256 else None
    # Recorded under the version's author: reconciliation finishes their write, it is not a new one.
    _activate(row, record=stored.record, actor=Actor(api_key_name=row.author), adopted=adopted)
    return "adopted" if adopted is not None else "promoted"


@dataclass
class ReconcileReport:
    promoted: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def prompt_reconcile(*, grace_seconds: float = RECONCILE_GRACE_S) -> ReconcileReport:
    """Heal versions stuck in pending for longer than ``grace_seconds``."""
    report = ReconcileReport()
    cutoff = timezone.now() - timedelta(seconds=grace_seconds)
    stuck = PromptVersion.objects.filter(status=VersionStatus.PENDING, created_at__lte=cutoff)
    for row in stuck.select_related("prompt").order_by("id").iterator():
        label = f"{row.workspace_id}/{row.prompt.name}@{row.version}"
        try:
            outcome = _reconcile_row(row)
        except (StoreError, ValueError) as exc:
            logger.warning("reconcile: %s left pending: %s", label, exc)
            report.failed.append(label)
            continue
        getattr(report, outcome).append(label)
    return report


def _active_versions(prompt: Prompt) -> dict[str, PromptVersion]:
    return {v.version: v for v in PromptVersion.objects.active().filter(prompt=prompt)}


def label_set(
    *, workspace_id: str, prompt_name: str, label: str, version: str | None, actor: Actor
) -> PromptLabel:
    """Point a label at a version (the latest when none is given), creating or moving it."""
    errors = (
        []
        if isinstance(label, str) and LABEL_RE.match(label)
        else [
            "name must contain only letters, numbers, dots, hyphens, and underscores (1-128, not only dots)"
        ]
    )
    if version is not None:
        errors += validate_version(version, "version_tag")
    if errors:
        raise validation_failed(errors)
    with transaction.atomic():
        prompt = (
            Prompt.objects.select_for_update().filter(workspace_id=workspace_id, name=prompt_name).first()
        )
        versions = _active_versions(prompt) if prompt is not None else {}
        if not versions:
            raise not_found("Prompt")
        if version is None:
            version = semver.latest(list(versions))
        target = versions.get(version)  # type: ignore[arg-type]
        if target is None:
            raise ApiError(
                400,
                "BAD_REQUEST",
                "Version not found for this prompt",
                {"prompt_name": prompt_name, "version_tag": version},
            )
        now, who = timezone.now(), _actor_name(actor)
        existing = PromptLabel.objects.filter(prompt=prompt, name=label).first()
        previous = existing.version if existing is not None else None
        if existing is None:
            existing = PromptLabel.objects.create(
                workspace_id=workspace_id,
                prompt=prompt,
                name=label,
                version=target,
                set_by=who,
                created_at=now,
                updated_at=now,
            )
        else:
            existing.version, existing.set_by, existing.updated_at = target, who, now
            existing.save(update_fields=["version", "set_by", "updated_at"])
        if previous != target:
            PromptLabelEvent.objects.create(
                workspace_id=workspace_id,
                prompt=prompt,
                label=label,
                from_version=previous,
                to_version=target,
                actor=who,
                created_at=now,
            )
        audit_record(
            actor=actor,
            workspace_id=workspace_id,
            action="label:create",
            target_id=label,
            prompt_name=prompt_name,
            version_tag=target.version,
        )
        _invalidate(workspace_id, prompt_name)
    return existing


def label_delete(*, workspace_id: str, prompt_name: str, label: str, actor: Actor) -> None:
    with transaction.atomic():
        existing = (
            PromptLabel.objects.select_related("version")
            .filter(workspace_id=workspace_id, prompt__name=prompt_name, name=label)
            .first()
        )
        if existing is None:
            raise not_found("Label")
        existing.delete()
        PromptLabelEvent.objects.create(
            workspace_id=workspace_id,
            prompt_id=existing.prompt_id,
            label=label,
            from_version=existing.version,
            to_version=None,
            actor=_actor_name(actor),
        )
        audit_record(
            actor=actor,
            workspace_id=workspace_id,
            action="label:delete",
            target_id=label,
            prompt_name=prompt_name,
            version_tag=existing.version.version,
        )
        _invalidate(workspace_id, prompt_name)
