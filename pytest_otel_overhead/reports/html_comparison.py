"""The HTML report's comparison with an earlier run: rows per test; a relative change only where it means something."""

from __future__ import annotations

import math

from pytest_otel_overhead.formatting import (
    NO_FIGURE,
    interval,
    interval_heading,
    percentage_points,
    signed_percent,
    signed_percent_or_dash,
    signed_whole_percent,
)
from pytest_otel_overhead.history.compare import Comparison, MetricChange, TestChange, describe_run
from pytest_otel_overhead.reports.html_text import escape_html, table, verdict_span, wrappable_id
from pytest_otel_overhead.stats.verdict import Verdict

__all__ = ["RELATIVE_BASE_MIN", "RELATIVE_LEFT_OUT", "RELATIVE_SPAN_MAX", "comparison_section", "relative_is_telling"]

RELATIVE_BASE_MIN = 0.01
"""A relative change is shown only where the earlier overhead was at least this (1%)..."""
RELATIVE_SPAN_MAX = 2.0
"""...and its interval spans at most this (200%)."""
_h = escape_html
_id = wrappable_id
_table = table
_verdict = verdict_span


def comparison_section(comparison: Comparison) -> str:
    """The comparison: what it was compared with, the criteria, differences of place, a table per test."""
    parts = [f"<p>Compared with {_h(describe_run(comparison.before))}."]
    if comparison.criteria:
        parts.append(" Fails on growth beyond " + ", ".join(_h(c.describe()) for c in comparison.criteria) + ".")
    parts.append("</p>")
    if comparison.differences:
        parts.append(
            '<p class="note"><strong>The runs were measured in different places:</strong> '
            + _h("; ".join(comparison.differences))
            + "</p>"
        )
    rows = [row for test in comparison.tests for row in _comparison_rows(test)]
    change = f"change ({interval_heading([comparison.confidence])})"
    header = ["test", "metric", "before", "after", change, "relative change", "verdict", "note"]
    parts.append(_table(header, rows, (2, 3, 4, 5), grouped=True))
    if any(
        not m.problem and m.relative is not None and not relative_is_telling(m)
        for t in comparison.tests
        for m in t.metrics
    ):
        parts.append(f'<p class="muted">{_h(RELATIVE_LEFT_OUT)}</p>')
    return "".join(parts)


RELATIVE_LEFT_OUT = (
    f"A relative change ({NO_FIGURE}) is left out where the earlier overhead was under "
    f"{RELATIVE_BASE_MIN * 100:g}% or the change's interval spans more than {RELATIVE_SPAN_MAX * 100:g}%: "
    "relative to a figure near zero, or that uncertain, it says nothing the change in points does not."
)


def relative_is_telling(metric: MetricChange) -> bool:
    """Whether ``metric``'s change relative to its earlier overhead means something.

    Relative to an overhead near zero, any change is huge and its interval spans hundreds of
    percent either way (``-10% [-331%, +329%]``); the change in percentage points says it better.
    An unbounded end alone does not hide it: its other end still bounds the change.
    """
    if metric.relative is None or not math.isfinite(metric.relative[1]) or abs(metric.before) < RELATIVE_BASE_MIN:
        return False
    low, _, high = metric.relative
    finite = [v for v in (low, high) if math.isfinite(v)]
    return bool(finite) and (len(finite) == 1 or high - low <= RELATIVE_SPAN_MAX)


def _comparison_rows(test: TestChange) -> list[list[str]]:
    """One row per compared metric of ``test``; its note (a new test) or differing settings in the last column."""
    if test.note:
        return [[_id(test.nodeid), "", "", "", "", "", "", _h(test.note)]]
    rows = []
    marks = {Verdict.FAIL: "regressed", Verdict.PASS: "ok", Verdict.INCONCLUSIVE: "undecided"}
    for metric in test.metrics:
        low, estimate, high = metric.points
        relative = NO_FIGURE
        if relative_is_telling(metric) and metric.relative is not None:
            low_change, change, high_change = metric.relative
            relative = _h(f"{signed_whole_percent(change)} {interval(low_change, high_change, signed_percent)}")
        verdict = metric.verdict
        rows.append(
            [
                _id(test.nodeid),
                _h(metric.label),
                _h(signed_percent_or_dash(metric.before)),
                _h(signed_percent_or_dash(metric.after)),
                _h(f"{percentage_points(estimate)} {interval(low, high, percentage_points)}"),
                relative,
                _verdict(verdict, marks[verdict]) if verdict is not None else "",
                _h(metric.problem or ""),
            ]
        )
    if test.settings_differences:
        rows.append(
            [_id(test.nodeid), "", "", "", "", "", "", _h("settings differ: " + "; ".join(test.settings_differences))]
        )
    return rows
