"""FilterSets of the evaluation lists, shared by the API and the dashboard."""

from __future__ import annotations

import django_filters

from evaluations.models import Dataset, Evaluation
from telemetry.filters import Search


class EvaluationFilter(django_filters.FilterSet):
    prompt = django_filters.CharFilter(field_name="prompt_name")
    prompt_name = django_filters.CharFilter(field_name="prompt_name")
    q = Search("name", "prompt_name")

    class Meta:
        model = Evaluation
        fields: list[str] = []


class DatasetFilter(django_filters.FilterSet):
    q = Search("name")

    class Meta:
        model = Dataset
        fields: list[str] = []
