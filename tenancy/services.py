"""Writes for workspaces, memberships, API keys and the audit log.

Every control-plane mutation writes its audit entry inside the same transaction as the change, so
an entry can never be lost (crash after commit) or orphaned (rollback after audit).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from config.errors import Conflict
from tenancy.authcache import key_cache
from tenancy.context import Actor, Principal
from tenancy.keys import generate_key, hash_key
from tenancy.models import MASTER_WORKSPACE, ApiKey, AuditLog, Membership, Role, Scope, Workspace

DEFAULT_WORKSPACE = "default"
AUDIT_FIELD_MAX = 256


def audit_record(
    *,
    actor: Actor,
    workspace_id: str,
    action: str,
    target_id: str = "",
    prompt_name: str = "",
    version_tag: str = "",
) -> AuditLog:
    """Append one audit entry. Call it inside the transaction of the change it describes."""
    user = actor.user if actor.user is not None and actor.user.pk is not None else None
    return AuditLog.objects.create(
        workspace_id=workspace_id,
        action=action,
        target_id=str(target_id)[:AUDIT_FIELD_MAX],
        prompt_name=prompt_name[:AUDIT_FIELD_MAX],
        version_tag=version_tag[:AUDIT_FIELD_MAX],
        api_key_name=(actor.api_key_name or (user.get_username() if user else ""))[:AUDIT_FIELD_MAX],
        user=user,
        ip_address=actor.ip_address,
    )


def workspace_create(*, workspace_id: str, name: str = "", actor: Actor) -> Workspace:
    """Create a workspace; an id already taken raises ``Conflict``."""
    if Workspace.objects.filter(pk=workspace_id).exists():
        raise Conflict("Workspace already exists", {"id": workspace_id})
    workspace = Workspace(id=workspace_id, name=name or workspace_id)
    workspace.full_clean(validate_unique=False)
    with transaction.atomic():
        workspace.save(force_insert=True)
        audit_record(
            actor=actor, workspace_id=workspace.id, action="workspace:create", target_id=workspace.id
        )
    return workspace


def workspace_ensure(*, workspace_id: str) -> Workspace:
    """Return the workspace, creating it when a master key first addresses it (not audited)."""
    workspace, _ = Workspace.objects.get_or_create(id=workspace_id, defaults={"name": workspace_id})
    return workspace


def workspace_delete(*, workspace: Workspace) -> None:
    """Delete a workspace and everything it owns; its keys stop working on every worker at once."""
    with transaction.atomic():
        workspace.delete()
        transaction.on_commit(key_cache.invalidate_everywhere)


def membership_set(*, user: Any, workspace: Workspace, role: str, actor: Actor) -> Membership:
    """Give a dashboard user a role in a workspace (or change it)."""
    if role not in Role.values:
        raise ValidationError({"role": f"role must be one of {', '.join(Role.values)}"})
    with transaction.atomic():
        membership, _ = Membership.objects.update_or_create(
            user=user, workspace=workspace, defaults={"role": role}
        )
        audit_record(
            actor=actor,
            workspace_id=workspace.pk,
            action="membership:set",
            target_id=f"{user.get_username()}:{role}",
        )
    return membership


def membership_delete(*, membership: Membership, actor: Actor) -> None:
    """Take a dashboard user out of a workspace."""
    with transaction.atomic():
        membership.delete()
        audit_record(
            actor=actor,
            workspace_id=membership.workspace_id,
            action="membership:delete",
            target_id=membership.user.get_username(),
        )


def normalize_scopes(scopes: str | Iterable[str]) -> str:
    """Validate scope names and return them as the wire's comma-separated string, in a stable order."""
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    names = [s.strip() for s in items if s.strip()]
    unknown = sorted(set(names) - set(Scope.values))
    if unknown:
        raise ValidationError(
            {"scopes": f"unknown scope(s): {', '.join(unknown)}; allowed: {', '.join(Scope.values)}"}
        )
    if not names:
        raise ValidationError({"scopes": "at least one scope is required"})
    return ",".join(s for s in Scope.values if s in names)


def api_key_issue(
    *,
    name: str,
    scopes: str | Iterable[str],
    workspace: Workspace | None,
    actor: Actor,
    audit_workspace_id: str | None = None,
    expires_at: datetime | None = None,
    plaintext: str | None = None,
) -> tuple[ApiKey, str]:
    """Mint a key (``workspace=None`` makes a master key) and return it with its only plaintext copy.

    ``plaintext`` lets an operator bring a known key (``PROMPTMETRICS_ADMIN_KEY``); otherwise a
    fresh ``pm_`` + 64 hex key is generated.
    """
    plaintext = plaintext or generate_key()
    key = ApiKey(
        name=name,
        workspace=workspace,
        key_hash=hash_key(plaintext),
        scopes=normalize_scopes(scopes),
        expires_at=expires_at,
    )
    key.full_clean(exclude=["key_hash"])
    with transaction.atomic():
        key.save(force_insert=True)
        audit_record(
            actor=actor,
            workspace_id=audit_workspace_id or key.workspace_id or DEFAULT_WORKSPACE,
            action="api_key:create",
            target_id=str(key.pk),
        )
    return key, plaintext


def expiry_after_days(days: int | None) -> datetime | None:
    return timezone.now() + timedelta(days=days) if days else None


def api_key_mint(
    *,
    caller: Principal,
    request_workspace_id: str,
    name: str,
    scopes: str,
    target_workspace_id: str | None,
    expires_in_days: int | None,
    actor: Actor,
) -> tuple[ApiKey, str]:
    """Mint a key through the API, with its policy.

    Admin keys mint only for their own workspace; only a master key mints master keys (``"*"``) or
    keys for other workspaces, creating a workspace it names for the first time. (The original lets
    any admin do all of it.) The key is audited where it works, a master key where it was minted.
    """
    target = target_workspace_id or request_workspace_id
    if not caller.is_master and target != request_workspace_id:
        raise PermissionDenied(
            "Only a master key can create master keys"
            if target == MASTER_WORKSPACE
            else "Admin keys can only create keys for their own workspace"
        )
    scopes = normalize_scopes(scopes)  # before any workspace is created: a refusal leaves nothing
    with transaction.atomic():
        workspace = None if target == MASTER_WORKSPACE else workspace_ensure(workspace_id=target)
        return api_key_issue(
            name=name,
            scopes=scopes,
            workspace=workspace,
            expires_at=expiry_after_days(expires_in_days),
            actor=actor,
            audit_workspace_id=request_workspace_id if workspace is None else None,
        )


def api_key_revoke(*, api_key: ApiKey, actor: Actor, audit_workspace_id: str | None = None) -> ApiKey:
    """Revoke a key. Every worker and node refuses it from the next request on."""
    with transaction.atomic():
        # The conditional UPDATE makes concurrent revokes idempotent: one audit entry, one winner.
        updated = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if updated:
            audit_record(
                actor=actor,
                workspace_id=audit_workspace_id or api_key.workspace_id or DEFAULT_WORKSPACE,
                action="api_key:revoke",
                target_id=str(api_key.pk),
            )
        transaction.on_commit(key_cache.invalidate_everywhere)
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


def api_key_touch(*, key_id: int, now: datetime, debounce_s: float) -> bool:
    """Record use of a key at most once per debounce interval, whatever the number of workers."""
    cutoff = now - timedelta(seconds=debounce_s)
    # The condition lives in the UPDATE, so workers racing on the same key write at most once.
    stale = ApiKey.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=cutoff), pk=key_id)
    return stale.update(last_used_at=now) > 0


def superuser_ensure(*, username: str, password: str) -> bool:
    """Create the first dashboard superuser; an existing user of that name is left untouched."""
    user_model = get_user_model()
    if user_model.objects.filter(username=username).exists():
        return False
    user_model.objects.create_superuser(username=username, email="", password=password)
    return True
