"""``POST /v1/evaluations/{id}/score``: the suite's rules applied server-side, one result stored per
output with its checks in its metadata; pass by threshold when the suite has one, else when every
rule passes; 422 for bad bodies and for criteria that cannot be compiled."""

from __future__ import annotations

import statistics
import time

import pytest

from evaluations.models import EvaluationResult, ResultRollup
from tenancy.models import AuditLog
from tests.evaluations.support import EVALUATIONS, create_suite, fields, ok

SCORE = f"{EVALUATIONS}/accuracy-check/score"
# Two rules, the second counting twice: a score is 0, 1/3, 2/3 or 1.
CRITERIA = {
    "rules": [
        {"type": "contains", "value": "Paris", "name": "names-paris"},
        {"type": "length", "max": 20, "weight": 2},
    ]
}


def score(api, key, body) -> dict:
    return ok(api.post(SCORE, key=key, json=body), 201)


def test_rules_are_applied_and_each_output_stored_with_its_checks(api, key):
    suite = create_suite(api, key, criteria=CRITERIA, version_tag="1.0.0")
    outputs = [
        {"output": "Paris", "run_id": "r1"},
        {"output": "London"},
        {"output": "Paris is the capital of France"},
        {"output": "It is London, sadly, not the capital"},
    ]
    body = score(api, key, {"outputs": outputs})
    expected_scores = [1.0, 2 / 3, 1 / 3, 0.0]
    assert body["evaluation_id"] == suite["id"]
    assert body["count"] == 4
    assert [r["score"] for r in body["results"]] == pytest.approx(expected_scores)
    assert body["mean_score"] == pytest.approx(statistics.mean(expected_scores))
    # No threshold: a result passes when every rule passes.
    assert [r["passed"] for r in body["results"]] == [True, False, False, False]
    assert (body["passed"], body["failed"]) == (1, 3)

    first, second, third, _ = body["results"]
    assert first["run_id"] == "r1"
    assert first["version_tag"] == "1.0.0"
    assert first["metadata"] == {
        "checks": [
            {"rule": "names-paris", "type": "contains", "passed": True, "reason": None},
            {"rule": "length", "type": "length", "passed": True, "reason": None},
        ]
    }
    assert second["metadata"]["checks"][0] == {
        "rule": "names-paris",
        "type": "contains",
        "passed": False,
        "reason": "output does not contain the rule's value",
    }
    assert third["metadata"]["checks"][1] == {
        "rule": "length",
        "type": "length",
        "passed": False,
        "reason": "length 30 chars is above max 20",
    }

    # Stored as the suite's results, visible in its list, counted in its rollups.
    listed = {r["id"]: r for r in ok(api.get(f"{EVALUATIONS}/{suite['id']}/results", key=key))["items"]}
    assert [listed[r["id"]] for r in body["results"]] == body["results"]
    assert EvaluationResult.objects.count() == 4
    assert sum(ResultRollup.objects.values_list("result_count", flat=True)) == 4
    assert AuditLog.objects.get(action="evaluation:score").target_id == str(suite["id"])


def test_a_threshold_decides_pass_instead_of_all_rules(api, key):
    create_suite(api, key, criteria=CRITERIA, threshold=0.5, pass_rule="gte")
    outputs = ["Paris", "London", "Paris is the capital of France", "It is London, sadly, not the capital"]
    body = score(api, key, {"outputs": [{"output": o} for o in outputs]})
    assert [r["passed"] for r in body["results"]] == [True, True, False, False]
    assert (body["passed"], body["failed"]) == (2, 2)
    # Each check still says what failed.
    assert body["results"][1]["metadata"]["checks"][0]["passed"] is False


def test_a_single_output_and_user_metadata(api, key):
    create_suite(api, key, criteria=CRITERIA)
    body = score(
        api,
        key,
        {"output": "Paris", "trace_id": "t_1", "version_tag": "2.0.0", "metadata": {"judge": "rules"}},
    )
    (result,) = body["results"]
    assert result["trace_id"] == "t_1"
    assert result["version_tag"] == "2.0.0"
    assert result["metadata"]["judge"] == "rules"
    assert [c["passed"] for c in result["metadata"]["checks"]] == [True, True]


def test_the_expected_output_is_compared_with(api, key):
    create_suite(api, key, criteria={"rules": [{"type": "exact_match", "case_sensitive": False}]})
    body = score(
        api,
        key,
        {
            "outputs": [
                {"output": " paris ", "expected": {"answer": "Paris"}},
                {"output": "Lyon", "expected": "Paris"},
                {"output": "Paris"},
            ]
        },
    )
    assert [r["score"] for r in body["results"]] == [1.0, 0.0, 0.0]
    assert body["results"][2]["metadata"]["checks"][0]["reason"] == (
        "no value in the rule and no expected output to compare with"
    )


def test_a_top_level_version_applies_to_every_output_without_one(api, key):
    create_suite(api, key, criteria=CRITERIA, version_tag="1.0.0")
    body = score(
        api,
        key,
        {"version_tag": "3.0.0", "outputs": [{"output": "a"}, {"output": "b", "version_tag": "4.0.0"}]},
    )
    assert [r["version_tag"] for r in body["results"]] == ["3.0.0", "4.0.0"]


def test_a_suite_without_rules_passes_everything(api, key):
    create_suite(api, key, criteria={"rubric": "free text"})
    body = score(api, key, {"outputs": [{"output": "anything"}, {"output": None}]})
    assert [(r["score"], r["passed"]) for r in body["results"]] == [(1.0, True), (1.0, True)]
    assert body["results"][0]["metadata"] == {"checks": []}


def test_non_text_outputs_are_read_as_json(api, key):
    create_suite(
        api,
        key,
        criteria={
            "rules": [
                {"type": "json_schema", "schema": {"type": "object", "required": ["city"]}},
                {"type": "numeric_range", "min": 0, "max": 10},
            ]
        },
    )
    body = score(
        api, key, {"outputs": [{"output": {"city": "Paris"}}, {"output": "7"}, {"output": '{"city": 1}'}]}
    )
    assert [r["score"] for r in body["results"]] == [0.5, 0.5, 0.5]


def test_criteria_that_cannot_be_compiled_are_a_422_and_store_nothing(api, key):
    suite = create_suite(api, key, criteria={"rules": [{"type": "regex", "pattern": "(unclosed"}]})
    assert suite["warnings"]
    response = api.post(SCORE, key=key, json={"outputs": [{"output": "x"}]})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "VALIDATION_FAILED"
    assert body["error"] == "The evaluation's criteria cannot be scored"
    assert body["details"]["fields"] == suite["warnings"]
    assert body["details"]["fields"][0].startswith("rules[0].pattern")
    assert not EvaluationResult.objects.exists()


@pytest.mark.parametrize(
    ("body", "messages"),
    [
        ({"outputs": []}, ['"outputs" must contain at least 1 items']),
        ({"outputs": [{"output": "x"}] * 1001}, ['"outputs" must contain less than or equal to 1000 items']),
        ({"outputs": [{"output": "x"}, "y"]}, ['"outputs" items must be objects']),
        ({"outputs": "x"}, ['"outputs" must be of type object']),
        ({}, ['"output" is required']),
        ({"outputs": [{"output": "x"}, {"expected": "x"}]}, ['[1] "output" is required']),
        (
            {"outputs": [{"output": "x", "metadata": {f"k{i}": i for i in range(51)}}, {"output": "y"}]},
            ["[0] metadata cannot contain more than 50 keys"],
        ),
        ({"outputs": [{"output": "x", "run_id": 5}]}, ['[0] "run_id" must be a string']),
        ({"outputs": [{"output": "x", "trace_id": "a b"}]}, ['[0] "trace_id" must be a UUID']),
        ({"version_tag": "v" * 65, "outputs": [{"output": "x"}]}, ['"version_tag" length must be']),
        ([{"output": "x"}], ['"value" must be of type object']),
    ],
)
def test_invalid_bodies_are_422_and_store_nothing(api, key, body, messages):
    create_suite(api, key, criteria=CRITERIA)
    got = fields(api.post(SCORE, key=key, json=body))
    assert len(got) == len(messages), got
    assert all(g.startswith(m) for g, m in zip(got, messages, strict=True)), got
    assert not EvaluationResult.objects.exists()
    assert not ResultRollup.objects.exists()
    assert not AuditLog.objects.filter(action="evaluation:score").exists()


def test_a_thousand_outputs(api, key):
    create_suite(api, key, criteria=CRITERIA)
    body = score(api, key, {"outputs": [{"output": "Paris" if i % 4 else "Rome"} for i in range(1000)]})
    assert body["count"] == 1000
    assert body["passed"] == 750
    assert EvaluationResult.objects.count() == 1000


def test_a_catastrophic_pattern_cannot_hold_a_worker_for_every_output(api, key, monkeypatch):
    # 0.1 s per output would be 30 s for 300 outputs; the request's shared budget stops it early.
    monkeypatch.setattr("evaluations.services.SCORE_REGEX_SECONDS", 0.3)
    suite = create_suite(api, key, criteria={"rules": [{"type": "regex", "pattern": "(a|aa)+$"}]})
    started = time.monotonic()
    body = score(api, key, {"outputs": [{"output": "a" * 40 + "b"}] * 300})
    assert time.monotonic() - started < 5
    assert body["count"] == 300 and body["failed"] == 300
    reasons = {r["metadata"]["checks"][0]["reason"] for r in body["results"]}
    assert reasons == {"pattern timed out"}
    assert EvaluationResult.objects.filter(evaluation_id=suite["id"]).count() == 300
