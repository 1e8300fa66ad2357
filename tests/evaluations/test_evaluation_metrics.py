"""``/v1/metrics/evaluations`` (upstream §2.12's shape) and activity's ``total_evaluations``, from
results added through the API under a patched clock and checked against figures computed here.

Metrics windows are rolling and cover whole UTC hours: from the hour holding ``now - days``
through now (telemetry.metrics' docstring), so a result at 12:05 on the window's first day is in
and one at 11:59 is out.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from tests.evaluations.support import NOW, add_results, clock, create_suite, ok

DAY_FIELDS = {"date", "avg_score", "result_count", "min_score", "max_score"}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


# (suite name, when, score or None); suites "accuracy" and "tone" are numeric, "grade" categorical.
POSTED = [
    ("accuracy", at(10, 9), 0.9),
    ("accuracy", at(10, 11, 59), 0.5),
    ("accuracy", at(9, 23, 59), 0.7),
    ("accuracy", at(9, 0, 0), 0.1),
    ("accuracy", at(6, 6), 0.4),
    ("accuracy", at(3, 12, 5), 0.8),  # the 7-day window's first hour (12:00)
    ("accuracy", at(3, 11, 59), 0.3),  # the hour before it: outside 7d
    ("accuracy", NOW - timedelta(days=20), 0.6),
    ("accuracy", NOW - timedelta(days=60), 0.2),
    ("accuracy", NOW - timedelta(days=120), 0.95),
    ("tone", at(10, 1), 1.0),
    ("tone", at(10, 2), 3.0),
    ("tone", at(8, 2), -1.0),
    ("grade", at(9, 4), None),
    ("grade", at(9, 5), None),
]


@pytest.fixture
def suites(api, key) -> dict[str, int]:
    ids = {
        "accuracy": create_suite(api, key, "accuracy", prompt_name="qa")["id"],
        "tone": create_suite(api, key, "tone", prompt_name="support-reply")["id"],
        "grade": create_suite(api, key, "grade", prompt_name="qa", score_type="categorical")["id"],
        "idle": create_suite(api, key, "idle", prompt_name="qa")["id"],
    }
    for name, moment, score in POSTED:
        with clock(moment):
            add_results(api, key, name, {"label": "A"} if score is None else {"score": score})
    with clock(NOW - timedelta(days=200)):
        add_results(api, key, "idle", {"score": 0.5})  # outside every window
    return ids


def in_window(moment: datetime, days: int) -> bool:
    first_hour = (NOW - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    return first_hour <= moment <= NOW


def expected_trends(ids: dict[str, int], days: int) -> list[dict]:
    by_suite: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for name, moment, score in POSTED:
        if in_window(moment, days):
            by_suite[name][moment.date().isoformat()].append(score)
    prompts = {"accuracy": "qa", "tone": "support-reply", "grade": "qa"}
    trends = []
    for name in sorted(by_suite, key=ids.__getitem__):
        trend = []
        for day, values in sorted(by_suite[name].items()):
            scores = [s for s in values if s is not None]
            trend.append(
                {
                    "date": day,
                    "avg_score": pytest.approx(statistics.mean(scores)) if scores else None,
                    "result_count": len(values),
                    "min_score": min(scores) if scores else None,
                    "max_score": max(scores) if scores else None,
                }
            )
        trends.append(
            {"evaluation_id": ids[name], "name": name, "prompt_name": prompts[name], "trend": trend}
        )
    return trends


def metrics(api, key, endpoint: str, query: str = "") -> dict:
    with clock(NOW):
        return ok(api.get(f"/v1/metrics/{endpoint}{query}", key=key))


@pytest.mark.parametrize(("window", "days"), [("7d", 7), ("30d", 30), ("90d", 90)])
def test_evaluation_trends_per_window(api, key, suites, window, days):
    body = metrics(api, key, "evaluations", f"?window={window}")
    assert set(body) == {"window", "evaluations"}
    assert body["window"] == window
    assert body["evaluations"] == expected_trends(suites, days)
    assert all(set(day) == DAY_FIELDS for e in body["evaluations"] for day in e["trend"])
    assert suites["idle"] not in [e["evaluation_id"] for e in body["evaluations"]]


def test_the_seven_day_figures_by_hand(api, key, suites):
    body = metrics(api, key, "evaluations", "?window=7d")
    accuracy, tone, grade = body["evaluations"]
    assert accuracy["trend"] == [
        {"date": "2025-03-03", "avg_score": 0.8, "result_count": 1, "min_score": 0.8, "max_score": 0.8},
        {"date": "2025-03-06", "avg_score": 0.4, "result_count": 1, "min_score": 0.4, "max_score": 0.4},
        {
            "date": "2025-03-09",
            "avg_score": pytest.approx(0.4),
            "result_count": 2,
            "min_score": 0.1,
            "max_score": 0.7,
        },
        {
            "date": "2025-03-10",
            "avg_score": pytest.approx(0.7),
            "result_count": 2,
            "min_score": 0.5,
            "max_score": 0.9,
        },
    ]
    assert tone["trend"] == [
        {"date": "2025-03-08", "avg_score": -1.0, "result_count": 1, "min_score": -1.0, "max_score": -1.0},
        {"date": "2025-03-10", "avg_score": 2.0, "result_count": 2, "min_score": 1.0, "max_score": 3.0},
    ]
    assert grade["trend"] == [
        {"date": "2025-03-09", "avg_score": None, "result_count": 2, "min_score": None, "max_score": None}
    ]


def test_the_default_window_is_thirty_days(api, key, suites):
    assert metrics(api, key, "evaluations") == metrics(api, key, "evaluations", "?window=30d")


def test_an_evaluation_id_filter(api, key, suites):
    body = metrics(api, key, "evaluations", f"?window=90d&evaluation_id={suites['tone']}")
    assert body["evaluations"] == [e for e in expected_trends(suites, 90) if e["name"] == "tone"]
    assert metrics(api, key, "evaluations", f"?evaluation_id={suites['idle']}")["evaluations"] == []
    assert metrics(api, key, "evaluations", "?evaluation_id=987654")["evaluations"] == []


@pytest.mark.parametrize("window", ["1y", "180d", "7"])
def test_a_bad_window_is_upstreams_400(api, key, window):
    response = api.get(f"/v1/metrics/evaluations?window={window}", key=key)
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid window parameter. Must be one of: 7d, 30d, 90d"


@pytest.mark.parametrize(("window", "days"), [("7d", 7), ("30d", 30), ("90d", 90)])
def test_activity_counts_the_windows_results(api, key, suites, window, days):
    summary = metrics(api, key, "activity", f"?window={window}")["summary"]
    assert summary["total_evaluations"] == sum(1 for _, moment, _ in POSTED if in_window(moment, days))
    assert summary["total_evaluations"] == {"7d": 11, "30d": 13, "90d": 14}[window]


def test_runs_and_scored_outputs_count_as_evaluations(api, key):
    create_suite(api, key, "rules", criteria={"rules": [{"type": "contains", "value": "Paris"}]})
    with clock(NOW):
        ok(api.post("/v1/evaluations/rules/run", key=key, json={"outputs": ["Paris", "Rome", "Nice"]}), 201)
        ok(api.post("/v1/evaluations/rules/score", key=key, json={"outputs": [{"output": "Paris"}]}), 201)
        # A failed run stores no results.
        ok(api.post("/v1/evaluations/rules/run", key=key, json={"outputs": []}), 201)
    assert metrics(api, key, "activity", "?window=7d")["summary"]["total_evaluations"] == 4
    (suite,) = metrics(api, key, "evaluations", "?window=7d")["evaluations"]
    assert suite["trend"] == [
        {"date": "2025-03-10", "avg_score": 0.5, "result_count": 4, "min_score": 0.0, "max_score": 1.0}
    ]


def test_a_deleted_suite_leaves_the_metrics(api, key, suites):
    assert api.delete("/v1/evaluations/accuracy", key=key).status_code == 204
    assert [e["name"] for e in metrics(api, key, "evaluations", "?window=90d")["evaluations"]] == [
        "tone",
        "grade",
    ]
    assert metrics(api, key, "activity", "?window=90d")["summary"]["total_evaluations"] == 5
