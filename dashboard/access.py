"""Who is looking at the dashboard, in which workspace, with which role.

The current workspace lives in the session. Users see the workspaces they are members of;
superusers see every workspace, as admins.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest

from tenancy.models import Membership, Role, Workspace

SESSION_KEY = "dashboard_workspace"
_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Access:
    workspace: Workspace
    role: str
    # (id, display name) of every workspace the user may switch to.
    choices: tuple[tuple[str, str], ...]

    def allows(self, role: str) -> bool:
        return _RANK[Role(self.role)] >= _RANK[Role(role)]

    @property
    def can_edit(self) -> bool:
        return self.allows(Role.EDITOR)

    @property
    def can_admin(self) -> bool:
        return self.allows(Role.ADMIN)


def _memberships(request: HttpRequest) -> dict[str, tuple[Workspace, str]]:
    if request.user.is_superuser:
        return {ws.id: (ws, Role.ADMIN) for ws in Workspace.objects.all()}
    rows = Membership.objects.filter(user=request.user).select_related("workspace")
    return {row.workspace_id: (row.workspace, row.role) for row in rows}


def access_for(request: HttpRequest) -> Access | None:
    """The user's access to the session's workspace (or their first one); None when they have none."""
    memberships = _memberships(request)
    if not memberships:
        return None
    chosen = request.session.get(SESSION_KEY)
    if chosen not in memberships:
        chosen = next(iter(memberships))
    workspace, role = memberships[chosen]
    choices = tuple((ws.id, str(ws)) for ws, _ in memberships.values())
    return Access(workspace=workspace, role=role, choices=choices)


def switch_workspace(request: HttpRequest, workspace_id: str) -> bool:
    """Make ``workspace_id`` the session's workspace if the user may see it."""
    if workspace_id not in _memberships(request):
        return False
    request.session[SESSION_KEY] = workspace_id
    return True
