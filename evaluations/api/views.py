"""``/v1/evaluations`` (suites, results, runs, trend, compare, score) and ``/v1/datasets``.

Suites are addressed by id or by name wherever an id is taken. Unknown suites and datasets are
404s (upstream: FK failures, 500s).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.db.models import QuerySet
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import KeysetPagination, PagePagination, not_found
from evaluations import selectors, services
from evaluations.api.representations import (
    RESULT_FIELDS,
    dataset_json,
    dataset_row_json,
    eval_run_json,
    evaluation_json,
    result_json,
)
from evaluations.filters import DatasetFilter, EvaluationFilter
from evaluations.models import Dataset, EvalRun, Evaluation, EvaluationResult
from tenancy.api.base import ScopedViewSet
from tenancy.context import actor_from_request

PREVIEW_ROWS = 5


class EvaluationViewSet(ScopedViewSet):
    queryset = Evaluation.objects.all()
    filterset_class = EvaluationFilter
    lookup_field = "ref"
    lookup_value_regex = "[^/]+"

    def get_object(self) -> Evaluation:
        return selectors.evaluation_by_ref(self.get_queryset(), self.kwargs["ref"])

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response([evaluation_json(e) for e in page])

    def create(self, request: Request) -> Response:
        evaluation = services.evaluation_create(
            workspace_id=request.workspace_id, body=request.data, actor=actor_from_request(request)
        )
        return Response(evaluation_json(evaluation), status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, ref: str) -> Response:
        return Response(evaluation_json(self.get_object()))

    def destroy(self, request: Request, ref: str) -> Response:
        services.evaluation_delete(evaluation=self.get_object(), actor=actor_from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["get", "post"])
    def results(self, request: Request, ref: str) -> Response:
        evaluation = self.get_object()
        if request.method == "GET":
            return _page(
                request,
                self,
                EvaluationResult.objects.filter(evaluation=evaluation).values("id", *RESULT_FIELDS),
                lambda row: result_json(SimpleNamespace(pk=row["id"], **row)),
                KeysetPagination,
            )
        results, batch = services.results_add(
            evaluation=evaluation, body=request.data, actor=actor_from_request(request)
        )
        if batch:
            body: dict[str, Any] = {"ids": [r.pk for r in results], "count": len(results)}
            return Response(body, status=status.HTTP_201_CREATED)
        return Response(result_json(results[0]), status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["get", "post"])
    def run(self, request: Request, ref: str) -> Response:
        evaluation = self.get_object()
        if request.method == "GET":
            runs = EvalRun.objects.filter(evaluation=evaluation).order_by("-created_at", "-id")
            return _page(request, self, runs, eval_run_json, PagePagination)
        run = services.eval_run_create(
            evaluation=evaluation, body=request.data, actor=actor_from_request(request)
        )
        return Response(eval_run_json(run), status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def score(self, request: Request, ref: str) -> Response:
        evaluation = self.get_object()
        scored = services.outputs_score(
            evaluation=evaluation, body=request.data, actor=actor_from_request(request)
        )
        results = [result_json(s.result) for s in scored]  # each with its checks in its metadata
        passed = sum(1 for s in scored if s.result.passed)
        body = {
            "evaluation_id": evaluation.pk,
            "count": len(results),
            "mean_score": sum(s.result.score for s in scored) / len(scored),
            "passed": passed,
            "failed": len(scored) - passed,
            "results": results,
        }
        return Response(body, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["get"])
    def trend(self, request: Request, ref: str) -> Response:
        params = request.query_params
        return Response(
            selectors.trend(
                evaluation=self.get_object(),
                window=params.get("window"),
                bucket=params.get("bucket"),
                version=params.get("version") or None,
            )
        )

    @action(detail=True, methods=["get"])
    def compare(self, request: Request, ref: str) -> Response:
        return Response(
            selectors.compare(evaluation=self.get_object(), versions=request.query_params.get("versions"))
        )


def _page(
    request: Request, view: Any, queryset: QuerySet[Any], represent: Any, pagination: type[PagePagination]
) -> Response:
    paginator = pagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response([represent(row) for row in page])


class DatasetViewSet(ScopedViewSet):
    queryset = Dataset.objects.all()
    filterset_class = DatasetFilter
    lookup_value_regex = "[^/]+"

    def get_object(self) -> Dataset:
        raw = self.kwargs["pk"]
        # ASCII digits only: see selectors.evaluation_by_ref.
        is_id = raw.isascii() and raw.isdigit() and len(raw) <= 18
        dataset = self.get_queryset().filter(pk=int(raw)).first() if is_id else None
        if dataset is None:
            raise not_found("Dataset")
        return dataset

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response([dataset_json(d) for d in page])

    def create(self, request: Request) -> Response:
        dataset = services.dataset_create(
            workspace_id=request.workspace_id, body=request.data, actor=actor_from_request(request)
        )
        body = {"id": dataset.pk, "name": dataset.name, "row_count": dataset.row_count}
        body["created_at"] = dataset_json(dataset)["created_at"]
        return Response(body, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, pk: str) -> Response:
        dataset = self.get_object()
        preview = dataset.rows.order_by("position")[:PREVIEW_ROWS]
        return Response({**dataset_json(dataset), "preview": [dataset_row_json(row) for row in preview]})

    def destroy(self, request: Request, pk: str) -> Response:
        services.dataset_delete(dataset=self.get_object(), actor=actor_from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
