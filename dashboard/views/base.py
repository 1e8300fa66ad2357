"""The one base of every dashboard page: login, workspace access, roles and tenant scoping.

Tenant isolation is enforced here and only here: pages reach rows through ``scoped()``, which
filters on the session's workspace, and through ``scoped_or_404()``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.generic import TemplateView

from config.api import ApiError
from config.errors import Conflict
from dashboard.access import Access, access_for
from tenancy.context import Actor, actor_from_request
from tenancy.models import Role

M = TypeVar("M", bound=Model)
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def error_messages(exc: ApiError | Conflict | ValidationError) -> list[str]:
    """What a service refused, in its own words: one message per invalid field, else its message."""
    if isinstance(exc, ValidationError):
        return list(exc.messages)
    fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
    if isinstance(fields, list) and fields:
        return [str(field) for field in fields]
    return [str(exc.message)]


class DashboardView(LoginRequiredMixin, TemplateView):
    # The sidebar entry this page belongs to, and the page's title.
    nav = ""
    title = ""
    # Reading takes ``read_role``; any other method (moving a label, minting a key) ``write_role``.
    read_role: str = Role.VIEWER
    write_role: str = Role.EDITOR
    access: Access

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        access = access_for(request)
        if access is None:
            return render(request, "dashboard/no_workspace.html", {"title": "No workspace"}, status=403)
        self.access = access
        needed = self.read_role if request.method in _SAFE else self.write_role
        if not access.allows(needed):
            context = {"access": access, "title": "Not allowed", "needed": Role(needed).label}
            return render(request, "dashboard/forbidden.html", context, status=403)
        try:
            return super().dispatch(request, *args, **kwargs)
        except Http404:
            # A page of the dashboard, not the API's JSON 404: the user keeps the sidebar.
            context = {"access": access, "title": "Not found", "nav": self.nav}
            return render(request, "dashboard/not_found.html", context, status=404)

    @property
    def workspace_id(self) -> str:
        return self.access.workspace.id

    @property
    def server_url(self) -> str:
        """This server's address as the browser reached it, for the snippets pages show."""
        return self.request.build_absolute_uri("/").rstrip("/")

    def actor(self) -> Actor:
        return actor_from_request(self.request)

    def scoped(self, source: type[M] | QuerySet[M]) -> QuerySet[M]:
        queryset = source if isinstance(source, QuerySet) else source._default_manager.all()
        return queryset.filter(workspace_id=self.workspace_id)

    def scoped_or_404(self, source: type[M] | QuerySet[M], **lookup: Any) -> M:
        queryset = self.scoped(source)
        try:
            return queryset.get(**lookup)
        except (queryset.model.DoesNotExist, ValueError):
            raise Http404("Not found in this workspace") from None

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.setdefault("title", self.title)
        context.update(access=self.access, nav=self.nav, server_url=self.server_url)
        return context
