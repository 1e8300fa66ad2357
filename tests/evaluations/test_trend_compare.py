"""``/v1/evaluations/{id}/trend`` and ``/compare``, checked against figures computed here.

Results are placed in the past by running the requests that add them under a patched clock (the
hourly rollups the trend reads are written at ingest); the trend is read under the same fixed
clock, so window edges and bucket labels are exact. Expected trends come from the results this
module made, bucketed by UTC date or hour here; the comparison's statistics from ``statistics``
and, for the t distribution, from reference values computed once with SciPy (stated inline).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.evaluations.support import EVALUATIONS, NOW, add_results, clock, create_suite, fields, ok

TREND = f"{EVALUATIONS}/accuracy-check/trend"
COMPARE = f"{EVALUATIONS}/accuracy-check/compare"
THRESHOLD = 0.5


@dataclass
class Posted:
    at: datetime
    score: float | None
    version: str

    @property
    def passed(self) -> bool | None:
        return None if self.score is None else self.score >= THRESHOLD


@pytest.fixture
def suite(api, key) -> dict:
    return create_suite(api, key, threshold=THRESHOLD, version_tag="1.0")


def post(api, key, results: list[Posted]) -> None:
    """Each result through the API, stamped with its own time."""
    for r in results:
        with clock(r.at):
            body = (
                {"version_tag": r.version}
                if r.score is None
                else {"score": r.score, "version_tag": r.version}
            )
            add_results(api, key, "accuracy-check", body)


def read(api, key, path: str, now: datetime = NOW) -> dict:
    with clock(now):
        return ok(api.get(path, key=key))


def expected_point(label: str, results: list[Posted]) -> dict:
    if not results:
        return {"bucket": label, "count": 0, "avg": None, "min": None, "max": None, "pass_rate": None}
    scores = [r.score for r in results if r.score is not None]
    judged = [r.passed for r in results if r.passed is not None]
    return {
        "bucket": label,
        "count": len(results),
        "avg": statistics.mean(scores) if scores else None,
        "min": min(scores) if scores else None,
        "max": max(scores) if scores else None,
        "pass_rate": sum(judged) / len(judged) if judged else None,
    }


def expected_days(results: list[Posted], first: datetime, last: datetime) -> list[dict]:
    days = []
    day = first.astimezone(UTC).date()
    while day <= last.astimezone(UTC).date():
        days.append(
            expected_point(day.isoformat(), [r for r in results if r.at.astimezone(UTC).date() == day])
        )
        day += timedelta(days=1)
    return days


def approx_points(points: list[dict]) -> list[dict]:
    return [{k: pytest.approx(v) if isinstance(v, float) else v for k, v in p.items()} for p in points]


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, second, tzinfo=UTC)


# Around NOW (2025-03-10 12:30:15 UTC): today, the UTC midnight edge, earlier this week, the
# start of the 7-day window (2025-03-03 12:30:15), and older results inside 30d, 90d and none.
RESULTS = [
    Posted(at(10, 10, 15), 0.9, "1.0"),
    Posted(at(10, 10, 45), 0.4, "1.0"),
    Posted(at(10, 0, 0, 0), 0.3, "2.0"),
    Posted(at(9, 23, 59, 59), 0.8, "2.0"),
    Posted(at(9, 23, 0, 0), 0.55, "1.0"),
    Posted(at(7, 5, 10), 0.6, "1.0"),
    Posted(at(7, 5, 20), 0.7, "2.0"),
    Posted(at(7, 5, 30), None, "1.0"),  # counted, not scored, not judged
    Posted(at(3, 12, 40), 0.2, "1.0"),  # inside the window's first hour
    Posted(at(3, 12, 5), 0.25, "1.0"),  # the window's first hour (12:00), before its nominal start
    Posted(at(3, 8, 0), 0.35, "2.0"),  # the window's first day, not its first hour
    Posted(at(2, 23, 0), 1.0, "1.0"),  # before the 7-day window
    Posted(NOW - timedelta(days=18), 0.45, "1.0"),
    Posted(NOW - timedelta(days=80), 0.65, "2.0"),
    Posted(NOW - timedelta(days=95), 0.05, "1.0"),
]


@pytest.fixture
def posted(api, key, suite) -> list[Posted]:
    post(api, key, RESULTS)
    return RESULTS


# --- Trend ---


def test_a_week_by_day(api, key, suite, posted):
    body = read(api, key, f"{TREND}?window=7d&bucket=day")
    start = NOW - timedelta(days=7)
    assert {k: v for k, v in body.items() if k != "points"} == {
        "evaluation_id": suite["id"],
        "name": "accuracy-check",
        "window": "7d",
        "bucket": "day",
        "version": None,
        "start": int(start.timestamp()),
        "end": int(NOW.timestamp()),
        "threshold": THRESHOLD,
    }
    # Whole UTC days, from the window's first (2025-03-03) to today: eight buckets.
    assert [p["bucket"] for p in body["points"]] == [f"2025-03-{d:02}" for d in range(3, 11)]
    assert body["points"] == approx_points(expected_days(posted, start, NOW))
    by_day = {p["bucket"]: p for p in body["points"]}
    assert by_day["2025-03-10"]["count"] == 3  # 00:00:00 belongs to the new day
    assert by_day["2025-03-09"]["count"] == 2  # 23:59:59 to the old one
    assert by_day["2025-03-07"] == {
        "bucket": "2025-03-07",
        "count": 3,
        "avg": pytest.approx(0.65),
        "min": 0.6,
        "max": 0.7,
        "pass_rate": 1.0,
    }
    for empty in ("2025-03-04", "2025-03-05", "2025-03-06", "2025-03-08"):
        assert by_day[empty] == {
            "bucket": empty,
            "count": 0,
            "avg": None,
            "min": None,
            "max": None,
            "pass_rate": None,
        }


def test_a_week_by_hour(api, key, suite, posted):
    body = read(api, key, f"{TREND}?window=7d&bucket=hour")
    first = datetime(2025, 3, 3, 12, tzinfo=UTC)  # the hour holding the window's start
    hours = [first + timedelta(hours=i) for i in range(7 * 24 + 1)]
    assert [p["bucket"] for p in body["points"]] == [h.strftime("%Y-%m-%dT%H:00:00Z") for h in hours]
    expected = [
        expected_point(
            h.strftime("%Y-%m-%dT%H:00:00Z"),
            [r for r in posted if h <= r.at < h + timedelta(hours=1)],
        )
        for h in hours
    ]
    assert body["points"] == approx_points(expected)
    by_hour = {p["bucket"]: p for p in body["points"]}
    assert by_hour["2025-03-03T12:00:00Z"]["count"] == 2
    assert by_hour["2025-03-09T23:00:00Z"]["count"] == 2
    assert by_hour["2025-03-10T00:00:00Z"]["count"] == 1
    assert (
        by_hour["2025-03-10T10:00:00Z"]
        == approx_points([expected_point("2025-03-10T10:00:00Z", posted[:2])])[0]
    )
    assert by_hour["2025-03-10T12:00:00Z"]["count"] == 0
    assert sum(p["count"] for p in body["points"]) == 10
    assert sum(1 for p in body["points"] if p["count"] == 0) == len(hours) - 5


@pytest.mark.parametrize(("window", "days"), [("30d", 30), ("90d", 90)])
def test_longer_windows(api, key, suite, posted, window, days):
    body = read(api, key, f"{TREND}?window={window}")
    start = NOW - timedelta(days=days)
    assert body["window"] == window
    assert body["bucket"] == "day"
    assert len(body["points"]) == days + 1
    assert body["points"] == approx_points(expected_days(posted, start, NOW))
    in_window = [r for r in posted if r.at.date() >= start.date()]
    assert sum(p["count"] for p in body["points"]) == len(in_window)


def test_the_default_is_thirty_days_by_day(api, key, suite, posted):
    default = read(api, key, TREND)
    assert (default["window"], default["bucket"]) == ("30d", "day")
    assert default == read(api, key, f"{TREND}?window=30d&bucket=day")


def test_a_version_filter(api, key, suite, posted):
    body = read(api, key, f"{TREND}?window=7d&version=2.0")
    assert body["version"] == "2.0"
    start = NOW - timedelta(days=7)
    assert body["points"] == approx_points(
        expected_days([r for r in posted if r.version == "2.0"], start, NOW)
    )
    assert sum(p["count"] for p in body["points"]) == 4
    unknown = read(api, key, f"{TREND}?window=7d&version=9.9")
    assert all(p["count"] == 0 for p in unknown["points"])
    # An empty version means no filter.
    assert (
        read(api, key, f"{TREND}?window=7d&version=")["points"]
        == read(api, key, f"{TREND}?window=7d")["points"]
    )


def test_buckets_are_utc_days_whatever_the_clocks_zone(api, key, suite):
    tokyo = timezone(timedelta(hours=9))
    # 08:30 on the 10th in Tokyo is 23:30 on the 9th in UTC.
    post(api, key, [Posted(datetime(2025, 3, 10, 8, 30, tzinfo=tokyo), 0.75, "1.0")])
    body = read(api, key, f"{TREND}?window=7d", now=NOW.astimezone(tokyo))
    assert body["points"][-1]["bucket"] == "2025-03-10"
    assert [p["bucket"] for p in body["points"] if p["count"]] == ["2025-03-09"]
    hourly = read(api, key, f"{TREND}?window=7d&bucket=hour", now=NOW.astimezone(tokyo))
    assert [p["bucket"] for p in hourly["points"] if p["count"]] == ["2025-03-09T23:00:00Z"]


def test_a_trend_without_results_has_every_bucket_empty(api, key, suite):
    body = read(api, key, f"{TREND}?window=7d&bucket=day")
    assert len(body["points"]) == 8
    assert all(p["count"] == 0 and p["avg"] is None and p["pass_rate"] is None for p in body["points"])


def test_a_suite_without_a_threshold_has_no_pass_rate(api, key):
    create_suite(api, key, "plain")
    with clock(NOW):
        add_results(api, key, "plain", [{"score": 0.2}, {"score": 0.4, "passed": True}])
    body = read(api, key, f"{EVALUATIONS}/plain/trend?window=7d")
    assert body["threshold"] is None
    (point,) = [p for p in body["points"] if p["count"]]
    assert (point["count"], point["avg"], point["pass_rate"]) == (2, pytest.approx(0.3), 1.0)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("window=1y", '"window" must be one of [7d, 30d, 90d]'),
        ("window=7", '"window" must be one of [7d, 30d, 90d]'),
        ("bucket=week", '"bucket" must be one of [day, hour]'),
        ("window=180d&bucket=minute", '"window" must be one of [7d, 30d, 90d]'),
    ],
)
def test_a_bad_window_or_bucket_is_a_422(api, key, suite, query, message):
    assert message in fields(api.get(f"{TREND}?{query}", key=key))


# --- Compare ---

# Scores of three prompt versions, and a few results without a score (counted, never judged).
A = [0.62, 0.71, 0.55, 0.80, 0.67, 0.74, 0.59, 0.70]
B = [0.78, 0.85, 0.69, 0.91, 0.82, 0.76, 0.88, 0.80, 0.84, 0.73]
C = [0.60, 0.95, 0.40, 0.99, 0.75]
PASS_AT = 0.7
# Reference values from SciPy 1.17.1, scipy.stats.ttest_ind(candidate, A, equal_var=False):
# (p-value, Welch df, lower and upper bound of its 95 % confidence_interval()).
SCIPY = {
    "2.0": (0.0025640479395448146, 13.57250838372561, 0.05558904981354766, 0.21141095018645223),
    "3.0": (0.5919813113708371, 4.568520516643363, -0.23545561233095502, 0.3664556123309546),
}


@pytest.fixture
def versions(api, key) -> dict[str, list[float]]:
    create_suite(api, key, threshold=PASS_AT)
    scores = {"1.0": A, "2.0": B, "3.0": C}
    for index, (version, values) in enumerate(scores.items()):
        # Spread over time, some long ago: a comparison is over all of a version's results.
        for i, score in enumerate(values):
            with clock(NOW - timedelta(days=200 * (i % 2), hours=index + i)):
                add_results(api, key, "accuracy-check", {"score": score, "version_tag": version})
    with clock(NOW):
        add_results(api, key, "accuracy-check", [{"version_tag": "1.0"}, {"version_tag": "1.0"}])
    return scores


def welch_expected(base: list[float], cand: list[float]) -> dict:
    var_b, var_c = statistics.variance(base) / len(base), statistics.variance(cand) / len(cand)
    se = math.sqrt(var_b + var_c)
    df = (var_b + var_c) ** 2 / (var_b**2 / (len(base) - 1) + var_c**2 / (len(cand) - 1))
    return {"difference": statistics.mean(cand) - statistics.mean(base), "se": se, "df": df}


def proportions_expected(passed_b: int, n_b: int, passed_c: int, n_c: int) -> dict:
    rate_b, rate_c = passed_b / n_b, passed_c / n_c
    pooled = (passed_b + passed_c) / (n_b + n_c)
    z = (rate_c - rate_b) / math.sqrt(pooled * (1 - pooled) * (1 / n_b + 1 / n_c))
    normal = statistics.NormalDist()
    half = normal.inv_cdf(0.975) * math.sqrt(rate_b * (1 - rate_b) / n_b + rate_c * (1 - rate_c) / n_c)
    diff = rate_c - rate_b
    return {
        "difference": diff,
        "p_value": 2 * (1 - normal.cdf(abs(z))),
        "ci": (max(-1.0, diff - half), min(1.0, diff + half)),
    }


def test_compare_three_versions(api, key, versions):
    body = read(api, key, f"{COMPARE}?versions=1.0,2.0,3.0")
    assert set(body) == {"evaluation_id", "name", "versions", "comparisons"}
    assert body["name"] == "accuracy-check"

    summaries = {v["version_tag"]: v for v in body["versions"]}
    assert list(summaries) == ["1.0", "2.0", "3.0"]
    for tag, scores in versions.items():
        got = summaries[tag]
        passed = sum(1 for s in scores if s >= PASS_AT)
        assert got["results"] == len(scores) + (2 if tag == "1.0" else 0)
        assert got["n"] == len(scores)
        assert got["mean"] == pytest.approx(statistics.mean(scores), rel=1e-12)
        assert got["stddev"] == pytest.approx(statistics.stdev(scores), rel=1e-9)
        assert (got["min"], got["max"]) == (min(scores), max(scores))
        assert (got["passed"], got["judged"]) == (passed, len(scores))
        assert got["pass_rate"] == pytest.approx(passed / len(scores))
    assert (summaries["1.0"]["passed"], summaries["2.0"]["passed"], summaries["3.0"]["passed"]) == (4, 9, 3)

    assert [(c["baseline"], c["candidate"]) for c in body["comparisons"]] == [("1.0", "2.0"), ("1.0", "3.0")]
    for comparison in body["comparisons"]:
        tag = comparison["candidate"]
        mean = comparison["mean"]
        expected = welch_expected(A, versions[tag])
        p_value, df, ci_low, ci_high = SCIPY[tag]
        assert mean["metric"] == "mean"
        assert mean["test"] == "welch_t"
        assert mean["difference"] == pytest.approx(expected["difference"], rel=1e-9)
        assert mean["df"] == pytest.approx(expected["df"], rel=1e-9)
        assert mean["df"] == pytest.approx(df, rel=1e-9)
        assert mean["p_value"] == pytest.approx(p_value, rel=1e-6)
        assert (mean["ci_low"], mean["ci_high"]) == (
            pytest.approx(ci_low, rel=1e-6),
            pytest.approx(ci_high, rel=1e-6),
        )
        # The interval is centred on the difference, SE times the same t quantile on each side.
        half = (mean["ci_high"] - mean["ci_low"]) / 2
        assert (mean["ci_low"] + mean["ci_high"]) / 2 == pytest.approx(expected["difference"], rel=1e-9)
        assert half / expected["se"] == pytest.approx(
            2.1511417195409477 if tag == "2.0" else 2.645350200005364
        )
        assert mean["note"] is None

        rate = comparison["pass_rate"]
        passed_c = sum(1 for s in versions[tag] if s >= PASS_AT)
        expected_rate = proportions_expected(4, len(A), passed_c, len(versions[tag]))
        assert rate["metric"] == "pass_rate"
        assert rate["test"] == "two_proportion_z"
        assert rate["df"] is None
        assert rate["difference"] == pytest.approx(expected_rate["difference"])
        assert rate["p_value"] == pytest.approx(expected_rate["p_value"], rel=1e-9)
        assert (rate["ci_low"], rate["ci_high"]) == pytest.approx(expected_rate["ci"])
        assert rate["note"] is None
    # 2.0 is clearly better than 1.0; 3.0 cannot be told apart from it.
    assert body["comparisons"][0]["mean"]["p_value"] < 0.01
    assert body["comparisons"][1]["mean"]["p_value"] > 0.5


def test_the_first_version_named_is_the_baseline(api, key, versions):
    body = read(api, key, f"{COMPARE}?versions=2.0, 1.0")
    (comparison,) = body["comparisons"]
    assert (comparison["baseline"], comparison["candidate"]) == ("2.0", "1.0")
    assert comparison["mean"]["difference"] == pytest.approx(statistics.mean(A) - statistics.mean(B))
    assert comparison["mean"]["p_value"] == pytest.approx(SCIPY["2.0"][0], rel=1e-6)
    assert comparison["mean"]["ci_low"] == pytest.approx(-SCIPY["2.0"][3], rel=1e-6)


def test_a_version_without_results(api, key, versions):
    body = read(api, key, f"{COMPARE}?versions=1.0,9.9")
    missing = body["versions"][1]
    assert missing == {
        "version_tag": "9.9",
        "results": 0,
        "n": 0,
        "mean": None,
        "stddev": None,
        "min": None,
        "max": None,
        "pass_rate": None,
        "passed": 0,
        "judged": 0,
    }
    (comparison,) = body["comparisons"]
    assert comparison["mean"]["difference"] is None
    assert comparison["mean"]["p_value"] is None
    assert "needs at least 2 results per version" in comparison["mean"]["note"]
    assert comparison["pass_rate"]["difference"] is None
    assert comparison["pass_rate"]["note"] == "no pass/fail verdicts for 9.9"


def test_a_version_with_one_result_has_a_difference_and_no_test(api, key, versions):
    with clock(NOW):
        add_results(api, key, "accuracy-check", {"score": 0.95, "version_tag": "4.0"})
    mean = read(api, key, f"{COMPARE}?versions=1.0,4.0")["comparisons"][0]["mean"]
    assert mean["difference"] == pytest.approx(0.95 - statistics.mean(A))
    assert (mean["p_value"], mean["ci_low"], mean["df"]) == (None, None, None)
    assert mean["note"] == "needs at least 2 results per version (4.0 has 1)"


def test_results_from_runs_and_scoring_are_compared_too(api, key):
    create_suite(api, key, criteria={"rules": [{"type": "contains", "value": "Paris"}]})
    with clock(NOW):
        ok(
            api.post(
                f"{EVALUATIONS}/accuracy-check/run",
                key=key,
                json={"outputs": ["Paris", "Rome"], "version_tag": "a"},
            ),
            201,
        )
        ok(
            api.post(
                f"{EVALUATIONS}/accuracy-check/score",
                key=key,
                json={"outputs": [{"output": "Paris"}] * 3, "version_tag": "b"},
            ),
            201,
        )
    body = read(api, key, f"{COMPARE}?versions=a,b")
    assert [(v["n"], v["mean"], v["passed"], v["judged"]) for v in body["versions"]] == [
        (2, 0.5, 1, 2),
        (3, 1.0, 3, 3),
    ]


@pytest.mark.parametrize(
    "query",
    ["", "?versions=", "?versions=1.0", "?versions=1.0,1.0", "?versions=1.0,,%20", "?versions=,"],
)
def test_fewer_than_two_versions_is_a_422(api, key, suite, query):
    assert fields(api.get(f"{COMPARE}{query}", key=key)) == [
        '"versions" must name at least 2 different versions, comma-separated'
    ]


def test_more_than_ten_versions_is_a_422(api, key, suite):
    query = ",".join(f"v{i}" for i in range(11))
    assert fields(api.get(f"{COMPARE}?versions={query}", key=key)) == [
        '"versions" must name at most 10 versions'
    ]
    assert len(ok(api.get(f"{COMPARE}?versions={query[: query.rindex(',')]}", key=key))["versions"]) == 10
