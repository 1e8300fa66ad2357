"""Scope enforcement: each view says which scopes may call each action; holding any one suffices."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from tenancy.context import Principal


class HasScope(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.auth
        if not isinstance(principal, Principal):
            return False
        required: tuple[str, ...] = view.get_required_scopes()
        if not required or principal.scopes.intersection(required):
            return True
        self.message = f"Missing required scope: {required[0]}"
        return False
