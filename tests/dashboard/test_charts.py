"""The Plotly figures are pure functions of plain data: checked here without a browser."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from dashboard import charts

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def span(span_id: str, parent: str = "", start_ms: float | None = 0, end_ms: float | None = 10, status="ok"):
    return SimpleNamespace(
        span_id=span_id,
        parent_id=parent,
        name=f"step {span_id}",
        status=status,
        start_time=None if start_ms is None else T0 + timedelta(milliseconds=start_ms),
        end_time=None if end_ms is None else T0 + timedelta(milliseconds=end_ms),
    )


def day(date: str, cost: float, p50: float | None, p95: float | None) -> dict:
    return {"date": date, "total_cost_usd": cost, "p50_latency_ms": p50, "p95_latency_ms": p95}


def test_cost_and_latency_share_one_chart_on_two_axes() -> None:
    figure = charts.cost_latency([day("2026-11-26", 1.5, 200, 900), day("2026-11-27", 0.0, None, None)])
    cost, p50, p95 = figure["data"]
    assert cost["type"] == "bar" and cost["y"] == [1.5, 0.0] and "yaxis" not in cost
    assert p50["yaxis"] == p95["yaxis"] == "y2"
    assert p50["y"] == [200, None] and p95["y"] == [900, None]  # a day without logs breaks the line
    assert figure["layout"]["yaxis2"]["overlaying"] == "y"
    json.dumps(figure, allow_nan=False)  # what json_script will emit


def test_tokens_by_prompt_adds_up_versions_and_keeps_the_top_ten_largest_on_top() -> None:
    rows = [{"prompt_name": f"p{i}", "tokens_in": i * 10, "tokens_out": i} for i in range(1, 13)]
    rows.append({"prompt_name": "p1", "tokens_in": 500.0, "tokens_out": 5})  # SQLite's TOTAL is a float
    rows.append({"prompt_name": "", "tokens_in": 1, "tokens_out": None})
    tokens_in, tokens_out = charts.tokens_by_prompt(rows)["data"]
    assert len(tokens_in["y"]) == 10
    # Plotly draws the first category at the bottom: the largest comes last.
    assert tokens_in["y"][-1] == "p1" and tokens_in["x"][-1] == 510 and tokens_out["x"][-1] == 6
    assert tokens_in["y"][-2] == "p12" and tokens_in["y"][0] == "p4"
    assert "(no prompt)" not in tokens_in["y"]


def test_the_score_trend_has_a_band_an_average_and_the_threshold() -> None:
    points = [
        {"bucket": "2026-11-26", "avg": 0.7, "min": 0.5, "max": 0.9},
        {"bucket": "2026-11-27", "avg": None, "min": None, "max": None},
    ]
    upper, lower, average, threshold = charts.score_trend(points, threshold=0.75)["data"]
    assert upper["y"] == [0.9, None] and lower["y"] == [0.5, None]
    assert lower["fill"] == "tonexty"  # the band fills between the max and the min lines
    assert average["y"] == [0.7, None]
    assert threshold["y"] == [0.75, 0.75] and threshold["x"] == ["2026-11-26", "2026-11-27"]
    assert len(charts.score_trend(points, threshold=None)["data"]) == 3


def test_spans_are_ordered_depth_first_with_siblings_by_start() -> None:
    spans = [
        span("c2", "root", 30, 40),
        span("root", "", 0, 100),
        span("c1", "root", 10, 20),
        span("g1", "c1", 12, 15),
        span("orphan", "missing", 50, 60),
    ]
    order = [(s.span_id, depth) for s, depth in charts.ordered_spans(spans)]
    assert order == [("root", 0), ("c1", 1), ("g1", 2), ("c2", 1), ("orphan", 0)]


def test_a_parent_cycle_loses_no_span() -> None:
    spans = [span("a", "b"), span("b", "a"), span("self", "self")]
    ordered = charts.ordered_spans(spans)
    assert sorted(s.span_id for s, _ in ordered) == ["a", "b", "self"]


def test_the_waterfall_places_each_span_on_the_time_axis() -> None:
    spans = [
        span("root", "", 0, 100),
        span("child", "root", 25, 75, status="error"),
        span("open", "root", 80, None),
        span("unstarted", "root", None, None),
    ]
    figure = charts.span_waterfall(spans)
    (bars,) = figure["data"]
    assert bars["base"] == [0, 25, 80] and bars["x"] == [100, 50, 0]
    assert bars["marker"]["color"][1] == charts.STATUS_COLOURS["error"]
    assert [row[0] for row in bars["customdata"]] == ["root", "child", "open"]
    assert figure["layout"]["yaxis"]["ticktext"][:2] == ["step root", "└ step child"]
    deep = charts.span_waterfall([span("a"), span("b", "a"), span("c", "b")])
    assert deep["layout"]["yaxis"]["ticktext"] == ["step a", "└ step b", "· └ step c"]
    assert figure["onclick"] == "select-span"
