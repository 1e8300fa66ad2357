"""Admin building blocks shared by every app: rows that services write, and deletes that go
through the services."""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from django.http import HttpRequest


class ViewOnlyAdminMixin:
    """Rows written by services only: viewed in the admin, never added or changed by hand. Deleting
    is refused too unless ``deletable``, and then the admin routes it to the app's delete service
    (``ServiceDeleteAdminMixin``). Serves model admins and inlines alike."""

    deletable = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.deletable and super().has_delete_permission(request, obj)  # type: ignore[misc]


class ServiceDeleteAdminMixin:
    """The bulk "delete selected" action deletes row by row through ``delete_model``, which the
    admin overrides to call its app's delete service: the audit entry, cache invalidation and
    cascades are then the same for one row and for a selection."""

    # Relations ``delete_model`` reads, fetched with the selection in one query.
    delete_select_related: tuple[str, ...] = ()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Model]) -> None:
        if self.delete_select_related:
            queryset = queryset.select_related(*self.delete_select_related)
        for obj in queryset:
            self.delete_model(request, obj)  # type: ignore[attr-defined]
