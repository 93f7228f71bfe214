"""The overhead columns of the HTML report's tables: one per kind of overhead (relative, absolute), headed
with the intervals' confidence, or, where a table's intervals differ in it, with each cell saying its own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from pytest_otel_overhead.formatting import NO_FIGURE, interval_heading, shared_confidence
from pytest_otel_overhead.reports.html_text import escape_html
from pytest_otel_overhead.reports.markdown import overhead_cell
from pytest_otel_overhead.reports.terminal import overhead_heading
from pytest_otel_overhead.results import MetricResult

__all__ = ["OverheadColumns", "overhead_cells", "overhead_columns", "overhead_headers"]


class OverheadColumns(NamedTuple):
    """A table's overhead columns: the kinds among its metrics, the interval's heading (``95% CI``), and
    whether the intervals differ in confidence."""

    kinds: list[str]
    heading: str
    mixed: bool


def overhead_columns(metrics: Sequence[MetricResult]) -> OverheadColumns:
    """The columns a table of ``metrics`` needs."""
    kinds = [kind for kind in ("relative", "absolute") if any(m.kind == kind for m in metrics)]
    levels = [m.confidence for m in metrics]
    return OverheadColumns(kinds, interval_heading(levels), shared_confidence(levels) is None)


def overhead_headers(columns: OverheadColumns) -> list[str]:
    return [f"{overhead_heading(kind)} ({columns.heading})" for kind in columns.kinds]


def overhead_cells(metric: MetricResult, columns: OverheadColumns) -> list[str]:
    """``metric``'s estimate and interval in its kind's column, ``NO_FIGURE`` in the others."""
    return [
        escape_html(overhead_cell(metric, columns.mixed)) if metric.kind == kind else NO_FIGURE
        for kind in columns.kinds
    ]
