"""Plotly figures for the dashboard, built by pure functions from plain data.

Each function returns a figure as a dict (``data`` and ``layout``, Plotly's JSON schema) that the page
hands to plotly.js with ``json_script``; the browser only draws. No Plotly Python import: building a
dict is microseconds, importing plotly.graph_objects is a second and 100 MB.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

# Status colours that read on light and dark backgrounds alike.
STATUS_COLOURS = {"ok": "#2e9e5b", "error": "#d9453b", "unset": "#8a94a3"}
COST_COLOUR = "#2f6fdf"
LATENCY_COLOUR = "#e08a1e"
TOKENS_IN_COLOUR = "#4f7fe8"
TOKENS_OUT_COLOUR = "#9b6ee0"
SCORE_COLOUR = "#2f6fdf"
BAND_FILL = "rgba(47, 111, 223, 0.18)"
THRESHOLD_COLOUR = "#d9453b"

_MARGIN = {"l": 56, "r": 56, "t": 36, "b": 40}


def _layout(**extra: Any) -> dict[str, Any]:
    return {
        "margin": dict(_MARGIN),
        "hovermode": "x unified",
        # Above the plot: below it, the legend collides with the x axis title.
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        "height": 320,
        **extra,
    }


def cost_latency(daily: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Cost per day (bars, left axis) and p50/p95 latency (lines, right axis), from the metrics
    time series' ``daily`` rows. Days without logs have no latency: the lines break there."""
    dates = [row["date"] for row in daily]
    return {
        "data": [
            {
                "type": "bar",
                "name": "Cost (USD)",
                "x": dates,
                "y": [row["total_cost_usd"] for row in daily],
                "marker": {"color": COST_COLOUR},
                "hovertemplate": "$%{y:.4f}",
            },
            *(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"{label} latency (ms)",
                    "x": dates,
                    "y": [row[key] for row in daily],
                    "yaxis": "y2",
                    "line": {"color": LATENCY_COLOUR, "dash": dash},
                    "connectgaps": False,
                    "hovertemplate": "%{y:.0f} ms",
                }
                for label, key, dash in (("p50", "p50_latency_ms", "solid"), ("p95", "p95_latency_ms", "dot"))
            ),
        ],
        "layout": _layout(
            xaxis={"type": "date"},
            yaxis={"title": {"text": "Cost (USD)"}, "rangemode": "tozero"},
            yaxis2={
                "title": {"text": "Latency (ms)"},
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
            },
        ),
    }


def tokens_by_prompt(prompts: Sequence[dict[str, Any]], *, top: int = 10) -> dict[str, Any]:
    """Tokens in and out per prompt, the ``top`` largest, as stacked bars, from rows of
    ``prompt_name``, ``tokens_in`` and ``tokens_out`` (rows of one prompt's versions add up)."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in prompts:
        entry = totals[row["prompt_name"] or "(no prompt)"]
        entry[0] += int(row["tokens_in"] or 0)
        entry[1] += int(row["tokens_out"] or 0)
    ranked = sorted(totals.items(), key=lambda item: (-(item[1][0] + item[1][1]), item[0]))[:top]
    # Largest at the top of a horizontal bar chart: Plotly draws the first category at the bottom.
    ranked.reverse()
    names = [name for name, _ in ranked]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "name": label,
                "y": names,
                "x": [counts[index] for _, counts in ranked],
                "marker": {"color": colour},
                "hovertemplate": "%{x:,} tokens",
            }
            for index, (label, colour) in enumerate(
                (("Tokens in", TOKENS_IN_COLOUR), ("Tokens out", TOKENS_OUT_COLOUR))
            )
        ],
        "layout": _layout(
            barmode="stack",
            hovermode="y unified",
            margin={**_MARGIN, "l": 140},
            xaxis={"title": {"text": "Tokens"}, "rangemode": "tozero"},
            yaxis={"automargin": True},
        ),
    }


def score_trend(points: Sequence[dict[str, Any]], *, threshold: float | None) -> dict[str, Any]:
    """An evaluation's score over time from its trend points: the min–max band (filled between two
    invisible lines), the average line and, when the suite has one, the threshold as a dashed line."""
    x = [point["bucket"] for point in points]
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Max",
            "x": x,
            "y": [point["max"] for point in points],
            "line": {"width": 0},
            "hovertemplate": "max %{y:.3f}",
            "showlegend": False,
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Min–max",
            "x": x,
            "y": [point["min"] for point in points],
            "line": {"width": 0},
            "fill": "tonexty",
            "fillcolor": BAND_FILL,
            "hovertemplate": "min %{y:.3f}",
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "Average",
            "x": x,
            "y": [point["avg"] for point in points],
            "line": {"color": SCORE_COLOUR, "width": 2},
            "hovertemplate": "avg %{y:.3f}",
        },
    ]
    if threshold is not None and x:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"Threshold {threshold:g}",
                "x": [x[0], x[-1]],
                "y": [threshold, threshold],
                "line": {"color": THRESHOLD_COLOUR, "dash": "dash", "width": 1.5},
                "hoverinfo": "skip",
            }
        )
    return {"data": data, "layout": _layout(xaxis={"type": "date"}, yaxis={"title": {"text": "Score"}})}


class SpanLike(Protocol):
    span_id: str
    parent_id: str
    name: str
    status: str
    start_time: datetime | None
    end_time: datetime | None


def ordered_spans(spans: Iterable[SpanLike]) -> list[tuple[SpanLike, int]]:
    """Spans depth first, each with its depth: children under their parent, siblings by start time.
    A span whose parent is not in the trace (lost, or not sent yet) is a root."""
    spans = list(spans)
    known = {span.span_id for span in spans}
    children: dict[str, list[SpanLike]] = defaultdict(list)
    for span in spans:
        parent = span.parent_id if span.parent_id in known and span.parent_id != span.span_id else ""
        children[parent].append(span)

    def start(span: SpanLike) -> tuple[bool, datetime | None, str]:
        return (span.start_time is None, span.start_time, span.span_id)

    ordered: list[tuple[SpanLike, int]] = []
    seen: set[str] = set()
    stack = [(span, 0) for span in sorted(children[""], key=start, reverse=True)]
    while stack:
        span, depth = stack.pop()
        if span.span_id in seen:  # a parent cycle sent by a buggy exporter
            continue
        seen.add(span.span_id)
        ordered.append((span, depth))
        stack.extend((child, depth + 1) for child in sorted(children[span.span_id], key=start, reverse=True))
    # Spans only reachable through a cycle: shown at the root rather than lost.
    ordered.extend((span, 0) for span in spans if span.span_id not in seen)
    return ordered


def _tree_label(name: str, depth: int) -> str:
    # Plotly right-aligns tick labels, so leading spaces would not show as indentation: a child is
    # marked "└ ", a grandchild "· └ ", and so on.
    return name if depth == 0 else "· " * (depth - 1) + "└ " + name


def span_waterfall(spans: Iterable[SpanLike]) -> dict[str, Any]:
    """Spans as horizontal bars on a time axis (milliseconds from the trace's first start), in tree
    order with names marked by depth, coloured by status. Spans without a start time have no
    place on the axis and are left to the tree; a span not ended yet is drawn as an instant."""
    rows = [(span, depth) for span, depth in ordered_spans(spans) if span.start_time is not None]
    origin = min((span.start_time for span, _ in rows), default=None)
    y, base, width, colours, labels, custom = [], [], [], [], [], []
    for index, (span, depth) in enumerate(rows):
        offset = (span.start_time - origin).total_seconds() * 1000
        end = span.end_time if span.end_time and span.end_time >= span.start_time else span.start_time
        duration = (end - span.start_time).total_seconds() * 1000
        y.append(index)
        base.append(round(offset, 3))
        width.append(round(duration, 3))
        colours.append(STATUS_COLOURS.get(span.status, STATUS_COLOURS["unset"]))
        labels.append(_tree_label(span.name, depth))
        custom.append([span.span_id, span.status, round(duration, 3)])
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "y": y,
                "x": width,
                "base": base,
                "marker": {"color": colours, "line": {"width": 0}},
                "customdata": custom,
                "hovertemplate": (
                    "%{customdata[0]}<br>%{customdata[1]} · %{customdata[2]:.1f} ms<extra></extra>"
                ),
            }
        ],
        "layout": _layout(
            hovermode="closest",
            showlegend=False,
            height=max(160, 28 * len(rows) + 70),
            margin={**_MARGIN, "l": 200},
            bargap=0.3,
            xaxis={"title": {"text": "ms since trace start"}, "rangemode": "tozero", "side": "top"},
            yaxis={
                "tickvals": y,
                "ticktext": labels,
                "autorange": "reversed",
                "automargin": True,
                "fixedrange": True,
            },
        ),
        "onclick": "select-span",
    }
