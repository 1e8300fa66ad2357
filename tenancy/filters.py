"""FilterSets for tenancy lists, shared by the API and the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime

import django_filters
from django import forms
from django.utils.dateparse import parse_datetime

from tenancy.models import AuditLog


class TimestampField(forms.Field):
    """Accepts Unix seconds (the wire's timestamp format) or an ISO 8601 date/time."""

    default_error_messages = {"invalid": "must be Unix seconds or an ISO 8601 date-time"}

    def to_python(self, value: str | None) -> datetime | None:
        if value in (None, ""):
            return None
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError, OSError):
            pass
        try:
            parsed = parse_datetime(value)  # type: ignore[arg-type]
            if parsed is None:
                raise ValueError(value)
            # Normalised to UTC here: year 1 at +14:00 or year 9999 at -14:00 overflows, and would
            # otherwise do so later, inside the database adapter (a 500).
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
        except (ValueError, OverflowError):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class TimestampFilter(django_filters.Filter):
    field_class = TimestampField


class AuditLogFilter(django_filters.FilterSet):
    action = django_filters.CharFilter(field_name="action")

    class Meta:
        model = AuditLog
        fields = ["action"]


# ``from`` is a Python keyword, so the time-range filters cannot be declared as class attributes.
AuditLogFilter.base_filters["from"] = TimestampFilter(field_name="timestamp", lookup_expr="gte")
AuditLogFilter.base_filters["to"] = TimestampFilter(field_name="timestamp", lookup_expr="lte")
