"""Signing in and out, and choosing the workspace."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from dashboard.access import switch_workspace


class LoginView(auth_views.LoginView):
    template_name = "dashboard/login.html"
    redirect_authenticated_user = True
    extra_context = {"title": "Sign in"}


@require_POST
@login_required
def switch_workspace_view(request: HttpRequest) -> HttpResponse:
    if not switch_workspace(request, request.POST.get("workspace", "")):
        messages.error(request, "You are not a member of that workspace.")
    target = request.POST.get("next", "")
    # Only back to a page of this site (an open redirect otherwise); a detail page of the old
    # workspace would be a 404 in the new one, so lists and the overview are the safe landings.
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    return redirect(target)


urlpatterns = [
    path("login", LoginView.as_view(), name="login"),
    path("logout", auth_views.LogoutView.as_view(next_page="dashboard:login"), name="logout"),
    path("workspace", switch_workspace_view, name="switch-workspace"),
]
