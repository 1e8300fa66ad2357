"""Workspace isolation of evaluations: the same suite name in two workspaces is two suites, each
workspace sees only its own suites, results, datasets, runs, trends, comparisons and metrics, and
another workspace's ids are 404s."""

from __future__ import annotations

import json

import pytest

from evaluations.models import Dataset, EvalRun, Evaluation, EvaluationResult
from tests.evaluations.support import DATASETS, EVALUATIONS, NOW, assert_404, clock, ok

A, B = "acme", "globex"
CRITERIA = {"rules": [{"type": "exact_match"}]}


class Client:
    """Requests as one workspace: its own key and its ``X-Workspace-Id``."""

    def __init__(self, api, key: str, workspace: str) -> None:
        self.api, self.key, self.workspace = api, key, workspace

    def __call__(self, method: str, path: str, json=None):
        # At a fixed instant: all results fall into one trend bucket whenever the tests run.
        with clock(NOW):
            return self.api.request(method, path, key=self.key, workspace=self.workspace, json=json)

    def get(self, path: str) -> dict:
        return ok(self("GET", path))

    def post(self, path: str, body) -> dict:
        return ok(self("POST", path, body), 201)


@pytest.fixture
def keys(make_key) -> dict[str, str]:
    return {A: make_key("read,write", workspace=A)[1], B: make_key("read,write", workspace=B)[1]}


@pytest.fixture
def a(api, keys) -> Client:
    return Client(api, keys[A], A)


@pytest.fixture
def b(api, keys) -> Client:
    return Client(api, keys[B], B)


@pytest.fixture
def both(a, b) -> dict[str, dict]:
    """In each workspace: a suite named accuracy-check, results, a dataset and a run over it."""
    made = {}
    for client, scores, answer in ((a, [0.9, 0.8], "Paris"), (b, [0.1, 0.2, 0.3], "Rome")):
        suite = client.post(
            EVALUATIONS, {"name": "accuracy-check", "prompt_name": "qa", "criteria": CRITERIA}
        )
        client.post(
            f"{EVALUATIONS}/accuracy-check/results", [{"score": s, "version_tag": "1"} for s in scores]
        )
        client.post(f"{EVALUATIONS}/accuracy-check/results", {"score": scores[0], "version_tag": "2"})
        dataset = client.post(
            DATASETS, {"name": "capitals", "rows": [{"input": {"q": "?"}, "expectedOutput": answer}]}
        )
        run = client.post(
            f"{EVALUATIONS}/accuracy-check/run", {"dataset_id": dataset["id"], "outputs": ["Paris"]}
        )
        made[client.workspace] = {"suite": suite, "dataset": dataset, "run": run}
    return made


def test_a_key_of_one_workspace_addressing_another_is_a_401(api, keys, both):
    for method, path, body in [
        ("GET", EVALUATIONS, None),
        ("POST", EVALUATIONS, {"name": "x", "prompt_name": "qa"}),
        ("POST", f"{EVALUATIONS}/accuracy-check/results", {"score": 1}),
        ("GET", DATASETS, None),
        ("GET", "/v1/metrics/evaluations", None),
    ]:
        response = api.request(method, path, key=keys[A], workspace=B, json=body)
        assert response.status_code == 401, (method, path)
    assert Evaluation.objects.count() == 2
    assert EvaluationResult.objects.count() == 9


def test_the_same_name_is_two_suites(a, b, both):
    suite_a, suite_b = both[A]["suite"], both[B]["suite"]
    assert suite_a["id"] != suite_b["id"]
    assert (suite_a["workspace_id"], suite_b["workspace_id"]) == (A, B)
    assert a.get(f"{EVALUATIONS}/accuracy-check")["id"] == suite_a["id"]
    assert b.get(f"{EVALUATIONS}/accuracy-check")["id"] == suite_b["id"]
    assert [s["id"] for s in a.get(EVALUATIONS)["items"]] == [suite_a["id"]]
    assert [s["id"] for s in b.get(EVALUATIONS)["items"]] == [suite_b["id"]]
    assert a.get(f"{EVALUATIONS}?q=accuracy")["total"] == 1


def test_results_by_name_land_in_the_callers_suite(a, b, both):
    results_a = a.get(f"{EVALUATIONS}/accuracy-check/results")
    results_b = b.get(f"{EVALUATIONS}/accuracy-check/results")
    assert results_a["total"] == 4  # 3 posted + 1 from the run
    assert results_b["total"] == 5
    assert {r["evaluation_id"] for r in results_a["items"]} == {both[A]["suite"]["id"]}
    assert {r["evaluation_id"] for r in results_b["items"]} == {both[B]["suite"]["id"]}
    assert set(EvaluationResult.objects.filter(workspace_id=A).values_list("evaluation_id", flat=True)) == {
        both[A]["suite"]["id"]
    }
    # Keyset pages stay in the workspace too.
    seen, cursor = [], ""
    for _ in range(10):
        page = b.get(f"{EVALUATIONS}/accuracy-check/results?limit=2&cursor={cursor}")
        seen += page["items"]
        if page["nextCursor"] is None:
            break
        cursor = page["nextCursor"]
    assert len(seen) == 5
    assert {r["evaluation_id"] for r in seen} == {both[B]["suite"]["id"]}


def test_datasets_and_runs_are_per_workspace(a, b, both):
    assert [d["id"] for d in a.get(DATASETS)["items"]] == [both[A]["dataset"]["id"]]
    assert [d["id"] for d in b.get(DATASETS)["items"]] == [both[B]["dataset"]["id"]]
    assert a.get(f"{DATASETS}/{both[A]['dataset']['id']}")["preview"][0]["expectedOutput"] == "Paris"
    assert [r["id"] for r in a.get(f"{EVALUATIONS}/accuracy-check/run")["items"]] == [both[A]["run"]["id"]]
    assert [r["id"] for r in b.get(f"{EVALUATIONS}/accuracy-check/run")["items"]] == [both[B]["run"]["id"]]
    # Each run scored its own workspace's dataset ("Paris" is right in acme, wrong in globex).
    assert json.loads(both[A]["run"]["results_json"])[0]["passed"] is True
    assert json.loads(both[B]["run"]["results_json"])[0]["passed"] is False


def test_another_workspaces_ids_are_404s(a, b, both):
    other_suite, other_dataset = both[B]["suite"]["id"], both[B]["dataset"]["id"]
    for method, path, body in [
        ("GET", f"{EVALUATIONS}/{other_suite}", None),
        ("DELETE", f"{EVALUATIONS}/{other_suite}", None),
        ("GET", f"{EVALUATIONS}/{other_suite}/results", None),
        ("POST", f"{EVALUATIONS}/{other_suite}/results", {"score": 1}),
        ("POST", f"{EVALUATIONS}/{other_suite}/results", [{"score": 1}]),
        ("GET", f"{EVALUATIONS}/{other_suite}/run", None),
        ("POST", f"{EVALUATIONS}/{other_suite}/run", {"outputs": ["x"]}),
        ("POST", f"{EVALUATIONS}/{other_suite}/score", {"output": "x"}),
        ("GET", f"{EVALUATIONS}/{other_suite}/trend", None),
        ("GET", f"{EVALUATIONS}/{other_suite}/compare?versions=1,2", None),
    ]:
        assert_404(a(method, path, body), "Evaluation not found")
    assert_404(a("GET", f"{DATASETS}/{other_dataset}"), "Dataset not found")
    assert_404(a("DELETE", f"{DATASETS}/{other_dataset}"), "Dataset not found")
    # A run of one's own suite over another workspace's dataset.
    assert_404(
        a("POST", f"{EVALUATIONS}/accuracy-check/run", {"dataset_id": other_dataset}), "Dataset not found"
    )
    assert Evaluation.objects.count() == 2
    assert Dataset.objects.count() == 2
    assert EvalRun.objects.count() == 2
    assert EvaluationResult.objects.filter(workspace_id=B).count() == 5
    assert EvaluationResult.objects.filter(workspace_id=A).count() == 4


def test_deleting_in_one_workspace_leaves_the_other(a, b, both):
    assert a("DELETE", f"{EVALUATIONS}/accuracy-check").status_code == 204
    assert a("DELETE", f"{DATASETS}/{both[A]['dataset']['id']}").status_code == 204
    assert b.get(f"{EVALUATIONS}/accuracy-check/results")["total"] == 5
    assert b.get(f"{EVALUATIONS}/accuracy-check/run")["total"] == 1
    assert b.get(DATASETS)["total"] == 1


def test_trends_compare_and_metrics_are_per_workspace(a, b, both):
    trend_a = a.get(f"{EVALUATIONS}/accuracy-check/trend?window=7d")
    trend_b = b.get(f"{EVALUATIONS}/accuracy-check/trend?window=7d")
    (point_a,) = [p for p in trend_a["points"] if p["count"]]
    (point_b,) = [p for p in trend_b["points"] if p["count"]]
    # acme: 0.9, 0.8, 0.9 and the run's 1.0; globex: 0.1, 0.2, 0.3, 0.1 and the run's 0.0.
    assert (point_a["count"], point_a["min"], point_a["max"]) == (4, 0.8, 1.0)
    assert (point_b["count"], point_b["min"], point_b["max"]) == (5, 0.0, 0.3)

    compare_a = a.get(f"{EVALUATIONS}/accuracy-check/compare?versions=1,2")
    compare_b = b.get(f"{EVALUATIONS}/accuracy-check/compare?versions=1,2")
    assert [(v["n"], v["min"], v["max"]) for v in compare_a["versions"]] == [(2, 0.8, 0.9), (1, 0.9, 0.9)]
    assert [(v["n"], v["min"], v["max"]) for v in compare_b["versions"]] == [(3, 0.1, 0.3), (1, 0.1, 0.1)]

    metrics_a = a.get("/v1/metrics/evaluations?window=7d")["evaluations"]
    metrics_b = b.get("/v1/metrics/evaluations?window=7d")["evaluations"]
    assert [(e["evaluation_id"], e["trend"][0]["result_count"]) for e in metrics_a] == [
        (both[A]["suite"]["id"], 4)
    ]
    assert [(e["evaluation_id"], e["trend"][0]["result_count"]) for e in metrics_b] == [
        (both[B]["suite"]["id"], 5)
    ]
    # Filtering on another workspace's suite finds nothing.
    assert a.get(f"/v1/metrics/evaluations?evaluation_id={both[B]['suite']['id']}")["evaluations"] == []
    assert a.get("/v1/metrics/activity")["summary"]["total_evaluations"] == 4
    assert b.get("/v1/metrics/activity")["summary"]["total_evaluations"] == 5


def test_the_master_key_sees_the_workspace_it_names(api, master, both):
    listed = ok(api.get(EVALUATIONS, key=master[1], workspace=B))["items"]
    assert [s["id"] for s in listed] == [both[B]["suite"]["id"]]
    results = ok(api.get(f"{EVALUATIONS}/accuracy-check/results", key=master[1], workspace=A))
    assert results["total"] == 4
