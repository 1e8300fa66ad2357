"""DRF authentication: API keys (``X-API-Key``) and dashboard sessions, both bound to a workspace.

Either way ``request.auth`` is a ``Principal`` (name, scopes, master flag), and after authentication
``request.workspace_id`` (the ``X-Workspace-Id`` header, validated by RequestContextMiddleware) names
a workspace that exists and that the caller may address.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from tenancy.authcache import KeySnapshot, key_cache
from tenancy.context import Principal
from tenancy.keys import hash_key, hashes_match
from tenancy.models import ROLE_SCOPES, Membership, Scope, Workspace
from tenancy.services import api_key_touch, workspace_ensure

ALL_SCOPES = frozenset(Scope.values)


class KeyRejected(Exception):
    """The presented key is unknown, revoked or expired (the message says which, for a 401)."""


def verify_api_key(raw: str) -> tuple[KeySnapshot, str, float]:
    """The snapshot and hash of a valid key, and the time of the check; raises ``KeyRejected``.

    The one key check of every entry point: the API, Git clones and the OTLP receiver."""
    key_hash = hash_key(raw)
    snapshot = key_cache.get(key_hash)
    # The lookup is by hash; comparing the hashes again in constant time keeps the check free of
    # timing differences whatever index or cache served the lookup.
    if snapshot is None or not hashes_match(snapshot.key_hash, key_hash):
        raise KeyRejected("Invalid API key")
    now = time.time()
    if snapshot.expires_at is not None and snapshot.expires_at < now:
        raise KeyRejected("API key expired")
    return snapshot, key_hash, now


def ensure_workspace_known(workspace_id: str) -> None:
    # A master key may name a workspace that does not exist yet: it is created on first use.
    if workspace_id not in key_cache.known_workspaces:
        workspace_ensure(workspace_id=workspace_id)
        key_cache.known_workspaces.add(workspace_id)


def record_key_use(snapshot: KeySnapshot, now: float) -> None:
    """Stamp ``last_used_at``, at most once per debounce interval per key and process."""
    debounce_s = settings.API_KEY_LAST_USED_DEBOUNCE_MS / 1000
    if snapshot.last_used_at is not None and now - snapshot.last_used_at < debounce_s:
        return
    api_key_touch(key_id=snapshot.id, now=timezone.now(), debounce_s=debounce_s)
    snapshot.last_used_at = now


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[None, Principal] | None:
        raw = request.META.get("HTTP_X_API_KEY")
        if raw is None:
            return None
        try:
            snapshot, key_hash, now = verify_api_key(raw)
        except KeyRejected as exc:
            raise AuthenticationFailed(str(exc)) from None
        workspace_id: str = request._request.workspace_id
        if snapshot.workspace_id is None:
            ensure_workspace_known(workspace_id)
        elif snapshot.workspace_id != workspace_id:
            raise AuthenticationFailed("API key does not belong to this workspace")
        record_key_use(snapshot, now)
        request._request.api_key_hash = key_hash
        principal = Principal(
            name=snapshot.name,
            scopes=snapshot.scopes,
            is_master=snapshot.workspace_id is None,
            scopes_label=snapshot.scopes_label,
            api_key_id=snapshot.id,
            expires_at=snapshot.expires_at,
        )
        return None, principal

    def authenticate_header(self, request: Request) -> str:
        return 'ApiKey realm="promptmetrics", header="X-API-Key"'


class WorkspaceSessionAuthentication(SessionAuthentication):
    """Dashboard users: their role in the request workspace decides their scopes."""

    def authenticate(self, request: Request) -> tuple[Any, Principal] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        workspace_id: str = request._request.workspace_id
        if user.is_superuser:
            if not Workspace.objects.filter(pk=workspace_id).exists():
                raise AuthenticationFailed("Workspace not found")
            scopes, is_master = ALL_SCOPES, True
        else:
            role = (
                Membership.objects.filter(user=user, workspace_id=workspace_id)
                .values_list("role", flat=True)
                .first()
            )
            if role is None:
                raise AuthenticationFailed("You are not a member of this workspace")
            scopes, is_master = ROLE_SCOPES[role], False
        label = ",".join(s for s in Scope.values if s in scopes)
        principal = Principal(
            name=user.get_username(), scopes=scopes, is_master=is_master, scopes_label=label, user=user
        )
        return user, principal
