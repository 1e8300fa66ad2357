"""The evaluations pages: the suite list with its latest scores and the create form, one suite's trend,
counts, results, version comparison and runs, and the datasets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard.views import evaluations as view
from evaluations import selectors, services
from evaluations.models import Dataset, Evaluation
from tenancy.context import Actor
from tenancy.models import Workspace
from tests.evaluations.support import clock

ACTOR = Actor(api_key_name="pytest")


@pytest.fixture(autouse=True)
def _workspaces(db: None) -> Iterator[None]:
    for name in ("acme", "globex"):
        Workspace.objects.get_or_create(id=name, defaults={"name": name})
    yield


def suite(name: str = "accuracy", workspace: str = "acme", **body: Any) -> Evaluation:
    return services.evaluation_create(
        workspace_id=workspace, body={"name": name, "prompt_name": "qa", **body}, actor=ACTOR
    )


def results(evaluation: Evaluation, items: list[dict[str, Any]], *, at: Any = None) -> None:
    """Post a batch of results, stamped ``at`` (the rollups follow the service's clock)."""
    if at is None:
        services.results_add(evaluation=evaluation, body=items, actor=ACTOR)
        return
    with clock(at):
        services.results_add(evaluation=evaluation, body=items, actor=ACTOR)


def dataset(name: str = "capitals", workspace: str = "acme", rows: int = 3) -> Dataset:
    body = {
        "name": name,
        "rows": [{"input": {"question": f"q{i}"}, "expectedOutput": f"answer {i}"} for i in range(rows)],
    }
    return services.dataset_create(workspace_id=workspace, body=body, actor=ACTOR)


def queries(client: Any, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, response.content[:500]
    return len(captured.captured_queries)


# --- the list -------------------------------------------------------------------------------------


def test_list_shows_the_latest_days_score_and_pass_rate(client_as) -> None:
    evaluation = suite(threshold=0.5, description="Answers match the reference")
    now = timezone.now()
    results(evaluation, [{"score": 0.1}, {"score": 0.3}], at=now - timedelta(days=2))
    results(evaluation, [{"score": 0.6}, {"score": 1.0}, {"score": 0.2}], at=now)
    suite("untouched")

    response = client_as("viewer").get("/evaluations")

    assert response.status_code == 200
    page = response.content.decode()
    assert "accuracy" in page and "untouched" in page and "no results yet" in page
    # Today's three results: average 0.6, two of three pass (≥ 0.5); the older day is not counted.
    assert 'data-cell="score">0.600<' in page
    assert 'data-cell="pass-rate">66.7 %<' in page
    assert now.date().isoformat() in page
    assert "most recent UTC day with results" in page
    assert "New evaluation" not in page  # viewers cannot create


def test_list_empty_state(client_as) -> None:
    page = client_as("viewer").get("/evaluations").content.decode()
    assert "No evaluations yet." in page


def test_list_filters_change_rows(client_as) -> None:
    suite("accuracy", prompt_name="support")
    suite("tone", prompt_name="welcome")
    client = client_as("viewer")

    by_prompt = client.get("/evaluations", {"prompt": "welcome"}).content.decode()
    by_search = client.get("/evaluations", {"q": "accu"}).content.decode()
    none = client.get("/evaluations", {"q": "nothing-like-it"}).content.decode()

    assert ">tone<" in by_prompt and ">accuracy<" not in by_prompt
    assert ">accuracy<" in by_search and ">tone<" not in by_search
    assert "No evaluations match these filters." in none


def test_list_bad_filter_is_a_message(client_as) -> None:
    suite()
    response = client_as("viewer").get("/evaluations", {"q": "x" * 300})
    assert response.status_code == 200
    assert "Search: Ensure this value has at most 256 characters" in response.content.decode()


def test_list_pages(client_as, monkeypatch) -> None:
    monkeypatch.setattr(view, "PAGE_SIZE", 5)
    for index in range(7):
        suite(f"suite-{index:02d}")
    client = client_as("viewer")

    first = client.get("/evaluations").content.decode()
    second = client.get("/evaluations", {"page": 2}).content.decode()

    assert "Page 1 of 2" in first and first.count("data-evaluation=") == 5
    assert second.count("data-evaluation=") == 2 and ">suite-00<" in second


def test_list_queries_do_not_grow_with_rows(client_as, django_assert_max_num_queries) -> None:
    client = client_as("viewer")
    first = suite("first", threshold=0.5)
    results(first, [{"score": 0.7, "version_tag": "1.0.0"}])
    few = queries(client, "/evaluations")
    for index in range(30):
        evaluation = suite(f"suite-{index}", threshold=0.5)
        results(evaluation, [{"score": 0.5, "version_tag": "1.0.0"}, {"score": 0.9, "version_tag": "2.0.0"}])
    many = queries(client, "/evaluations")
    assert many == few
    with django_assert_max_num_queries(10):
        client.get("/evaluations")


def test_list_hides_other_workspaces(client_as) -> None:
    suite("ours")
    theirs = suite("theirs", workspace="globex")
    their_data = dataset("their-data", workspace="globex")
    client = client_as("viewer", "acme")

    page = client.get("/evaluations").content.decode()
    datasets = client.get("/datasets").content.decode()

    assert ">ours<" in page and "theirs" not in page
    assert "their-data" not in datasets
    assert client.get(f"/evaluations/{theirs.pk}").status_code == 404
    assert client.get(f"/datasets/{their_data.pk}").status_code == 404


# --- creating a suite -----------------------------------------------------------------------------


FORM = {
    "name": "faithfulness",
    "prompt_name": "support",
    "version_tag": "1.2.0",
    "description": "Stays with the sources",
    "score_type": "numeric",
    "pass_rule": "gte",
    "threshold": "0.75",
    "pass_labels": "",
    "criteria": '{"rules": [{"type": "contains", "value": "Paris"}]}',
}


def test_editor_creates_an_evaluation(client_as) -> None:
    response = client_as("editor").post("/evaluations", FORM)

    evaluation = Evaluation.objects.get(workspace_id="acme", name="faithfulness")
    assert response.status_code == 302
    assert response["Location"] == f"/evaluations/{evaluation.pk}"
    assert evaluation.threshold == 0.75 and evaluation.version_tag == "1.2.0"
    assert evaluation.criteria == {"rules": [{"type": "contains", "value": "Paris"}]}


def test_categorical_labels_are_split(client_as) -> None:
    form = {
        **FORM,
        "score_type": "categorical",
        "threshold": "",
        "pass_labels": "correct, close ,",
        "criteria": "",
    }
    client_as("admin").post("/evaluations", form)
    evaluation = Evaluation.objects.get(name="faithfulness")
    assert evaluation.pass_labels == ["correct", "close"] and evaluation.threshold is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"threshold": "high"}, '"threshold" must be a number'),
        ({"threshold": "nan"}, '"threshold" must be a number'),
        ({"name": ""}, '"name"'),
        ({"score_type": "stars"}, '"score_type"'),
        ({"name": "n" * 129}, '"name"'),
        ({"criteria": "{rules"}, '"criteria" is not valid JSON'),
        ({"criteria": "[1, 2]"}, '"criteria"'),
    ],
)
def test_bad_input_is_shown_and_nothing_is_created(client_as, change, message) -> None:
    response = client_as("editor").post("/evaluations", {**FORM, **change})

    assert response.status_code == 422
    page = response.content.decode()
    assert "The evaluation was not created" in page
    assert message in page.replace("&quot;", '"')
    assert not Evaluation.objects.exists()
    assert 'value="support"' in page  # what was typed is kept


def test_duplicate_name_is_a_conflict_message(client_as) -> None:
    suite("faithfulness")
    response = client_as("editor").post("/evaluations", FORM)
    assert response.status_code == 409
    assert "already exists" in response.content.decode()
    assert Evaluation.objects.count() == 1


def test_viewer_cannot_create(client_as) -> None:
    response = client_as("viewer").post("/evaluations", FORM)
    assert response.status_code == 403
    assert not Evaluation.objects.exists()


def test_editor_sees_the_form(client_as) -> None:
    page = client_as("editor").get("/evaluations").content.decode()
    assert "New evaluation" in page and 'name="criteria"' in page


# --- one suite ------------------------------------------------------------------------------------


def test_evaluation_page_counts_charts_and_lists(client_as) -> None:
    evaluation = suite(threshold=0.5, version_tag="1.0.0")
    now = timezone.now()
    results(evaluation, [{"score": 0.9}, {"score": 0.8}], at=now - timedelta(days=3))
    results(
        evaluation, [{"score": 0.2, "label": "off-topic", "trace_id": "abc123def"}, {"label": "unscored"}]
    )
    results(evaluation, [{"score": 0.1}], at=now - timedelta(days=60))

    response = client_as("viewer").get(f"/evaluations/{evaluation.pk}")

    assert response.status_code == 200
    page = response.content.decode()
    context = response.context
    # 30 days: four results, three scored (avg 0.633), two pass, one fails, one has no verdict.
    assert context["totals"] == {
        "results": 4,
        "average": pytest.approx((0.9 + 0.8 + 0.2) / 3),
        "passed": 2,
        "failed": 1,
        "unjudged": 1,
        "pass_rate": pytest.approx(2 / 3),
    }
    assert 'data-card="failed">1<' in page and 'data-card="pass-rate">66.7 %<' in page
    names = [trace["name"] for trace in context["trend_figure"]["data"]]
    assert names == ["Max", "Min–max", "Average", "Threshold 0.5"]
    assert 'id="score-trend"' in page and "vendor/plotly.min.js" in page
    assert "abc123def" in page and "off-topic" in page and "not judged" in page
    trace_url = view._trace_url("abc123def")  # a link once the telemetry pages have a trace page
    assert trace_url is None or f'href="{trace_url}"' in page
    assert page.count("data-result=") == 5  # the table is not windowed
    # The 90-day window takes the old result in.
    wide = client_as("viewer").get(f"/evaluations/{evaluation.pk}", {"window": "90d"})
    assert wide.context["totals"]["results"] == 5 and wide.context["window"] == "90d"


def test_evaluation_page_unknown_window_falls_back(client_as) -> None:
    evaluation = suite()
    response = client_as("viewer").get(f"/evaluations/{evaluation.pk}", {"window": "1y"})
    assert response.status_code == 200 and response.context["window"] == "30d"


def test_evaluation_page_empty(client_as) -> None:
    evaluation = suite()
    page = client_as("viewer").get(f"/evaluations/{evaluation.pk}").content.decode()
    assert "No results in this window." in page
    assert "No results yet." in page
    assert "Fewer than two versions have results." in page
    assert "No runs yet." in page
    assert 'id="score-trend"' not in page


def test_evaluation_page_compares_versions(client_as) -> None:
    evaluation = suite(threshold=0.5)
    earlier = timezone.now() - timedelta(days=2)
    results(evaluation, [{"score": s, "version_tag": "1.0.0"} for s in (0.4, 0.5, 0.6, 0.7)], at=earlier)
    results(evaluation, [{"score": s, "version_tag": "1.1.0"} for s in (0.7, 0.8, 0.9, 0.95)])
    results(evaluation, [{"score": 0.3}])  # no version: not compared
    results(evaluation, [{"score": 0.9, "version_tag": "1.2.0"}])  # one result: no spread

    response = client_as("viewer").get(f"/evaluations/{evaluation.pk}")

    expected = selectors.compare(evaluation=evaluation, versions="1.0.0,1.1.0,1.2.0")
    assert response.context["comparison"] == expected
    page = response.content.decode()
    mean = expected["comparisons"][0]["mean"]
    assert f"{mean['difference']:+.3f}" in page
    assert f"{mean['ci_low']:+.3f} to {mean['ci_high']:+.3f}" in page
    assert f"{mean['p_value']:.3f}" in page
    assert 'data-version="1.0.0"' in page and 'data-version="1.1.0"' in page
    # A version with a single score has no interval or p-value, and the note says why.
    note = expected["comparisons"][1]["mean"]["note"]
    assert note == "needs at least 2 results per version (1.2.0 has 1)"
    assert note in page
    assert "better" not in page.lower() and "worse" not in page.lower()  # figures, not verdicts


def test_evaluation_page_compares_the_versions_asked(client_as) -> None:
    evaluation = suite()
    results(evaluation, [{"score": 0.5, "version_tag": tag} for tag in ("a", "b", "c")])
    client = client_as("viewer")

    asked = client.get(f"/evaluations/{evaluation.pk}", {"versions": "c,a"})
    one = client.get(f"/evaluations/{evaluation.pk}", {"versions": "c"})

    assert [v["version_tag"] for v in asked.context["comparison"]["versions"]] == ["c", "a"]
    assert one.status_code == 200
    assert "at least 2 different versions" in one.content.decode().replace("&quot;", '"')


def test_evaluation_results_page_newest_first(client_as, monkeypatch) -> None:
    monkeypatch.setattr(view, "RESULTS_PAGE", 4)
    evaluation = suite()
    start = timezone.now() - timedelta(hours=1)
    for index in range(6):
        results(evaluation, [{"score": index / 10}], at=start + timedelta(minutes=index))
    client = client_as("viewer")

    first = client.get(f"/evaluations/{evaluation.pk}")
    older = client.get(f"/evaluations/{evaluation.pk}{first.context['results'].next_url}")
    expired = client.get(f"/evaluations/{evaluation.pk}", {"cursor": "garbage"})

    assert [r["result"].score for r in first.context["result_rows"]] == [0.5, 0.4, 0.3, 0.2]
    assert [r["result"].score for r in older.context["result_rows"]] == [0.1, 0.0]
    assert older.context["results"].next_url is None
    assert expired.status_code == 200 and "That page link has expired." in expired.content.decode()


def test_evaluation_page_lists_runs_and_datasets(client_as) -> None:
    evaluation = suite(criteria={"rules": [{"type": "contains"}]})
    data = dataset(rows=2)
    services.eval_run_create(
        evaluation=evaluation, body={"dataset_id": data.pk, "outputs": ["answer 0", "nope"]}, actor=ACTOR
    )
    services.eval_run_create(evaluation=evaluation, body={}, actor=ACTOR)  # fails: nothing to score

    page = client_as("viewer").get(f"/evaluations/{evaluation.pk}").content.decode()

    assert page.count("data-run=") == 2
    assert "completed" in page and "failed" in page and "nothing to score" in page
    assert "1 / 2" in page  # one of the two rows passed
    assert f'href="/datasets/{data.pk}"' in page and "capitals" in page
    assert "eval run #" in page


def test_evaluation_page_queries_do_not_grow(client_as, django_assert_max_num_queries) -> None:
    client = client_as("viewer")
    evaluation = suite(threshold=0.5, criteria={"rules": [{"type": "length", "max": 5}]})
    results(evaluation, [{"score": 0.5, "version_tag": "1"}, {"score": 0.6, "version_tag": "2"}])
    services.eval_run_create(
        evaluation=evaluation, body={"dataset_id": dataset().pk, "outputs": ["a"] * 3}, actor=ACTOR
    )
    few = queries(client, f"/evaluations/{evaluation.pk}")
    now = timezone.now()
    for day in range(30):
        results(
            evaluation,
            [{"score": day / 30, "version_tag": str(day % 5), "trace_id": f"t{day}"}],
            at=now - timedelta(days=day),
        )
    for index in range(30):
        data = dataset(f"data-{index}", rows=1)
        services.eval_run_create(
            evaluation=evaluation, body={"dataset_id": data.pk, "outputs": ["short"]}, actor=ACTOR
        )
    many = queries(client, f"/evaluations/{evaluation.pk}")
    assert many == few
    with django_assert_max_num_queries(16):
        client.get(f"/evaluations/{evaluation.pk}")


# --- datasets -------------------------------------------------------------------------------------


def test_datasets_list(client_as) -> None:
    data = dataset(rows=12)
    dataset("geography", rows=3)
    evaluation = suite(criteria={"rules": []})
    services.eval_run_create(
        evaluation=evaluation, body={"dataset_id": data.pk, "outputs": ["x"] * 12}, actor=ACTOR
    )
    client = client_as("viewer")

    page = client.get("/datasets").content.decode()
    filtered = client.get("/datasets", {"q": "geo"}).content.decode()
    none = client.get("/datasets", {"q": "zzz"}).content.decode()

    assert f'<tr data-dataset="{data.pk}">' in page
    assert 'data-cell="rows">12<' in page and 'data-cell="runs">1<' in page
    assert ">geography<" in filtered and ">capitals<" not in filtered
    assert "No datasets match these filters." in none


def test_datasets_empty_and_pages(client_as, monkeypatch) -> None:
    client = client_as("viewer")
    assert "No datasets yet." in client.get("/datasets").content.decode()
    monkeypatch.setattr(view, "PAGE_SIZE", 2)
    for index in range(3):
        dataset(f"data-{index}", rows=1)
    first = client.get("/datasets").content.decode()
    second = client.get("/datasets", {"page": 2}).content.decode()
    assert "Page 1 of 2" in first and first.count("data-dataset=") == 2
    assert second.count("data-dataset=") == 1


def test_datasets_queries_do_not_grow(client_as, django_assert_max_num_queries) -> None:
    client = client_as("viewer")
    dataset("one")
    few = queries(client, "/datasets")
    evaluation = suite(criteria={"rules": []})
    for index in range(30):
        data = dataset(f"data-{index}", rows=1)
        services.eval_run_create(
            evaluation=evaluation, body={"dataset_id": data.pk, "outputs": ["x"]}, actor=ACTOR
        )
    assert queries(client, "/datasets") == few
    with django_assert_max_num_queries(8):
        client.get("/datasets")


def test_dataset_page_previews_rows_in_pages(client_as, monkeypatch) -> None:
    monkeypatch.setattr(view, "DATASET_ROWS_PAGE", 5)
    data = dataset(rows=12)
    client = client_as("viewer")

    first = client.get(f"/datasets/{data.pk}")
    last = client.get(f"/datasets/{data.pk}", {"page": 3})
    beyond = client.get(f"/datasets/{data.pk}", {"page": 99})
    junk = client.get(f"/datasets/{data.pk}", {"page": "x"})

    page = first.content.decode()
    assert first.status_code == 200 and "Page 1 of 3" in page
    assert [row["position"] for row in first.context["page"].rows] == [0, 1, 2, 3, 4]
    assert json.dumps({"question": "q0"}, indent=1).replace('"', "&quot;") in page
    assert "answer 0" in page
    assert [row["position"] for row in last.context["page"].rows] == [10, 11]
    assert beyond.context["page"].summary == "Page 3 of 3"
    assert junk.context["page"].summary == "Page 1 of 3"


def test_dataset_page_empty_and_runs(client_as) -> None:
    empty = services.dataset_create(workspace_id="acme", body={"name": "empty", "rows": []}, actor=ACTOR)
    evaluation = suite(criteria={"rules": []})
    services.eval_run_create(evaluation=evaluation, body={"dataset_id": empty.pk}, actor=ACTOR)

    page = client_as("viewer").get(f"/datasets/{empty.pk}").content.decode()

    assert "This dataset has no rows." in page
    assert "the dataset has no rows" in page  # the failed run's reason
    assert f'href="/evaluations/{evaluation.pk}"' in page


def test_dataset_page_queries_are_fixed(client_as, django_assert_max_num_queries) -> None:
    data = dataset(rows=60)
    evaluation = suite(criteria={"rules": []})
    for _ in range(25):
        services.eval_run_create(
            evaluation=evaluation, body={"dataset_id": data.pk, "outputs": ["x"] * 60}, actor=ACTOR
        )
    client = client_as("viewer")
    with django_assert_max_num_queries(8):
        response = client.get(f"/datasets/{data.pk}")
    assert len(response.context["runs"]) == 20
