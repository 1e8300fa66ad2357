"""Dashboard lists filter with the very FilterSet their API endpoint uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django.http import HttpRequest

from tenancy.filters import TimestampField


@dataclass
class Filtered:
    queryset: QuerySet[Any]
    filterset: django_filters.FilterSet
    # Which of the FilterSet's fields the page shows, in order, as (name, label, bound field).
    fields: list[Any]
    errors: list[str]
    active: bool


def apply_filters(
    filterset_class: type[django_filters.FilterSet],
    request: HttpRequest,
    queryset: QuerySet[Any],
    shown: dict[str, str],
) -> Filtered:
    """Filter ``queryset`` by the request's query; invalid input lists its errors and matches nothing."""
    data = {name: request.GET[name] for name in shown if request.GET.get(name)}
    filterset = filterset_class(data=data, queryset=queryset, request=request)
    form = filterset.form
    for name, label in shown.items():
        form.fields[name].label = label
        field = form.fields[name]
        if isinstance(field, TimestampField):
            field.widget.input_type = "datetime-local"
        elif isinstance(field, forms.ChoiceField):
            # "Any" rather than django-filter's "---------" for the unset choice.
            field.choices = [("", "Any"), *((value, label) for value, label in field.choices if value)]
    errors: list[str] = []
    if filterset.is_valid():
        result = filterset.qs
    else:
        errors = [f"{shown.get(name, name)}: {' '.join(msgs)}" for name, msgs in form.errors.items()]
        result = queryset.none()
    return Filtered(
        queryset=result,
        filterset=filterset,
        fields=[form[name] for name in shown],
        errors=errors,
        active=bool(data),
    )
