"""Operations: health, the workspace's API keys, the audit log, rate limits in effect, storage and Git.

Keys are minted and revoked through ``tenancy.services`` (admins only). A new key's plaintext
exists once: it waits in the server-side session until the next page view shows it, then is gone.
"""

from __future__ import annotations

import platform
from functools import cache
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import django
from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from config.api import ApiError
from dashboard.filtering import apply_filters
from dashboard.paging import numbered_page
from dashboard.views.base import DashboardView, error_messages
from dashboard.views.overview import health_panel
from registry.storage import StoreError, get_store
from tenancy.filters import AuditLogFilter
from tenancy.models import ApiKey, AuditLog, Role, Scope
from tenancy.services import api_key_issue, api_key_revoke, expiry_after_days

NEW_KEY_SESSION = "dashboard_new_api_key"
# The name a git client sends is ignored by the Git endpoint (the password is the key); any will do.
GIT_USER = "x"
KEY_ENV = "PROMPTMETRICS_API_KEY"


class ApiKeyForm(forms.Form):
    # The same bounds as the API's ``ApiKeyCreateInputSerializer``.
    name = forms.CharField(max_length=128, strip=True)
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one scope."},
    )
    expires_in_days = forms.IntegerField(min_value=1, max_value=36500, required=False)


@cache
def _version() -> str:
    try:
        return metadata.version("promptmetrics")
    except metadata.PackageNotFoundError:
        return "unknown"


def _storage() -> dict[str, str]:
    try:
        return get_store().describe()
    except StoreError as exc:
        return {"driver": settings.DRIVER, "location": f"unavailable: {exc}"}


def _rate_limits() -> dict[str, Any]:
    limit = settings.RATE_LIMIT_MAX_REQUESTS
    window_ms = settings.RATE_LIMIT_WINDOW_MS
    return {
        "enabled": limit > 0,
        "max_requests": limit,
        "window_ms": window_ms,
        "window_s": window_ms / 1000,
        "per_second": limit * 1000 / window_ms if limit else 0,
        "redis": bool(settings.REDIS_URL),
        "directory": str(settings.RATE_LIMIT_DIR),
    }


def _clone(server_url: str, workspace_id: str) -> dict[str, str]:
    url = f"{server_url}/git/{workspace_id}.git"
    parts = urlsplit(url)
    # The key goes in as a shell variable, so it stays out of the page and of shell history.
    with_key = urlunsplit(parts._replace(netloc=f"{GIT_USER}:${KEY_ENV}@{parts.netloc}"))
    return {"url": url, "command": f"git clone {with_key}"}


class OperationsView(DashboardView):
    template_name = "dashboard/operations/index.html"
    nav = "operations"
    title = "Operations"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Only a GET consumes the key: a HEAD (a link checker, a prefetch) must not make it vanish unseen.
        new_key = request.session.pop(NEW_KEY_SESSION, None) if request.method == "GET" else None
        if new_key and new_key.get("workspace") != self.workspace_id:
            new_key = None
        response = self.render_to_response(self.get_context_data(new_key=new_key))
        if new_key:
            add_never_cache_headers(response)
        return response

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        keys = self.scoped(ApiKey).order_by("-created_at", "-id")
        storage = _storage()
        serves_git = getattr(get_store(), "repo_path", None) is not None
        context.setdefault("key_form", ApiKeyForm(initial={"scopes": [Scope.READ]}))
        context.update(
            tab="overview",
            health=health_panel(),
            versions={
                "PromptMetrics": _version(),
                "Django": django.get_version(),
                "Python": platform.python_version(),
            },
            keys=numbered_page(keys, self.request),
            now=timezone.now(),
            scopes=Scope.choices,
            rate=_rate_limits(),
            storage=storage,
            clone=_clone(self.server_url, self.workspace_id) if serves_git else None,
            key_env=KEY_ENV,
        )
        return context


class ApiKeyCreateView(OperationsView):
    write_role = Role.ADMIN

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # The page re-rendered after a refused form links its pager here; the list lives on the page.
        query = request.GET.urlencode()
        return HttpResponseRedirect(reverse("dashboard:operations") + (f"?{query}" if query else ""))

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = ApiKeyForm(request.POST)
        if form.is_valid():
            try:
                key, plaintext = api_key_issue(
                    name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"],
                    workspace=self.access.workspace,
                    expires_at=expiry_after_days(form.cleaned_data["expires_in_days"]),
                    actor=self.actor(),
                )
            except (ApiError, ValidationError) as exc:
                form.add_error(None, " ".join(error_messages(exc)))
            else:
                request.session[NEW_KEY_SESSION] = {
                    "id": key.pk,
                    "name": key.name,
                    "key": plaintext,
                    "workspace": self.workspace_id,
                }
                return HttpResponseRedirect(reverse("dashboard:operations") + "#new-key")
        context = self.get_context_data(key_form=form)
        return self.render_to_response(context, status=422)


class ApiKeyRevokeView(DashboardView):
    write_role = Role.ADMIN
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, pk: int, **kwargs: Any) -> HttpResponse:
        # Scoped to the session's workspace: master keys and other workspaces' keys are not found.
        key = self.scoped_or_404(ApiKey, pk=pk)
        if key.revoked_at is not None:
            messages.info(request, f"API key “{key.name}” was already revoked.")
        else:
            api_key_revoke(api_key=key, actor=self.actor())
            messages.success(request, f"API key “{key.name}” revoked: it is refused from now on.")
        return HttpResponseRedirect(reverse("dashboard:operations") + "#api-keys")


class AuditLogView(DashboardView):
    template_name = "dashboard/operations/audit.html"
    nav = "operations"
    title = "Audit log"
    # As GET /v1/audit-logs (admin scope): who did what, from which IP, is for admins.
    read_role = Role.ADMIN

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        entries = self.scoped(AuditLog).order_by("-timestamp", "-id")
        filtered = apply_filters(
            AuditLogFilter, self.request, entries, {"action": "Action", "from": "From", "to": "To"}
        )
        filtered.filterset.form.fields["action"].widget.attrs.update(
            list="audit-actions", placeholder="any action", autocomplete="off"
        )
        actions = self.scoped(AuditLog).order_by("action").values_list("action", flat=True).distinct()
        context.update(
            tab="audit",
            filtered=filtered,
            page=numbered_page(filtered.queryset, self.request),
            actions=list(actions),
        )
        return context


urlpatterns = [
    path("operations", OperationsView.as_view(), name="operations"),
    path("operations/keys", ApiKeyCreateView.as_view(), name="api-key-create"),
    path("operations/keys/<int:pk>/revoke", ApiKeyRevokeView.as_view(), name="api-key-revoke"),
    path("operations/audit", AuditLogView.as_view(), name="audit-log"),
]
