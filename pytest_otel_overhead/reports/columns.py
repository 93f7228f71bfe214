"""The overhead columns of the Markdown and HTML tables: one per kind of overhead (relative, absolute), headed
with the intervals' confidence, or, where a table's intervals differ in it, with each cell saying its own."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

from pytest_otel_overhead.formatting import NO_FIGURE, confidence_percent, interval_heading, shared_confidence
from pytest_otel_overhead.reports.terminal import overhead_heading
from pytest_otel_overhead.results import MetricResult

__all__ = ["OverheadColumns", "overhead_cell", "overhead_columns"]


def overhead_cell(metric: MetricResult, level: bool = False) -> str:
    """``+8.0% [+6.0%, +10.0%]``: the estimate and its interval (when there is one), or ``NO_FIGURE``; with
    ``level``, the interval's confidence after it (``at 99%``), for a column whose intervals differ in it."""
    if not math.isfinite(metric.overhead):
        return NO_FIGURE
    bounds = metric.format_interval()
    if bounds == NO_FIGURE:
        return metric.format_estimate()
    return f"{metric.format_estimate()} {bounds}" + (f" at {confidence_percent(metric.confidence)}" if level else "")


class OverheadColumns(NamedTuple):
    """A table's overhead columns: the kinds among its metrics, the interval's heading (``95% CI``), and
    whether the intervals differ in confidence."""

    kinds: list[str]
    heading: str
    mixed: bool

    def headers(self) -> list[str]:
        """``overhead % (95% CI)``, ``overhead/call (95% CI)``: a heading per column."""
        return [f"{overhead_heading(kind)} ({self.heading})" for kind in self.kinds]

    def cells(self, metric: MetricResult, escape: Callable[[str], str]) -> list[str]:
        """``metric``'s estimate and interval in its kind's column, escaped for the page; ``NO_FIGURE`` in the
        others."""
        return [escape(overhead_cell(metric, self.mixed)) if metric.kind == kind else NO_FIGURE for kind in self.kinds]


def overhead_columns(metrics: Sequence[MetricResult]) -> OverheadColumns:
    """The columns a table of ``metrics`` needs."""
    kinds = [kind for kind in ("relative", "absolute") if any(m.kind == kind for m in metrics)]
    levels = [m.confidence for m in metrics]
    return OverheadColumns(kinds, interval_heading(levels), shared_confidence(levels) is None)
