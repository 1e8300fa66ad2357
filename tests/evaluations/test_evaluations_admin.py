"""The Django admin for evaluations: every list and detail page loads; suites are created and deleted,
datasets deleted, through the audited services; results and runs are read-only; lists stay cheap."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from evaluations.models import (
    Dataset,
    DatasetRow,
    EvalRun,
    EvalRunStatus,
    Evaluation,
    EvaluationResult,
    ResultRollup,
)
from evaluations.services import dataset_import, eval_run_create, evaluation_create, results_add
from tenancy.models import AuditLog
from tests.conftest import TEST_ACTOR

MODELS = ["evaluation", "evaluationresult", "dataset", "evalrun"]
CRITERIA = {"rules": [{"type": "contains", "value": "Paris"}]}


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser(username="ops", email="", password="pw-not-used")


@pytest.fixture
def browser(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def make_suite(workspace_id: str, name: str, **body: Any) -> Evaluation:
    return evaluation_create(
        workspace_id=workspace_id,
        body={"name": name, "prompt_name": "qa", "criteria": CRITERIA, **body},
        actor=TEST_ACTOR,
    )


def make_dataset(workspace_id: str, name: str, rows: int) -> Dataset:
    return dataset_import(
        workspace_id=workspace_id,
        name=name,
        rows=(
            {"input": {"city": f"city-{i}"}, "expected_output": {"answer": f"answer-{i}"}, "output": None}
            for i in range(rows)
        ),
        actor=TEST_ACTOR,
    )


@pytest.fixture
def rows(workspace) -> dict[str, Any]:
    workspace("acme")
    suite = make_suite("acme", "accuracy", threshold=0.5, version_tag="1.0.0")
    results, _ = results_add(
        evaluation=suite,
        body=[
            {"score": 0.9, "run_id": "r_admin", "trace_id": "t_admin", "metadata": {"note": "<b>bold</b>"}},
            {"score": 0.1, "label": "bad"},
        ],
        actor=TEST_ACTOR,
    )
    dataset = make_dataset("acme", "capitals", 12)
    run = eval_run_create(
        evaluation=suite, body={"dataset_id": dataset.pk, "outputs": ["Paris"] * 12}, actor=TEST_ACTOR
    )
    failed = eval_run_create(evaluation=suite, body={}, actor=TEST_ACTOR)
    return {
        "evaluation": suite,
        "evaluationresult": EvaluationResult.objects.get(pk=results[0].pk),
        "dataset": dataset,
        "evalrun": run,
        "failed_run": failed,
    }


@pytest.mark.parametrize("model", MODELS)
def test_every_changelist_and_detail_page_loads(browser, rows, model):
    for query in ("", "?workspace__id__exact=acme", "?q=acc"):
        response = browser.get(f"/admin/evaluations/{model}/{query}")
        assert response.status_code == 200, (model, query)
    detail = browser.get(f"/admin/evaluations/{model}/{rows[model].pk}/change/")
    assert detail.status_code == 200


def test_the_evaluations_index_lists_every_model(browser, db):
    page = browser.get("/admin/evaluations/").content.decode()
    for model in MODELS:
        assert f"/admin/evaluations/{model}/" in page


def test_the_suite_list_shows_its_columns_and_filters(browser, rows, workspace):
    workspace("other")
    make_suite("other", "tone", score_type="categorical", pass_labels=["calm"])
    page = browser.get("/admin/evaluations/evaluation/").content.decode()
    assert "accuracy" in page and "tone" in page and "1.0.0" in page
    page = browser.get("/admin/evaluations/evaluation/?score_type__exact=categorical").content.decode()
    assert "tone" in page and ">accuracy<" not in page
    page = browser.get("/admin/evaluations/evaluation/?workspace__id__exact=acme").content.decode()
    assert ">accuracy<" in page and ">tone<" not in page


def test_the_suite_page_shows_its_criteria_and_cannot_be_edited(browser, rows):
    suite = rows["evaluation"]
    page = browser.get(f"/admin/evaluations/evaluation/{suite.pk}/change/").content.decode()
    assert "&quot;contains&quot;" in page and "Paris" in page
    assert 'name="_save"' not in page
    browser.post(f"/admin/evaluations/evaluation/{suite.pk}/change/", {"name": "renamed"})
    assert Evaluation.objects.get(pk=suite.pk).name == "accuracy"


def add_form(**values: Any) -> dict[str, Any]:
    return {
        "workspace": "acme",
        "name": "helpfulness",
        "description": "",
        "prompt_name": "qa",
        "version_tag": "",
        "score_type": "numeric",
        "threshold": "0.75",
        "pass_rule": "gte",
        "pass_labels": "",
        "criteria": '{"rules": [{"type": "length", "max": 500}]}',
        **values,
    }


def test_a_suite_is_created_through_the_service(browser, rows):
    form = browser.get("/admin/evaluations/evaluation/add/").content.decode()
    assert 'name="criteria"' in form and 'name="pass_labels"' in form
    response = browser.post("/admin/evaluations/evaluation/add/", add_form())
    assert response.status_code == 302, response.content.decode()
    suite = Evaluation.objects.get(workspace_id="acme", name="helpfulness")
    assert suite.criteria == {"rules": [{"type": "length", "max": 500}]}
    assert (suite.threshold, suite.pass_rule, suite.pass_labels) == (0.75, "gte", [])
    audit = AuditLog.objects.get(action="evaluation:create", target_id=str(suite.pk))
    assert (audit.workspace_id, audit.api_key_name, audit.user.username) == ("acme", "ops", "ops")

    # Criteria the rules cannot score are stored (as through the API), with a warning.
    response = browser.post(
        "/admin/evaluations/evaluation/add/",
        add_form(name="odd", criteria='{"rules": [{"type": "nope"}]}'),
        follow=True,
    )
    assert response.status_code == 200
    assert "cannot be scored" in response.content.decode()
    assert Evaluation.objects.filter(name="odd").exists()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"name": "accuracy"}, "already exists"),
        ({"name": ""}, "This field is required"),
        ({"criteria": "[1, 2]"}, "Criteria must be a JSON object"),
        ({"criteria": "{not json"}, "Enter a valid JSON"),
        ({"pass_labels": '["ok", 3]'}, "A JSON array of strings"),
        ({"threshold": "1e13"}, "less than or equal to"),
        ({"score_type": "fuzzy"}, "Select a valid choice"),
    ],
)
def test_a_bad_suite_is_refused_on_the_form(browser, rows, values, message):
    response = browser.post("/admin/evaluations/evaluation/add/", add_form(**values))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Evaluation.objects.count() == 1
    assert AuditLog.objects.filter(action="evaluation:create").count() == 1  # the fixture's


def test_a_suite_is_deleted_through_the_service_with_its_results_and_runs(browser, rows):
    suite = rows["evaluation"]
    confirm = browser.get(f"/admin/evaluations/evaluation/{suite.pk}/delete/").content.decode()
    assert "Evaluation accuracy with its results and runs" in confirm
    assert "Evaluation results: 14" in confirm and "Eval runs: 2" in confirm
    response = browser.post(f"/admin/evaluations/evaluation/{suite.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Evaluation.objects.exists()
    assert not EvaluationResult.objects.exists() and not EvalRun.objects.exists()
    assert not ResultRollup.objects.exists()
    audit = AuditLog.objects.get(action="evaluation:delete")
    assert (audit.workspace_id, audit.target_id, audit.user.username) == ("acme", str(suite.pk), "ops")


def test_suites_are_deleted_in_bulk_through_the_service(browser, rows):
    other = make_suite("acme", "tone")
    response = browser.post(
        "/admin/evaluations/evaluation/",
        {"action": "delete_selected", "_selected_action": [rows["evaluation"].pk, other.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Evaluation.objects.exists()
    deleted = AuditLog.objects.filter(action="evaluation:delete").values_list("target_id", flat=True)
    assert sorted(deleted) == sorted([str(rows["evaluation"].pk), str(other.pk)])


def test_the_dataset_page_previews_its_first_rows(browser, rows):
    dataset = rows["dataset"]
    page = browser.get(f"/admin/evaluations/dataset/{dataset.pk}/change/").content.decode()
    assert "city-0" in page and "answer-0" in page and "city-9" in page
    assert "city-10" not in page  # the first ten only
    assert "and 2 more rows" in page
    assert 'name="_save"' not in page
    listing = browser.get("/admin/evaluations/dataset/").content.decode()
    assert '<td class="field-row_count">12</td>' in listing


def test_the_dataset_preview_escapes_row_content(browser, workspace):
    workspace("acme")
    dataset = dataset_import(
        workspace_id="acme",
        name="xss",
        rows=[{"input": {"q": "<script>alert(1)</script>"}, "expected_output": None, "output": None}],
        actor=TEST_ACTOR,
    )
    page = browser.get(f"/admin/evaluations/dataset/{dataset.pk}/change/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_dataset_is_deleted_through_the_service(browser, rows):
    dataset = rows["dataset"]
    confirm = browser.get(f"/admin/evaluations/dataset/{dataset.pk}/delete/").content.decode()
    assert "Dataset capitals with its 12 rows" in confirm and "Eval runs: 1" in confirm
    response = browser.post(f"/admin/evaluations/dataset/{dataset.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Dataset.objects.exists() and not DatasetRow.objects.exists()
    assert list(EvalRun.objects.values_list("pk", flat=True)) == [rows["failed_run"].pk]
    audit = AuditLog.objects.get(action="delete_dataset")
    assert (audit.workspace_id, audit.target_id, audit.user.username) == ("acme", str(dataset.pk), "ops")


def test_datasets_are_deleted_in_bulk_through_the_service(browser, rows):
    other = make_dataset("acme", "more", 3)
    response = browser.post(
        "/admin/evaluations/dataset/",
        {"action": "delete_selected", "_selected_action": [rows["dataset"].pk, other.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Dataset.objects.exists()
    assert AuditLog.objects.filter(action="delete_dataset").count() == 2


@pytest.mark.parametrize("model", ["evaluationresult", "evalrun", "dataset"])
def test_results_runs_and_datasets_cannot_be_added_or_edited(browser, rows, model):
    assert browser.get(f"/admin/evaluations/{model}/add/").status_code == 403
    pk = rows[model].pk
    page = browser.get(f"/admin/evaluations/{model}/{pk}/change/").content.decode()
    assert 'name="_save"' not in page
    before = type(rows[model]).objects.filter(pk=pk).values().get()
    browser.post(f"/admin/evaluations/{model}/{pk}/change/", {"name": "renamed", "score": "0"})
    assert type(rows[model]).objects.filter(pk=pk).values().get() == before


@pytest.mark.parametrize("model", ["evaluationresult", "evalrun"])
def test_results_and_runs_cannot_be_deleted(browser, rows, model):
    pk = rows[model].pk
    assert browser.post(f"/admin/evaluations/{model}/{pk}/delete/", {"post": "yes"}).status_code == 403
    assert type(rows[model]).objects.filter(pk=pk).exists()


def test_the_result_and_run_pages_show_what_was_scored(browser, rows):
    result = rows["evaluationresult"]
    page = browser.get(f"/admin/evaluations/evaluationresult/{result.pk}/change/").content.decode()
    assert "r_admin" in page and "t_admin" in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    page = browser.get("/admin/evaluations/evaluationresult/?q=r_admin").content.decode()
    assert "r_admin" in page and 'class="field-label">bad<' not in page
    page = browser.get("/admin/evaluations/evaluationresult/?passed__exact=0").content.decode()
    assert "bad" in page and "r_admin" not in page

    run = rows["evalrun"]
    page = browser.get(f"/admin/evaluations/evalrun/{run.pk}/change/").content.decode()
    assert "completed" in page and "&quot;checks&quot;" in page
    failed = rows["failed_run"]
    page = browser.get(f"/admin/evaluations/evalrun/{failed.pk}/change/").content.decode()
    assert failed.status == EvalRunStatus.FAILED and "nothing to score" in page
    page = browser.get("/admin/evaluations/evalrun/?status__exact=failed").content.decode()
    assert f"evalrun/{failed.pk}/change/" in page and f"evalrun/{run.pk}/change/" not in page


@pytest.mark.parametrize("model", MODELS)
def test_changelist_queries_do_not_grow_with_the_rows(browser, rows, model, django_assert_max_num_queries):
    """A page of a few rows and a page of 40 more cost the same few queries (session, user, the
    filters' choices, the counts, the page with its related rows)."""
    with django_assert_max_num_queries(7) as few:
        assert browser.get(f"/admin/evaluations/{model}/").status_code == 200
    suite = rows["evaluation"]
    for i in range(40):
        other = make_suite("acme", f"suite-{i}")
        results_add(evaluation=other, body={"score": i / 40}, actor=TEST_ACTOR)
        dataset = make_dataset("acme", f"dataset-{i}", 1)
        eval_run_create(evaluation=suite, body={"dataset_id": dataset.pk, "outputs": ["x"]}, actor=TEST_ACTOR)
    with django_assert_max_num_queries(len(few.captured_queries)) as many:
        response = browser.get(f"/admin/evaluations/{model}/")
    assert response.status_code == 200
    column = {"evaluation": "prompt_name", "evaluationresult": "score", "dataset": "row_count"}
    assert response.content.decode().count(f'<td class="field-{column.get(model, "status")}"') > 40
    assert len(many.captured_queries) == len(few.captured_queries)
    # The run list reads neither the per-row results nor the suites' criteria (both can be large).
    if model == "evalrun":
        page_sql = many.captured_queries[-1]["sql"]
        assert '"results"' not in page_sql and '"criteria"' not in page_sql, page_sql
