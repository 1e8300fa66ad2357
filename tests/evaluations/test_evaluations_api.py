"""``/v1/evaluations`` suites (upstream §2.7): CRUD, 422s, by-name addressing, 404s on every route,
read-only keys refused on every mutation, and the cascade of deletes (suites and datasets)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from evaluations.models import Dataset, DatasetRow, EvalRun, Evaluation, EvaluationResult, ResultRollup
from tenancy.models import AuditLog
from tests.evaluations.support import (
    DATASETS,
    EVALUATIONS,
    add_results,
    assert_404,
    clock,
    create_dataset,
    create_suite,
    fields,
    ok,
)

SUITE_FIELDS = {
    "id",
    "name",
    "description",
    "prompt_name",
    "version_tag",
    "criteria",
    "score_type",
    "threshold",
    "pass_rule",
    "pass_labels",
    "workspace_id",
    "created_at",
}
RULES = {"rules": [{"type": "contains", "value": "Paris"}]}


# --- Create ---


def test_create_returns_the_suite(api, key):
    body = create_suite(
        api,
        key,
        description="Answers name the right capital",
        version_tag="1.0.0",
        criteria=RULES,
        threshold=0.5,
        pass_rule="gt",
    )
    assert set(body) == SUITE_FIELDS
    assert isinstance(body["id"], int)
    assert body["name"] == "accuracy-check"
    assert body["description"] == "Answers name the right capital"
    assert body["prompt_name"] == "qa"
    assert body["version_tag"] == "1.0.0"
    assert body["criteria"] == RULES
    assert body["score_type"] == "numeric"
    assert body["threshold"] == 0.5
    assert body["pass_rule"] == "gt"
    assert body["pass_labels"] == []
    assert body["workspace_id"] == "default"
    assert isinstance(body["created_at"], int)
    assert ok(api.get(f"{EVALUATIONS}/{body['id']}", key=key)) == body
    entry = AuditLog.objects.get(action="evaluation:create")
    assert (entry.target_id, entry.prompt_name, entry.version_tag) == (str(body["id"]), "qa", "1.0.0")


def test_create_with_only_the_required_fields(api, key):
    body = create_suite(api, key)
    assert body["description"] is None
    assert body["version_tag"] is None
    assert body["criteria"] is None
    assert body["threshold"] is None
    assert (body["score_type"], body["pass_rule"]) == ("numeric", "gte")
    assert "warnings" not in body


def test_free_form_criteria_are_stored_as_given(api, key):
    criteria = {"rubric": "be nice", "weights": [1, 2], "nested": {"a": None}}
    body = create_suite(api, key, criteria=criteria)
    assert body["criteria"] == criteria
    assert "warnings" not in body  # no "rules": nothing to score, nothing wrong


def test_malformed_rules_are_stored_with_warnings(api, key):
    criteria = {"rules": [{"type": "regex", "pattern": "("}, {"type": "nope"}, {"type": "length", "max": 5}]}
    body = create_suite(api, key, criteria=criteria)
    assert body["criteria"] == criteria
    assert body["warnings"] == [
        "rules[0].pattern: invalid regular expression: missing ) at position 1",
        "rules[1].type must be one of: "
        "contains, exact_match, json_schema, keyword, length, numeric_range, regex",
    ]
    assert Evaluation.objects.filter(pk=body["id"]).exists()
    # The warnings are part of the suite's JSON wherever it is read.
    assert ok(api.get(f"{EVALUATIONS}/{body['id']}", key=key))["warnings"] == body["warnings"]
    assert ok(api.get(EVALUATIONS, key=key))["items"][0]["warnings"] == body["warnings"]


def test_a_duplicate_name_is_a_409(api, key):
    create_suite(api, key)
    response = api.post(EVALUATIONS, key=key, json={"name": "accuracy-check", "prompt_name": "other"})
    assert response.status_code == 409
    assert response.json()["code"] == "CONFLICT"
    assert Evaluation.objects.get().prompt_name == "qa"
    assert AuditLog.objects.filter(action="evaluation:create").count() == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"prompt_name": "qa"}, '"name" is required'),
        ({"name": "x"}, '"prompt_name" is required'),
        ({"name": "", "prompt_name": "qa"}, '"name" is not allowed to be empty'),
        ({"name": "x", "prompt_name": ""}, '"prompt_name" is not allowed to be empty'),
        ({"name": 5, "prompt_name": "qa"}, '"name" must be a string'),
        ({"name": "x", "prompt_name": ["qa"]}, '"prompt_name" must be a string'),
        (
            {"name": "n" * 129, "prompt_name": "qa"},
            '"name" length must be less than or equal to 128 characters long',
        ),
        (
            {"name": "x", "prompt_name": "p" * 129},
            '"prompt_name" length must be less than or equal to 128 characters long',
        ),
        (
            {"name": "x", "prompt_name": "qa", "version_tag": "v" * 65},
            '"version_tag" length must be less than or equal to 64 characters long',
        ),
        (
            {"name": "x", "prompt_name": "qa", "description": "d" * 1025},
            '"description" length must be less than or equal to 1024 characters long',
        ),
        ({"name": "x", "prompt_name": "qa", "criteria": "be nice"}, '"criteria" must be of type object'),
        ({"name": "x", "prompt_name": "qa", "criteria": [RULES]}, '"criteria" must be of type object'),
        (
            {"name": "x", "prompt_name": "qa", "score_type": "stars"},
            '"score_type" must be one of [numeric, boolean, categorical]',
        ),
        (
            {"name": "x", "prompt_name": "qa", "pass_rule": "eq"},
            '"pass_rule" must be one of [gte, gt, lte, lt]',
        ),
        ({"name": "x", "prompt_name": "qa", "threshold": "0.5"}, '"threshold" must be a number'),
        ({"name": "x", "prompt_name": "qa", "threshold": True}, '"threshold" must be a number'),
        ({"name": "x", "prompt_name": "qa", "threshold": 10**400}, '"threshold" must be a number'),
        ({"name": "x", "prompt_name": "qa", "threshold": 1e13}, '"threshold" must be between'),
        ({"name": "x", "prompt_name": "qa", "pass_labels": "good"}, '"pass_labels" must be an array'),
        ({"name": "x", "prompt_name": "qa", "pass_labels": ["good", ""]}, '"pass_labels" must be an array'),
        ({"name": "x", "prompt_name": "qa", "pass_labels": [1]}, '"pass_labels" must be an array'),
        (
            {"name": "x", "prompt_name": "qa", "pass_labels": [f"l{i}" for i in range(101)]},
            '"pass_labels" must contain less than or equal to 100 items',
        ),
    ],
)
def test_invalid_bodies_are_422_and_store_nothing(api, key, body, message):
    messages = fields(api.post(EVALUATIONS, key=key, json=body))
    assert any(m.startswith(message) for m in messages), messages
    assert not Evaluation.objects.exists()
    assert not AuditLog.objects.filter(action="evaluation:create").exists()


def test_every_field_error_is_reported_at_once(api, key):
    messages = fields(api.post(EVALUATIONS, key=key, json={"name": 1, "threshold": "x"}))
    assert messages == [
        '"name" must be a string',
        '"prompt_name" is required',
        '"threshold" must be a number',
    ]


@pytest.mark.parametrize("body", [[{"name": "x", "prompt_name": "qa"}], "x", 5])
def test_a_body_that_is_not_an_object_is_a_422(api, key, body):
    assert fields(api.post(EVALUATIONS, key=key, json=body)) == ['"value" must be of type object']
    assert not Evaluation.objects.exists()


def test_inclusive_length_limits(api, key):
    body = create_suite(
        api, key, "n" * 128, prompt_name="p" * 128, version_tag="v" * 64, description="d" * 1024
    )
    assert (len(body["name"]), len(body["prompt_name"]), len(body["version_tag"])) == (128, 128, 64)
    assert len(body["description"]) == 1024


# --- Read ---


def test_list_is_newest_first_and_paginated(api, key):
    ids = [create_suite(api, key, f"suite-{i}")["id"] for i in range(3)]
    body = ok(api.get(EVALUATIONS, key=key))
    assert [s["id"] for s in body["items"]] == ids[::-1]
    assert (body["total"], body["page"], body["limit"], body["totalPages"]) == (3, 1, 50, 1)
    assert all(set(item) == SUITE_FIELDS for item in body["items"])
    second = ok(api.get(f"{EVALUATIONS}?page=2&limit=2", key=key))
    assert [s["id"] for s in second["items"]] == [ids[0]]
    assert (second["total"], second["totalPages"]) == (3, 2)
    assert ok(api.get(f"{EVALUATIONS}?page=9", key=key))["items"] == []


def test_an_empty_list(api, key):
    assert ok(api.get(EVALUATIONS, key=key)) == {
        "items": [],
        "total": 0,
        "page": 1,
        "limit": 50,
        "totalPages": 0,
    }


@pytest.mark.parametrize("query", ["page=0", "page=x", "limit=0", "limit=101"])
def test_bad_page_or_limit_is_a_422(api, key, query):
    fields(api.get(f"{EVALUATIONS}?{query}", key=key))


def test_list_filters(api, key):
    create_suite(api, key, "tone", prompt_name="support-reply")
    create_suite(api, key, "accuracy", prompt_name="qa")
    create_suite(api, key, "accuracy-strict", prompt_name="qa")
    by_prompt = ok(api.get(f"{EVALUATIONS}?prompt_name=qa", key=key))
    assert [s["name"] for s in by_prompt["items"]] == ["accuracy-strict", "accuracy"]
    assert by_prompt["total"] == 2
    assert [s["name"] for s in ok(api.get(f"{EVALUATIONS}?prompt=support-reply", key=key))["items"]] == [
        "tone"
    ]
    assert {s["name"] for s in ok(api.get(f"{EVALUATIONS}?q=strict", key=key))["items"]} == {
        "accuracy-strict"
    }


def test_get_by_id_and_by_name(api, key):
    suite = create_suite(api, key)
    assert ok(api.get(f"{EVALUATIONS}/{suite['id']}", key=key))["id"] == suite["id"]
    assert ok(api.get(f"{EVALUATIONS}/accuracy-check", key=key))["id"] == suite["id"]


@pytest.mark.parametrize("name", ["accuracy check: ünïcode", "qa.v2", "accuracy.json", "50%", "a?b#c"])
def test_names_are_addressed_url_encoded(api, key, name):
    create_suite(api, key, "decoy")
    suite = create_suite(api, key, name)
    encoded = quote(name, safe="")
    assert ok(api.get(f"{EVALUATIONS}/{encoded}", key=key))["id"] == suite["id"]
    add_results(api, key, encoded, {"score": 1})
    assert EvaluationResult.objects.get().evaluation_id == suite["id"]
    assert ok(api.get(f"{EVALUATIONS}/{encoded}/trend", key=key))["name"] == name


@pytest.mark.parametrize(
    "digits",
    [
        lambda n: "".join(chr(0xFF10 + int(d)) for d in str(n)),  # full-width: int() reads them
        lambda n: "".join(chr(0x0660 + int(d)) for d in str(n)),  # Arabic-Indic: int() reads them
        lambda n: "²",  # a digit to str.isdigit(), not to int()
        lambda n: f"{n}.0",
        lambda n: f"-{n}",
    ],
)
def test_a_reference_that_is_not_ascii_digits_is_a_name(api, key, digits):
    first = create_suite(api, key, "first")
    name = digits(first["id"])
    suite = create_suite(api, key, name)
    encoded = quote(name)
    assert ok(api.get(f"{EVALUATIONS}/{encoded}", key=key))["id"] == suite["id"]
    add_results(api, key, encoded, {"score": 1})
    assert EvaluationResult.objects.get().evaluation_id == suite["id"]


def test_an_all_digit_name_is_found_by_name_when_no_suite_has_that_id(api, key):
    suite = create_suite(api, key, "20240101")
    assert suite["id"] != 20240101
    assert ok(api.get(f"{EVALUATIONS}/20240101", key=key))["id"] == suite["id"]
    add_results(api, key, "20240101", {"score": 0.5})
    assert EvaluationResult.objects.get().evaluation_id == suite["id"]


def test_an_id_wins_over_an_all_digit_name(api, key):
    first = create_suite(api, key, "first")
    # A second suite whose name is the first one's id: the id is tried first (documented order).
    named = create_suite(api, key, str(first["id"]))
    assert ok(api.get(f"{EVALUATIONS}/{first['id']}", key=key))["name"] == "first"
    assert ok(api.get(f"{EVALUATIONS}/{named['id']}", key=key))["name"] == str(first["id"])
    assert api.delete(f"{EVALUATIONS}/{first['id']}", key=key).status_code == 204
    # With the id gone, the same reference now names the second suite.
    assert ok(api.get(f"{EVALUATIONS}/{first['id']}", key=key))["id"] == named["id"]


# --- Delete ---


def test_delete_is_a_204_then_a_404(api, key):
    suite = create_suite(api, key)
    response = api.delete(f"{EVALUATIONS}/{suite['id']}", key=key)
    assert response.status_code == 204
    assert response.content == b""
    assert_404(api.get(f"{EVALUATIONS}/{suite['id']}", key=key), "Evaluation not found")
    assert_404(api.delete(f"{EVALUATIONS}/{suite['id']}", key=key), "Evaluation not found")
    assert AuditLog.objects.get(action="evaluation:delete").target_id == str(suite["id"])


def test_delete_by_name(api, key):
    create_suite(api, key)
    assert api.delete(f"{EVALUATIONS}/accuracy-check", key=key).status_code == 204
    assert not Evaluation.objects.exists()
    # The name is free again.
    create_suite(api, key)


def test_deleting_a_suite_deletes_its_results_rollups_and_runs(api, key):
    suite = create_suite(api, key, criteria=RULES)
    other = create_suite(api, key, "other", criteria=RULES)
    dataset = create_dataset(api, key, [{"input": {"q": "capital of France?"}, "expectedOutput": {"a": 1}}])
    for ref in (suite["id"], other["id"]):
        add_results(api, key, ref, [{"score": 0.5}, {"score": 1, "version_tag": "2"}])
        ok(
            api.post(
                f"{EVALUATIONS}/{ref}/run", key=key, json={"dataset_id": dataset["id"], "outputs": ["Paris"]}
            ),
            201,
        )
        ok(api.post(f"{EVALUATIONS}/{ref}/score", key=key, json={"output": "Lyon"}), 201)
    assert EvaluationResult.objects.filter(evaluation_id=suite["id"]).count() == 4
    assert ResultRollup.objects.filter(evaluation_id=suite["id"]).exists()
    assert EvalRun.objects.filter(evaluation_id=suite["id"]).count() == 1

    assert api.delete(f"{EVALUATIONS}/{suite['id']}", key=key).status_code == 204

    assert not EvaluationResult.objects.filter(evaluation_id=suite["id"]).exists()
    assert not ResultRollup.objects.filter(evaluation_id=suite["id"]).exists()
    assert not EvalRun.objects.filter(evaluation_id=suite["id"]).exists()
    # The other suite and the dataset are untouched.
    assert EvaluationResult.objects.filter(evaluation_id=other["id"]).count() == 4
    assert ok(api.get(f"{EVALUATIONS}/{other['id']}/results", key=key))["total"] == 4
    assert ok(api.get(f"{EVALUATIONS}/{other['id']}/run", key=key))["total"] == 1
    assert ok(api.get(f"{DATASETS}/{dataset['id']}", key=key))["row_count"] == 1
    assert_404(api.get(f"{EVALUATIONS}/{suite['id']}/results", key=key), "Evaluation not found")


@pytest.mark.usefixtures("frozen")
def test_deleting_a_dataset_deletes_its_rows_and_the_runs_over_it(api, key):
    suite = create_suite(api, key, criteria=RULES)
    kept = create_dataset(api, key, [{"input": {"q": 1}}], name="kept")
    doomed = create_dataset(api, key, [{"input": {"q": 1}}, {"input": {"q": 2}}], name="doomed")
    ok(
        api.post(
            f"{EVALUATIONS}/{suite['id']}/run", key=key, json={"dataset_id": kept["id"], "outputs": ["Paris"]}
        ),
        201,
    )
    ok(
        api.post(
            f"{EVALUATIONS}/{suite['id']}/run",
            key=key,
            json={"dataset_id": doomed["id"], "outputs": ["Paris", "Rome"]},
        ),
        201,
    )
    add_results(api, key, suite["id"], {"score": 0.25})

    assert api.delete(f"{DATASETS}/{doomed['id']}", key=key).status_code == 204

    assert not Dataset.objects.filter(pk=doomed["id"]).exists()
    assert not DatasetRow.objects.filter(dataset_id=doomed["id"]).exists()
    assert [r["dataset_id"] for r in ok(api.get(f"{EVALUATIONS}/{suite['id']}/run", key=key))["items"]] == [
        kept["id"]
    ]
    assert ok(api.get(f"{EVALUATIONS}/{suite['id']}", key=key))["id"] == suite["id"]
    assert DatasetRow.objects.filter(dataset_id=kept["id"]).count() == 1
    assert AuditLog.objects.get(action="delete_dataset").target_id == str(doomed["id"])
    # The deleted run's results (Paris: 1, Rome: 0) go with it, and the suite's trend, metrics and
    # activity stop counting them: what is left is the other run's 1 and the posted 0.25.
    listed = ok(api.get(f"{EVALUATIONS}/{suite['id']}/results", key=key))
    assert sorted(r["score"] for r in listed["items"]) == [0.25, 1.0]
    trend = ok(api.get(f"{EVALUATIONS}/{suite['id']}/trend?window=7d", key=key))
    (point,) = [p for p in trend["points"] if p["count"]]
    assert (point["count"], point["avg"], point["min"], point["max"]) == (2, 0.625, 0.25, 1.0)
    (metrics,) = ok(api.get("/v1/metrics/evaluations?window=7d", key=key))["evaluations"]
    assert [(d["result_count"], d["min_score"], d["max_score"]) for d in metrics["trend"]] == [(2, 0.25, 1.0)]
    activity = ok(api.get("/v1/metrics/activity?window=7d", key=key))
    assert activity["summary"]["total_evaluations"] == 2


def test_deleting_a_dataset_recounts_the_hours_of_its_runs_only(api, key):
    create_suite(api, key, criteria=RULES, threshold=0.5)
    dataset = create_dataset(api, key, [{"input": {}, "output": "Paris"}, {"input": {}, "output": "Rome"}])
    runs = f"{EVALUATIONS}/accuracy-check/run"
    with clock(datetime(2025, 3, 10, 9, 5, tzinfo=UTC)):
        ok(api.post(runs, key=key, json={"outputs": ["Paris", "Paris", "Nice"], "version_tag": "v2"}), 201)
    with clock(datetime(2025, 3, 10, 10, 20, tzinfo=UTC)):
        add_results(api, key, "accuracy-check", {"score": 0.9, "version_tag": "v1"})
    with clock(datetime(2025, 3, 10, 10, 40, tzinfo=UTC)):
        ok(api.post(runs, key=key, json={"dataset_id": dataset["id"], "version_tag": "v1"}), 201)
    with clock(datetime(2025, 3, 10, 11, 10, tzinfo=UTC)):
        ok(api.post(runs, key=key, json={"dataset_id": dataset["id"], "version_tag": "v2"}), 201)

    with clock(datetime(2025, 3, 10, 12, 30, tzinfo=UTC)):
        assert api.delete(f"{DATASETS}/{dataset['id']}", key=key).status_code == 204
        trend = ok(api.get(f"{EVALUATIONS}/accuracy-check/trend?window=7d&bucket=hour", key=key))
        compare = ok(api.get(f"{EVALUATIONS}/accuracy-check/compare?versions=v1,v2", key=key))
    hours = {p["bucket"][11:13]: p for p in trend["points"] if p["bucket"].startswith("2025-03-10")}
    # 09h: the run without a dataset, untouched; 10h: the posted result without the run's two;
    # 11h: only the deleted run's results were there.
    assert (hours["09"]["count"], hours["09"]["avg"], hours["09"]["pass_rate"]) == (3, 2 / 3, 2 / 3)
    assert hours["10"] == {
        "bucket": "2025-03-10T10:00:00Z",
        "count": 1,
        "avg": 0.9,
        "min": 0.9,
        "max": 0.9,
        "pass_rate": 1.0,
    }
    assert hours["11"]["count"] == 0
    assert [(v["version_tag"], v["results"], v["passed"], v["judged"]) for v in compare["versions"]] == [
        ("v1", 1, 1, 1),
        ("v2", 3, 2, 3),
    ]
    assert ResultRollup.objects.count() == 2
    assert EvaluationResult.objects.count() == 4


# --- 404s ---


SUITE_ROUTES = [
    ("GET", "", None),
    ("DELETE", "", None),
    ("GET", "/results", None),
    ("POST", "/results", {"score": 1}),
    ("POST", "/results", [{"score": 1}]),
    ("GET", "/run", None),
    ("POST", "/run", {}),
    ("POST", "/score", {"output": "x"}),
    ("GET", "/trend", None),
    ("GET", "/compare?versions=a,b", None),
]


@pytest.mark.parametrize(("method", "suffix", "body"), SUITE_ROUTES)
@pytest.mark.parametrize(
    "ref", ["999999", "no-such-suite", "0", "99999999999999999999999", "-1", "%C2%B2", "%D9%A1", "%EF%BC%91"]
)
def test_an_unknown_suite_is_a_404_on_every_route(api, key, method, suffix, body, ref):
    create_suite(api, key)  # another suite exists
    path, _, query = f"{EVALUATIONS}/{ref}{suffix}".partition("?")
    response = api.request(method, f"{path}?{query}" if query else path, key=key, json=body)
    assert_404(response, "Evaluation not found")
    assert not EvaluationResult.objects.exists()
    assert not EvalRun.objects.exists()


@pytest.mark.parametrize(("method", "body"), [("GET", None), ("DELETE", None)])
@pytest.mark.parametrize(
    "ref", ["999999", "abc", "0", "-1", "1.5", "99999999999999999999999", "%C2%B2", "%D9%A1", "%EF%BC%91"]
)
def test_an_unknown_dataset_is_a_404(api, key, method, body, ref):
    create_dataset(api, key, [{"input": {"q": 1}}])
    assert_404(api.request(method, f"{DATASETS}/{ref}", key=key, json=body), "Dataset not found")
    assert Dataset.objects.count() == 1


@pytest.mark.parametrize("dataset_id", [999999, 0, -1, 2**63 - 1, 2**63, 10**30])
def test_a_run_over_an_unknown_dataset_is_a_404_and_records_no_run(api, key, dataset_id):
    suite = create_suite(api, key)
    response = api.post(f"{EVALUATIONS}/{suite['id']}/run", key=key, json={"dataset_id": dataset_id})
    assert_404(response, "Dataset not found")
    assert not EvalRun.objects.exists()


# --- Scopes ---


def test_a_read_only_key_may_read_everything(api, key, reader):
    suite = create_suite(api, key, criteria=RULES)
    dataset = create_dataset(api, key, [{"input": {"q": 1}}])
    add_results(api, key, suite["id"], {"score": 1, "version_tag": "a"})
    for path in (
        EVALUATIONS,
        f"{EVALUATIONS}/{suite['id']}",
        f"{EVALUATIONS}/accuracy-check/results",
        f"{EVALUATIONS}/accuracy-check/run",
        f"{EVALUATIONS}/accuracy-check/trend",
        f"{EVALUATIONS}/accuracy-check/compare?versions=a,b",
        DATASETS,
        f"{DATASETS}/{dataset['id']}",
        "/v1/metrics/evaluations",
    ):
        assert api.get(path, key=reader).status_code == 200, path


def test_a_read_only_key_is_refused_every_mutation(api, key, reader):
    suite = create_suite(api, key, criteria=RULES)
    dataset = create_dataset(api, key, [{"input": {"q": 1}, "output": "Paris"}])
    audit_before = AuditLog.objects.count()
    mutations = [
        ("POST", EVALUATIONS, {"name": "new", "prompt_name": "qa"}),
        ("DELETE", f"{EVALUATIONS}/{suite['id']}", None),
        ("DELETE", f"{EVALUATIONS}/accuracy-check", None),
        ("POST", f"{EVALUATIONS}/{suite['id']}/results", {"score": 1}),
        ("POST", f"{EVALUATIONS}/accuracy-check/results", [{"score": 1}, {"score": 0}]),
        ("POST", f"{EVALUATIONS}/{suite['id']}/run", {"dataset_id": dataset["id"]}),
        ("POST", f"{EVALUATIONS}/{suite['id']}/score", {"output": "Paris"}),
        ("POST", DATASETS, {"name": "d", "rows": [{"input": {}}]}),
        ("DELETE", f"{DATASETS}/{dataset['id']}", None),
    ]
    for method, path, body in mutations:
        response = api.request(method, path, key=reader, json=body)
        assert response.status_code == 403, (method, path, response.content)
        assert response.json()["code"] == "FORBIDDEN"
    assert Evaluation.objects.count() == 1
    assert not EvaluationResult.objects.exists()
    assert not EvalRun.objects.exists()
    assert Dataset.objects.count() == 1
    assert AuditLog.objects.count() == audit_before


def test_without_a_key_every_route_is_a_401(api, key):
    suite = create_suite(api, key)
    for method, suffix, body in SUITE_ROUTES:
        path, _, query = f"{EVALUATIONS}/{suite['id']}{suffix}".partition("?")
        response = api.request(method, f"{path}?{query}" if query else path, json=body)
        assert response.status_code == 401, (method, suffix)
    assert api.get(DATASETS).status_code == 401
    assert api.post(EVALUATIONS, json={"name": "x", "prompt_name": "qa"}).status_code == 401
    assert Evaluation.objects.count() == 1
