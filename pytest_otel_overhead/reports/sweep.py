"""Sweeps as records and as what people read: the table, the chart and the page of charts.

:mod:`pytest_otel_overhead.advice.sweep` measures a test over a grid of settings and keeps what it
found in these records; the terminal summary, the JSON document and the sweep page render them here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_otel_overhead.formatting import finite_or_none, interval_heading
from pytest_otel_overhead.reports.drawing import ChartDrawer, charts_available
from pytest_otel_overhead.reports.html_text import escape_html, wrappable_id
from pytest_otel_overhead.results import MetricResult, TestResult
from pytest_otel_overhead.units import Budget

__all__ = ["SweepAxis", "SweepPoint", "SweepResult", "sweep_lines", "sweep_page", "sweep_svg"]


@dataclass(frozen=True)
class SweepAxis:
    """One swept setting: its values as parsed, and as the user wrote them (for tables and charts)."""

    key: str
    values: tuple[object, ...]
    labels: tuple[str, ...]

    def numeric(self) -> tuple[float, ...] | None:
        numbers = [v for v in self.values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return tuple(float(v) for v in numbers) if len(numbers) == len(self.values) else None


@dataclass(frozen=True)
class SweepPoint:
    values: tuple[tuple[str, str], ...]
    result: TestResult

    def gate(self, metric: str) -> MetricResult | None:
        return self.result.metric(metric)

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.values)


@dataclass(frozen=True)
class SweepResult:
    nodeid: str
    axes: tuple[SweepAxis, ...]
    metric: str
    budget: Budget | None
    points: tuple[SweepPoint, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "nodeid": self.nodeid,
            "axes": {axis.key: list(axis.labels) for axis in self.axes},
            "metric": self.metric,
            "budget": None if self.budget is None else {"kind": self.budget.kind, "value": self.budget.value},
            "points": [_point_dict(point, self.metric) for point in self.points],
        }


def _point_dict(point: SweepPoint, metric: str) -> dict[str, object]:
    result = point.result
    gate = point.gate(metric)
    health = result.health
    return {
        "values": dict(point.values),
        "pipeline": result.settings.pipeline.as_dict(),
        "verdict": result.verdict.value,
        "gate": None if gate is None else gate.as_dict(),
        "metrics": {m.metric: m.as_dict() for m in result.metrics if m.verdict is not None or m.metric == "wall"},
        "spans_per_call": None if health is None else finite_or_none(health.per_call(health.started)),
        "spans_sampled_per_call": None if health is None else finite_or_none(health.per_call(health.sampled)),
        "spans_dropped": None if health is None else health.dropped,
        "pairs": result.pairs,
        "duration_s": result.duration_s,
        "stop_reason": result.stop_reason,
    }


# --- terminal table -----------------------------------------------------------------------------


def sweep_lines(sweep: SweepResult) -> list[str]:
    """The grid as a table: one row per point, the gate metric's overhead, interval and verdict."""
    budget = sweep.budget.describe(sweep.metric) if sweep.budget is not None else "none"
    metric_label = next((m.label for p in sweep.points if (m := p.gate(sweep.metric)) is not None), sweep.metric)
    lines = [f"{sweep.nodeid}  sweep of {', '.join(a.key for a in sweep.axes)} ({metric_label} budget {budget})"]
    levels = interval_heading(gate.confidence for p in sweep.points if (gate := p.gate(sweep.metric)) is not None)
    header = [*(axis.key for axis in sweep.axes), "overhead", levels, "verdict", "spans/call", "sampled", "pairs"]
    rows = [header]
    for point in sweep.points:
        gate = point.gate(sweep.metric)
        health = point.result.health
        rows.append(
            [
                *(label for _, label in point.values),
                gate.format_overhead(gate.overhead) if gate is not None and math.isfinite(gate.overhead) else "-",
                gate.format_interval() if gate is not None else "-",
                point.result.verdict.value,
                f"{health.per_call(health.started):.3g}" if health is not None else "-",
                f"{health.per_call(health.sampled):.3g}" if health is not None else "-",
                str(point.result.pairs),
            ]
        )
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    lines += ["    " + "  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row)).rstrip() for row in rows]
    return lines


# --- chart and page ------------------------------------------------------------------------------


def sweep_svg(sweep: SweepResult) -> str:
    """The sweep's chart as an ``<svg>`` element, drawn by matplotlib (the ``html`` extra).

    Overhead with its interval against the first swept setting, one series per combination of the
    other settings, the budget as a dashed line (see :func:`pytest_otel_overhead.reports.charts.sweep_chart`).
    Raises ``ImportError`` when matplotlib is not installed.
    """
    from pytest_otel_overhead.reports import charts  # matplotlib is optional

    return charts.sweep_chart(sweep)


def _chart(module: Any, sweep: SweepResult) -> str:
    return str(module.sweep_chart(sweep))


_PAGE_STYLE = (
    "body{font-family:sans-serif;margin:2em}pre{font-size:12px;overflow-x:auto}"
    "figure{margin:.6rem 0}figure svg{max-width:100%;height:auto}"
    ".note{background:#fff8c5;border:1px solid #d4a72c;padding:.5rem .8rem;border-radius:6px}.muted{color:#59636e}"
)


def sweep_page(sweeps: Sequence[SweepResult]) -> str:
    """A self-contained HTML page: per swept test, its chart (with matplotlib) and its table."""
    drawing = ChartDrawer(charts_available())
    body = [drawing.left_out_note()] if drawing.module is None else []
    for sweep in sweeps:
        table = "\n".join(escape_html(line) for line in sweep_lines(sweep)[1:])
        chart = drawing.draw(functools.partial(_chart, sweep=sweep), f"overhead of {sweep.nodeid} across the sweep")
        body.append(f"<section><h2>{wrappable_id(sweep.nodeid)}</h2>\n{chart}\n<pre>{table}</pre></section>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>otel-overhead sweeps</title>'
        f"<style>{_PAGE_STYLE}</style></head><body>"
        "<h1>Telemetry overhead sweeps</h1>\n" + "\n".join(body) + "\n</body></html>\n"
    )
