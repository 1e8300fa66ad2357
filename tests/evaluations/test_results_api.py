"""``/v1/evaluations/{id}/results``: one result or a batch of up to 1,000 (all or nothing), the pass
rules of numeric, boolean and categorical suites, 422 messages, and the newest-first list with
page/limit and keyset cursors."""

from __future__ import annotations

import pytest

from evaluations.models import EvaluationResult, ResultRollup
from tenancy.models import AuditLog
from tests.evaluations.support import EVALUATIONS, add_results, create_suite, fields, ok

RESULT_FIELDS = {
    "id",
    "evaluation_id",
    "run_id",
    "score",
    "passed",
    "label",
    "version_tag",
    "trace_id",
    "eval_run_id",
    "metadata",
    "created_at",
}
RESULTS = f"{EVALUATIONS}/accuracy-check/results"


@pytest.fixture
def suite(api, key) -> dict:
    return create_suite(api, key, version_tag="1.0.0")


def stored_results() -> int:
    return EvaluationResult.objects.count()


def rollup_count() -> int:
    return sum(ResultRollup.objects.values_list("result_count", flat=True))


# --- One result ---


def test_a_result_by_suite_name_as_the_seed_sdk_sends_it(api, key, suite):
    # evaluations.addResult('accuracy-check', {run_id, score})
    body = add_results(api, key, "accuracy-check", {"run_id": "run-42", "score": 0.87})
    assert set(body) == RESULT_FIELDS
    assert isinstance(body["id"], int)
    assert body["evaluation_id"] == suite["id"]
    assert body["run_id"] == "run-42"
    assert body["score"] == 0.87
    assert body["passed"] is None  # no threshold: the suite cannot tell
    assert body["label"] is None
    assert body["version_tag"] == "1.0.0"  # the suite's version by default
    assert body["trace_id"] is None
    assert body["eval_run_id"] is None
    assert body["metadata"] is None
    assert isinstance(body["created_at"], int)
    stored = EvaluationResult.objects.get()
    assert (stored.pk, stored.evaluation_id, stored.score, stored.run_id) == (
        body["id"],
        suite["id"],
        0.87,
        "run-42",
    )
    assert AuditLog.objects.get(action="evaluation:result").target_id == str(suite["id"])


def test_a_result_by_id_with_every_field(api, key, suite):
    body = add_results(
        api,
        key,
        suite["id"],
        {
            "run_id": "r1",
            "score": -0.5,
            "passed": True,
            "label": "meh",
            "version_tag": "2.0.0",
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
            "metadata": {"judge": "gpt-4o", "tokens": 12, "nested": {"ok": [1, 2]}},
        },
    )
    assert body["score"] == -0.5
    assert body["passed"] is True
    assert body["label"] == "meh"
    assert body["version_tag"] == "2.0.0"
    assert body["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert body["metadata"] == {"judge": "gpt-4o", "tokens": 12, "nested": {"ok": [1, 2]}}
    listed = ok(api.get(RESULTS, key=key))["items"]
    assert listed == [body]


def test_a_result_without_a_score(api, key, suite):
    body = add_results(api, key, suite["id"], {"run_id": "r"})
    assert body["score"] is None
    assert body["passed"] is None


def test_integers_and_extreme_scores(api, key, suite):
    assert add_results(api, key, suite["id"], {"score": 3})["score"] == 3.0
    assert add_results(api, key, suite["id"], {"score": 1e12})["score"] == 1e12
    assert add_results(api, key, suite["id"], {"score": -1e12})["score"] == -1e12
    assert add_results(api, key, suite["id"], {"score": 0})["score"] == 0.0


# --- 422 ---


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"score": "0.9"}, '"score" must be a number'),
        ({"score": True}, '"score" must be a number'),
        ({"score": [1]}, '"score" must be a number'),
        ({"score": 10**400}, '"score" must be a number'),
        ({"score": 1e13}, '"score" must be between -1000000000000 and 1000000000000'),
        ({"score": 1, "passed": "yes"}, '"passed" must be a boolean'),
        ({"score": 1, "passed": 1}, '"passed" must be a boolean'),
        ({"run_id": "r" * 129}, '"run_id" length must be less than or equal to 128 characters long'),
        ({"run_id": 7}, '"run_id" must be a string'),
        ({"label": "l" * 129}, '"label" length must be less than or equal to 128 characters long'),
        ({"version_tag": "v" * 65}, '"version_tag" length must be less than or equal to 64 characters long'),
        ({"trace_id": "not an id"}, '"trace_id" must be a UUID'),
        ({"metadata": "judge"}, '"metadata" must be of type object'),
        ({"metadata": [1]}, '"metadata" must be of type object'),
        ({"metadata": {f"k{i}": i for i in range(51)}}, "metadata cannot contain more than 50 keys"),
    ],
)
def test_invalid_results_are_422_and_store_nothing(api, key, suite, body, message):
    messages = fields(api.post(RESULTS, key=key, json=body))
    assert any(m.startswith(message) for m in messages), messages
    assert stored_results() == 0
    assert not ResultRollup.objects.exists()
    assert not AuditLog.objects.filter(action="evaluation:result").exists()


def test_fifty_metadata_keys_are_allowed(api, key, suite):
    meta = {f"k{i}": i for i in range(50)}
    assert add_results(api, key, suite["id"], {"score": 1, "metadata": meta})["metadata"] == meta


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], '"value" must contain at least 1 items'),
        ([{"score": 1}] * 1001, '"value" must contain less than or equal to 1000 items'),
        ([{"score": 1}, "x"], '"value" items must be objects'),
        ([{"score": 1}, [{"score": 1}]], '"value" items must be objects'),
        ("0.9", '"value" must be of type object'),
        (0.9, '"value" must be of type object'),
    ],
)
def test_malformed_batches_are_422(api, key, suite, body, message):
    assert fields(api.post(RESULTS, key=key, json=body)) == [message]
    assert stored_results() == 0


# --- Batches ---


def test_a_batch_returns_the_ids_in_order(api, key, suite):
    body = add_results(api, key, "accuracy-check", [{"score": 0.1}, {"score": 0.2, "run_id": "b"}, {}])
    assert set(body) == {"ids", "count"}
    assert body["count"] == 3
    stored = {r.pk: r for r in EvaluationResult.objects.all()}
    assert sorted(stored) == sorted(body["ids"])
    assert [stored[pk].score for pk in body["ids"]] == [0.1, 0.2, None]
    assert stored[body["ids"][1]].run_id == "b"
    assert rollup_count() == 3
    assert AuditLog.objects.filter(action="evaluation:result").count() == 1


def test_a_batch_of_one_is_still_a_batch(api, key, suite):
    body = add_results(api, key, suite["id"], [{"score": 1}])
    assert body == {"ids": [EvaluationResult.objects.get().pk], "count": 1}


def test_a_batch_of_a_thousand(api, key, suite):
    body = add_results(api, key, suite["id"], [{"score": i / 1000, "run_id": f"r{i}"} for i in range(1000)])
    assert body["count"] == 1000
    assert len(set(body["ids"])) == 1000
    assert stored_results() == 1000
    assert rollup_count() == 1000
    assert ok(api.get(RESULTS, key=key))["total"] == 1000


def test_a_bad_item_rejects_the_whole_batch(api, key, suite):
    batch = [{"score": 0.5}, {"score": 0.7}, {"score": "high"}, {"score": 1, "metadata": "x"}, {"passed": 2}]
    messages = fields(api.post(RESULTS, key=key, json=batch))
    assert messages == [
        '[2] "score" must be a number',
        '[3] "metadata" must be of type object',
        '[4] "passed" must be a boolean',
    ]
    assert stored_results() == 0
    assert not ResultRollup.objects.exists()
    assert not AuditLog.objects.filter(action="evaluation:result").exists()


def test_a_batch_takes_each_item_version_or_the_suite_one(api, key, suite):
    add_results(api, key, suite["id"], [{"score": 1}, {"score": 0, "version_tag": "2.0.0"}])
    versions = sorted(EvaluationResult.objects.values_list("version_tag", flat=True))
    assert versions == ["1.0.0", "2.0.0"]
    rollups = dict(ResultRollup.objects.values_list("version_tag", "result_count"))
    assert rollups == {"1.0.0": 1, "2.0.0": 1}


# --- Pass rules ---


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("gte", [False, True, True]),
        ("gt", [False, False, True]),
        ("lte", [True, True, False]),
        ("lt", [True, False, False]),
    ],
)
def test_numeric_pass_rules(api, key, rule, expected):
    create_suite(api, key, threshold=0.7, pass_rule=rule)
    got = [add_results(api, key, "accuracy-check", {"score": s})["passed"] for s in (0.6, 0.7, 0.8)]
    assert got == expected
    ids = add_results(api, key, "accuracy-check", [{"score": s} for s in (0.6, 0.7, 0.8)])["ids"]
    stored = dict(EvaluationResult.objects.filter(pk__in=ids).values_list("pk", "passed"))
    assert [stored[pk] for pk in ids] == expected


def test_a_negative_threshold(api, key):
    create_suite(api, key, threshold=-0.2, pass_rule="gt")
    assert add_results(api, key, "accuracy-check", {"score": -0.1})["passed"] is True
    assert add_results(api, key, "accuracy-check", {"score": -0.3})["passed"] is False


def test_a_numeric_result_without_a_score_is_not_judged(api, key):
    create_suite(api, key, threshold=0.5)
    assert add_results(api, key, "accuracy-check", {"run_id": "r"})["passed"] is None


@pytest.mark.parametrize(("score", "passed", "expected"), [(0.9, False, False), (0.1, True, True)])
def test_an_explicit_passed_overrides_the_threshold(api, key, score, passed, expected):
    create_suite(api, key, threshold=0.5)
    body = add_results(api, key, "accuracy-check", {"score": score, "passed": passed})
    assert (body["score"], body["passed"]) == (score, expected)


def test_passed_without_a_threshold_is_kept(api, key):
    create_suite(api, key)
    assert add_results(api, key, "accuracy-check", {"score": 0.2, "passed": True})["passed"] is True


@pytest.mark.parametrize(
    ("body", "score", "passed"),
    [
        ({"score": 1}, 1.0, True),
        ({"score": 0}, 0.0, False),
        ({"score": 1.0}, 1.0, True),
        ({"passed": True}, 1.0, True),
        ({"passed": False}, 0.0, False),
        ({"score": 1, "passed": False}, 1.0, False),
        ({}, None, None),
    ],
)
def test_boolean_suites(api, key, body, score, passed):
    create_suite(api, key, score_type="boolean")
    got = add_results(api, key, "accuracy-check", body)
    assert (got["score"], got["passed"]) == (score, passed)


@pytest.mark.parametrize("score", [0.5, 2, -1, 0.999])
def test_a_boolean_suite_refuses_other_scores(api, key, score):
    create_suite(api, key, score_type="boolean")
    response = api.post(RESULTS, key=key, json=[{"score": 1}, {"score": score}])
    assert fields(response) == ['[1] "score" must be 0 or 1 for a boolean evaluation']
    assert stored_results() == 0


@pytest.mark.parametrize(
    ("label", "passed"),
    [("correct", True), ("partially-correct", True), ("wrong", False), ("Correct", False)],
)
def test_categorical_suites_pass_their_labels(api, key, label, passed):
    create_suite(api, key, score_type="categorical", pass_labels=["correct", "partially-correct"])
    body = add_results(api, key, "accuracy-check", {"label": label})
    assert (body["label"], body["passed"], body["score"]) == (label, passed, None)


def test_a_categorical_result_may_carry_a_score_and_an_explicit_verdict(api, key):
    create_suite(api, key, score_type="categorical", pass_labels=["correct"])
    body = add_results(api, key, "accuracy-check", {"label": "wrong", "score": 0.4, "passed": True})
    assert (body["label"], body["score"], body["passed"]) == ("wrong", 0.4, True)


def test_a_categorical_suite_without_pass_labels_does_not_judge(api, key):
    create_suite(api, key, score_type="categorical")
    assert add_results(api, key, "accuracy-check", {"label": "correct"})["passed"] is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"score": 1}, '"label" is required'),
        ({"label": None}, '"label" is required'),
        ({"label": ""}, '"label" is not allowed to be empty'),
        ({"label": 3}, '"label" must be a string'),
    ],
)
def test_a_categorical_suite_requires_a_label(api, key, body, message):
    create_suite(api, key, score_type="categorical", pass_labels=["correct"])
    assert fields(api.post(RESULTS, key=key, json=body)) == [message]
    assert fields(api.post(RESULTS, key=key, json=[{"label": "correct"}, body])) == [f"[1] {message}"]
    assert stored_results() == 0


# --- List ---


def test_the_list_is_newest_first_with_the_page_envelope(api, key, suite):
    ids = [add_results(api, key, suite["id"], {"score": i / 10})["id"] for i in range(3)]
    ids += add_results(api, key, suite["id"], [{"score": 0.5}, {"score": 0.6}])["ids"]
    body = ok(api.get(RESULTS, key=key))
    assert [r["id"] for r in body["items"]] == ids[::-1]
    assert (body["total"], body["page"], body["limit"], body["totalPages"]) == (5, 1, 50, 1)
    assert body["nextCursor"] is None
    assert all(set(item) == RESULT_FIELDS for item in body["items"])

    second = ok(api.get(f"{RESULTS}?page=2&limit=2", key=key))
    assert [r["id"] for r in second["items"]] == ids[::-1][2:4]
    assert (second["total"], second["totalPages"]) == (5, 3)
    assert second["nextCursor"] is not None
    assert ok(api.get(f"{RESULTS}?page=4&limit=2", key=key))["items"] == []


def test_keyset_pages_walk_every_result_once(api, key, suite):
    ids = add_results(api, key, suite["id"], [{"score": i} for i in range(5)])["ids"]
    ids += [add_results(api, key, suite["id"], {"score": 9})["id"]]
    seen, cursor = [], ""
    for _ in range(10):
        body = ok(api.get(f"{RESULTS}?limit=2&cursor={cursor}", key=key))
        assert set(body) == {"items", "limit", "nextCursor"}
        seen += [r["id"] for r in body["items"]]
        if body["nextCursor"] is None:
            break
        cursor = body["nextCursor"]
    assert seen == sorted(ids, reverse=True)


def test_the_list_holds_only_the_suites_results(api, key, suite):
    other = create_suite(api, key, "other")
    add_results(api, key, other["id"], [{"score": 1}] * 3)
    mine = add_results(api, key, suite["id"], {"score": 0.5})["id"]
    body = ok(api.get(RESULTS, key=key))
    assert [r["id"] for r in body["items"]] == [mine]
    assert body["total"] == 1


@pytest.mark.parametrize("query", ["page=0", "limit=0", "limit=101", "limit=x", "cursor=garbage!"])
def test_bad_list_queries_are_422(api, key, suite, query):
    fields(api.get(f"{RESULTS}?{query}", key=key))
