"""Who is acting in a request: an API key or a dashboard user, with the scopes they hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http import HttpRequest


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, stored as ``request.auth`` for API keys and session users alike."""

    name: str
    scopes: frozenset[str]
    is_master: bool
    scopes_label: str = ""
    api_key_id: int | None = None
    expires_at: float | None = None
    user: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class Actor:
    """What the audit log records about the caller of a service."""

    api_key_name: str = ""
    user: Any = None
    ip_address: str | None = None


def client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: trusting X-Forwarded-For without a known proxy lets clients forge audit IPs.
    return request.META.get("REMOTE_ADDR") or None


def actor_from_request(request: Any) -> Actor:
    """The audit actor of an API request (a key or a session user) or of a Django admin request."""
    principal = getattr(request, "auth", None)
    if isinstance(principal, Principal):
        return Actor(
            api_key_name=principal.name if principal.api_key_id is not None else "",
            user=principal.user,
            ip_address=client_ip(request),
        )
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Actor(user=user, ip_address=client_ip(request))
    return Actor(ip_address=client_ip(request))


def command_actor() -> Actor:
    return Actor(api_key_name="manage.py")
