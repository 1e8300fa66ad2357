"""API-key authentication for plain Django views (no DRF): the OTLP receiver.

The same rules as ``tenancy.authentication.ApiKeyAuthentication`` (the key cache, constant-time
hash comparison, expiry, master keys creating the workspace they name, the debounced last-used
stamp) and the same sliding-window rate limit as every /v1 view, for a view that must answer in
its own wire format rather than DRF's.

OpenTelemetry exporters send whatever headers they are configured with: ``X-API-Key: pm_…`` or
``Authorization: Bearer pm_…`` both work. The workspace is the ``X-Workspace-Id`` header when sent,
else the key's own workspace (``default`` for a master key), so an exporter configured with a
workspace key alone needs no second header.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.http import HttpRequest

from tenancy.authcache import KeySnapshot
from tenancy.authentication import KeyRejected, ensure_workspace_known, record_key_use, verify_api_key
from tenancy.context import Actor, client_ip
from tenancy.ratelimit import rate_limit_hit

DEFAULT_WORKSPACE = "default"


class Refused(Exception):
    """The request is refused before any work: HTTP status, error code, message, extra headers."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True)
class KeyAccess:
    snapshot: KeySnapshot
    key_hash: str
    workspace_id: str
    rate_limit_headers: dict[str, str]


def presented_key(request: HttpRequest) -> str | None:
    """The API key of ``X-API-Key``, else of ``Authorization: Bearer``; None when neither is sent."""
    key = request.META.get("HTTP_X_API_KEY")
    if key:
        return key.strip()
    scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def authorize(request: HttpRequest, *, scopes: Iterable[str]) -> KeyAccess:
    """Authenticate the request's API key, resolve its workspace, check ``scopes`` (any one
    suffices) and count the request against the rate limit. Raises ``Refused`` otherwise."""
    raw = presented_key(request)
    if raw is None:
        raise Refused(401, "UNAUTHORIZED", "Missing API key: send X-API-Key or Authorization: Bearer")
    try:
        snapshot, key_hash, now = verify_api_key(raw)
    except KeyRejected as exc:
        raise Refused(401, "UNAUTHORIZED", str(exc)) from None
    workspace_id = _workspace(request, snapshot)
    required = tuple(scopes)
    if not snapshot.scopes.intersection(required):
        raise Refused(403, "FORBIDDEN", f"Missing required scope: {' or '.join(required)}")
    record_key_use(snapshot, now)
    return KeyAccess(snapshot, key_hash, workspace_id, _rate_limit(workspace_id, key_hash))


def request_actor(request: HttpRequest, access: KeyAccess) -> Actor:
    return Actor(api_key_name=access.snapshot.name, ip_address=client_ip(request))


def _workspace(request: HttpRequest, snapshot: KeySnapshot) -> str:
    named = "HTTP_X_WORKSPACE_ID" in request.META
    # Validated by RequestContextMiddleware (a malformed header never gets here).
    workspace_id: str = getattr(request, "workspace_id", DEFAULT_WORKSPACE)
    if snapshot.workspace_id is None:
        # A master key may name a workspace that does not exist yet: created on first use, as in
        # the API.
        ensure_workspace_known(workspace_id)
        return workspace_id
    if named and snapshot.workspace_id != workspace_id:
        raise Refused(401, "UNAUTHORIZED", "API key does not belong to this workspace")
    return snapshot.workspace_id


def _rate_limit(workspace_id: str, key_hash: str) -> dict[str, str]:
    result = rate_limit_hit(workspace_id=workspace_id, key_hash=key_hash)
    if result is None:
        return {}
    if not result.allowed:
        raise Refused(429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded", result.headers)
    return result.headers
