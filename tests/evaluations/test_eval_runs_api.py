"""``/v1/evaluations/{id}/run`` (upstream §2.8): a run scores the suite's rules over a dataset's rows
(outputs sent aligned with the rows, or stored in them) or over ``outputs`` alone, and always
ends, ``completed`` with its score and per-row results or ``failed`` with a reason."""

from __future__ import annotations

import json
import statistics

import pytest

from evaluations.models import EvalRun, EvaluationResult
from tenancy.models import AuditLog
from tests.evaluations.support import EVALUATIONS, assert_404, create_dataset, create_suite, fields, ok

RUN = f"{EVALUATIONS}/accuracy-check/run"
RUN_FIELDS = {
    "id",
    "evaluation_id",
    "dataset_id",
    "version_tag",
    "status",
    "score",
    "passed_count",
    "row_count",
    "results_json",
    "reason",
    "workspace_id",
    "created_at",
    "finished_at",
}
# exact_match against each row's expected output, and a short answer (weight 1 each).
CRITERIA = {"rules": [{"type": "exact_match", "case_sensitive": False}, {"type": "length", "max": 12}]}
ROWS = [
    {"input": {"q": "Capital of France?"}, "expectedOutput": {"answer": "Paris"}},
    {"input": {"q": "Capital of Italy?"}, "expectedOutput": {"answer": "Rome"}},
    {"input": {"q": "Capital of Spain?"}, "expectedOutput": {"answer": "Madrid"}},
]


@pytest.fixture
def suite(api, key) -> dict:
    return create_suite(api, key, criteria=CRITERIA, version_tag="1.0.0")


@pytest.fixture
def dataset(api, key) -> dict:
    return create_dataset(api, key, ROWS)


def run(api, key, body, ref="accuracy-check") -> dict:
    body = ok(api.post(f"{EVALUATIONS}/{ref}/run", key=key, json=body), 201)
    assert set(body) == RUN_FIELDS
    return body


def test_a_run_over_a_dataset_with_aligned_outputs(api, key, suite, dataset):
    outputs = ["paris", "Milan", "The capital of Spain is Madrid"]
    body = run(api, key, {"dataset_id": dataset["id"], "outputs": outputs})
    row_scores = [1.0, 0.5, 0.0]  # both rules; length only; neither
    assert body["status"] == "completed"
    assert body["evaluation_id"] == suite["id"]
    assert body["dataset_id"] == dataset["id"]
    assert body["version_tag"] == "1.0.0"
    assert body["score"] == pytest.approx(statistics.mean(row_scores))
    assert body["passed_count"] == 1
    assert body["row_count"] == 3
    assert body["reason"] is None
    assert body["workspace_id"] == "default"
    assert body["finished_at"] >= body["created_at"]

    assert isinstance(body["results_json"], str)
    per_row = json.loads(body["results_json"])
    assert [r["row"] for r in per_row] == [0, 1, 2]
    assert [r["score"] for r in per_row] == row_scores
    assert [r["passed"] for r in per_row] == [True, False, False]
    assert per_row[1]["checks"] == [
        {
            "rule": "exact_match",
            "type": "exact_match",
            "passed": False,
            "reason": "output does not equal the expected output",
        },
        {"rule": "length", "type": "length", "passed": True, "reason": None},
    ]
    assert AuditLog.objects.get(action="evaluation:run").target_id == str(body["id"])


@pytest.mark.usefixtures("frozen")
def test_a_runs_results_are_the_suites_results(api, key, suite, dataset):
    body = run(api, key, {"dataset_id": dataset["id"], "outputs": ["Paris", "Rome", "Lisbon"]})
    listed = ok(api.get(f"{EVALUATIONS}/{suite['id']}/results", key=key))["items"]
    assert len(listed) == 3
    assert {r["eval_run_id"] for r in listed} == {body["id"]}
    assert {r["version_tag"] for r in listed} == {"1.0.0"}
    by_row = {r["metadata"]["dataset_row"]: r for r in listed}
    assert [by_row[i]["score"] for i in range(3)] == [1.0, 1.0, 0.5]
    assert [by_row[i]["passed"] for i in range(3)] == [True, True, False]
    assert by_row[2]["metadata"]["checks"][0]["passed"] is False
    # And in the trend: today's bucket holds the three scores.
    trend = ok(api.get(f"{EVALUATIONS}/{suite['id']}/trend?window=7d", key=key))
    (point,) = [p for p in trend["points"] if p["count"]]
    assert (point["count"], point["min"], point["max"]) == (3, 0.5, 1.0)
    assert point["avg"] == pytest.approx(2.5 / 3)
    assert point["pass_rate"] == pytest.approx(2 / 3)


def test_a_run_over_rows_carrying_their_outputs(api, key, suite):
    dataset = create_dataset(
        api,
        key,
        [
            {**row, "output": output}
            for row, output in zip(ROWS, ["Paris", "rome", "Barcelona!!!!"], strict=True)
        ],
    )
    body = run(api, key, {"dataset_id": dataset["id"], "version_tag": "2.0.0"})
    assert body["status"] == "completed"
    assert body["version_tag"] == "2.0.0"
    assert [r["score"] for r in json.loads(body["results_json"])] == [1.0, 1.0, 0.0]
    assert (body["passed_count"], body["row_count"]) == (2, 3)
    assert body["score"] == pytest.approx(2 / 3)
    assert set(EvaluationResult.objects.values_list("version_tag", flat=True)) == {"2.0.0"}


def test_sent_outputs_take_the_place_of_stored_ones(api, key, suite):
    dataset = create_dataset(api, key, [{**row, "output": "wrong answer"} for row in ROWS])
    body = run(api, key, {"dataset_id": dataset["id"], "outputs": ["Paris", "Rome", "Madrid"]})
    assert (body["score"], body["passed_count"]) == (1.0, 3)


def test_a_run_over_outputs_alone(api, key):
    create_suite(api, key, criteria={"rules": [{"type": "contains", "value": "Paris"}]})
    body = run(api, key, {"outputs": ["Paris!", {"city": "Paris"}, "Rome", None]})
    assert body["status"] == "completed"
    assert body["dataset_id"] is None
    per_row = json.loads(body["results_json"])
    assert [r["row"] for r in per_row] == [None] * 4
    assert [r["score"] for r in per_row] == [1.0, 1.0, 0.0, 0.0]
    assert (body["score"], body["passed_count"], body["row_count"]) == (0.5, 2, 4)
    listed = ok(api.get(f"{EVALUATIONS}/accuracy-check/results", key=key))["items"]
    assert all(set(r["metadata"]) == {"checks"} for r in listed)  # no dataset row to name


def test_a_threshold_decides_what_passes_in_a_run(api, key, dataset):
    create_suite(api, key, criteria=CRITERIA, threshold=0.5)
    body = run(
        api,
        key,
        {"dataset_id": dataset["id"], "outputs": ["paris", "Milan", "The capital of Spain is Madrid"]},
    )
    assert body["passed_count"] == 2
    assert [r["passed"] for r in json.loads(body["results_json"])] == [True, True, False]


# --- Runs that fail ---


def assert_failed(body: dict, reason: str) -> None:
    assert body["status"] == "failed"
    assert body["reason"].startswith(reason), body["reason"]
    assert (body["score"], body["passed_count"], body["row_count"], body["results_json"]) == (
        None,
        None,
        None,
        None,
    )
    assert body["finished_at"] is not None
    assert not EvaluationResult.objects.exists()


def test_malformed_rules_fail_the_run(api, key, dataset):
    suite = create_suite(api, key, criteria={"rules": [{"type": "keyword", "keywords": []}]})
    assert suite["warnings"]
    body = run(api, key, {"dataset_id": dataset["id"], "outputs": ["a", "b", "c"]})
    assert_failed(body, f"invalid criteria: {suite['warnings'][0]}")


def test_criteria_that_are_not_an_object_of_rules_fail_the_run(api, key):
    suite = create_suite(api, key, criteria={"rules": "be accurate"})
    assert suite["warnings"] == ["rules must be a list"]
    assert_failed(run(api, key, {"outputs": ["a"]}), "invalid criteria: rules must be a list")


def test_misaligned_outputs_fail_the_run(api, key, suite, dataset):
    body = run(api, key, {"dataset_id": dataset["id"], "outputs": ["Paris", "Rome"]})
    assert_failed(body, "outputs has 2 items but the dataset has 3 rows")


def test_a_dataset_without_outputs_fails_the_run(api, key, suite, dataset):
    body = run(api, key, {"dataset_id": dataset["id"]})
    assert_failed(body, "row 0 has no output (3 rows without one)")


def test_a_dataset_missing_some_outputs_fails_the_run(api, key, suite):
    dataset = create_dataset(api, key, [{**ROWS[0], "output": "Paris"}, ROWS[1], {**ROWS[2], "output": "x"}])
    assert_failed(run(api, key, {"dataset_id": dataset["id"]}), "row 1 has no output (1 rows without one)")


def test_an_empty_dataset_fails_the_run(api, key, suite):
    dataset = create_dataset(api, key, [])
    assert_failed(run(api, key, {"dataset_id": dataset["id"], "outputs": []}), "the dataset has no rows")


@pytest.mark.parametrize("body", [{}, {"outputs": []}, {"outputs": None}, {"version_tag": "2"}])
def test_nothing_to_score_fails_the_run(api, key, suite, body):
    assert_failed(run(api, key, body), "nothing to score")


def test_a_failed_run_is_listed_as_failed(api, key, suite, dataset):
    failed = run(api, key, {"dataset_id": dataset["id"]})
    listed = ok(api.get(RUN, key=key))["items"]
    assert [(r["id"], r["status"], r["reason"]) for r in listed] == [
        (failed["id"], "failed", failed["reason"])
    ]


# --- 422 and 404 ---


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"dataset_id": "1"}, '"dataset_id" must be a number'),
        ({"dataset_id": 1.5}, '"dataset_id" must be a number'),
        ({"dataset_id": True}, '"dataset_id" must be a number'),
        ({"dataset_id": [1]}, '"dataset_id" must be a number'),
        ({"outputs": "Paris"}, '"outputs" must be an array'),
        ({"outputs": {"0": "Paris"}}, '"outputs" must be an array'),
        ({"outputs": ["x"] * 10_001}, '"outputs" must contain less than or equal to 10000 items'),
        ({"version_tag": 2}, '"version_tag" must be a string'),
        ({"version_tag": "v" * 65}, '"version_tag" length must be'),
    ],
)
def test_invalid_bodies_are_422_and_start_no_run(api, key, suite, dataset, body, message):
    messages = fields(api.post(RUN, key=key, json=body))
    assert any(m.startswith(message) for m in messages), messages
    assert not EvalRun.objects.exists()
    assert not AuditLog.objects.filter(action="evaluation:run").exists()


@pytest.mark.parametrize("body", [[{"dataset_id": 1}], "run"])
def test_a_body_that_is_not_an_object_is_a_422(api, key, suite, body):
    assert fields(api.post(RUN, key=key, json=body)) == ['"value" must be of type object']


def test_an_unknown_dataset_is_a_404(api, key, suite, dataset):
    assert_404(api.post(RUN, key=key, json={"dataset_id": dataset["id"] + 100}), "Dataset not found")
    assert not EvalRun.objects.exists()


def test_a_deleted_dataset_is_a_404(api, key, suite, dataset):
    assert api.delete(f"/v1/datasets/{dataset['id']}", key=key).status_code == 204
    assert_404(
        api.post(RUN, key=key, json={"dataset_id": dataset["id"], "outputs": ["a"] * 3}), "Dataset not found"
    )


# --- List ---


def test_the_list_is_newest_first_and_paginated(api, key, suite, dataset):
    first = run(api, key, {"dataset_id": dataset["id"], "outputs": ["Paris", "Rome", "Madrid"]})
    second = run(api, key, {"dataset_id": dataset["id"]})
    third = run(api, key, {"outputs": ["Paris"]}, ref=suite["id"])
    other = create_suite(api, key, "other")
    run(api, key, {"outputs": ["x"]}, ref=other["id"])

    body = ok(api.get(RUN, key=key))
    assert [r["id"] for r in body["items"]] == [third["id"], second["id"], first["id"]]
    assert (body["total"], body["page"], body["limit"], body["totalPages"]) == (3, 1, 50, 1)
    assert all(set(r) == RUN_FIELDS for r in body["items"])
    listed_first = body["items"][2]
    assert listed_first == first
    assert json.loads(listed_first["results_json"]) == json.loads(first["results_json"])
    assert [r["status"] for r in body["items"]] == ["completed", "failed", "completed"]

    page = ok(api.get(f"{RUN}?page=2&limit=2", key=key))
    assert [r["id"] for r in page["items"]] == [first["id"]]
    assert page["totalPages"] == 2
    fields(api.get(f"{RUN}?limit=0", key=key))
    assert ok(api.get(f"{EVALUATIONS}/{suite['id']}/run", key=key))["total"] == 3
