"""Charts for the HTML report, drawn with matplotlib as inline SVG (the ``html`` extra).

Only ``matplotlib.figure.Figure`` is used, never pyplot: no global backend is chosen and no
figure outlives a call, so a test session that uses matplotlib itself is left as it was.
Every function returns a complete ``<svg>`` element.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from pytest_otel_overhead.formatting import budget_percent, signed_percent_or_dash, visible
from pytest_otel_overhead.reports.sweep import SweepAxis, SweepPoint, SweepResult
from pytest_otel_overhead.results import MetricResult, TestResult

__all__ = [
    "OverheadRow",
    "TrendPoint",
    "heap_chart",
    "legend_below",
    "overhead_chart",
    "pairs_chart",
    "sweep_chart",
    "trend_chart",
]

BASELINE_COLOR = "#4c72b0"
INSTRUMENTED_COLOR = "#dd8452"
BUDGET_COLOR = "#c44e52"
VERDICT_COLORS = {"PASS": "#2e7d32", "FAIL": "#c62828", "INCONCLUSIVE": "#ef6c00", None: "#455a64"}
SERIES_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22")
_counter = itertools.count()


@dataclass(frozen=True)
class OverheadRow:
    """One bar of the overview: a test's metric with its interval (fractions) and budget."""

    label: str
    estimate: float
    low: float
    high: float
    budget: float | None
    verdict: str | None


@dataclass(frozen=True)
class TrendPoint:
    label: str
    estimate: float
    low: float
    high: float


def _text(value: str, limit: int = 70) -> str:
    """Test ids as chart text: ``$`` would start mathtext; long ids keep their informative end; controls shown."""
    value = visible(value)
    if len(value) > limit:
        value = "…" + value[-(limit - 1) :]
    return value.replace("\\", "\\\\").replace("$", r"\$")


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    # A salt per figure keeps element ids unique across the figures inlined in one page.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"otel-overhead-{next(_counter)}"}):
        figure.savefig(
            buffer,
            format="svg",
            bbox_inches="tight",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _finite_or(value: float, fallback: float) -> float:
    return value if math.isfinite(value) else fallback


def overhead_chart(rows: Sequence[OverheadRow], interval: str = "95% interval") -> str:
    """Overhead of each test with its interval, and its budget as a red tick; figures at the right.

    When the tests lie far apart (one at +300%, others at +2% against 5% budgets), a linear axis
    squeezes the small ones and their budgets into one spot: the axis is then linear up to a few
    budgets and logarithmic beyond (matplotlib's ``symlog``), and says so.
    """
    figure = Figure(figsize=(8.5, 1.1 + 0.38 * len(rows)))
    ax = figure.add_subplot()
    finite = [v * 100 for r in rows for v in (r.low, r.high, r.estimate, r.budget or 0.0) if math.isfinite(v)]
    span_low, span_high = min([0.0, *finite]), max([0.0, *finite])
    linear = _linear_span(rows)
    symlog = max(abs(span_low), span_high) > 4 * linear
    if symlog:
        ax.set_xscale("symlog", linthresh=linear, linscale=1.5)
        left, right = _symlog_limit(span_low, linear, -1), _symlog_limit(span_high, linear, 1)
    else:
        pad = max(1.0, (span_high - span_low) * 0.08)
        left, right = span_low - pad, span_high + pad
    for y, row in enumerate(reversed(rows)):
        _overhead_row(ax, y, row, (left, right))
    ax.axvline(0, color="#999999", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [_text(r.label) for r in reversed(rows)], fontsize=8)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlim(left, right)
    if symlog:
        ticks = [t for t in _SYMLOG_TICKS if left <= t <= right and (t == 0 or abs(t) >= linear / 5)]
        ax.set_xticks(ticks, [f"{t:+g}%" if t else "0" for t in ticks], fontsize=7)
    scale = f"; linear to ±{linear:g}%, logarithmic beyond" if symlog else ""
    ax.set_xlabel(f"overhead, % (dot: estimate, bar: {interval}, red tick: budget{scale})", fontsize=8)
    right_axis = ax.twinx()
    right_axis.set_ylim(ax.get_ylim())
    right_axis.set_yticks(range(len(rows)), [_row_figures(r) for r in reversed(rows)], fontsize=8)
    right_axis.tick_params(length=0)
    ax.grid(axis="x", color="#eeeeee")
    ax.set_axisbelow(True)
    return _svg(figure)


_SYMLOG_TICKS = (-1000, -300, -100, -30, -10, -5, -2, 0, 2, 5, 10, 30, 100, 300, 1000, 3000, 10000, 30000)


def _linear_span(rows: Sequence[OverheadRow]) -> float:
    """Where the axis turns logarithmic: twice the largest budget, so budgets and the figures near them stay apart."""
    budgets = [r.budget * 100 for r in rows if r.budget is not None and math.isfinite(r.budget) and r.budget > 0]
    return max(10.0, 2 * max(budgets, default=5.0))


def _symlog_limit(value: float, linear: float, side: float) -> float:
    """The axis end on ``side`` (-1 or +1), a little past ``value``; a short stretch past zero when it is near zero."""
    return value * 1.5 if abs(value) > linear * 0.1 else side * linear * 0.15


def _overhead_row(ax: Axes, y: float, row: OverheadRow, limits: tuple[float, float]) -> None:
    color = VERDICT_COLORS.get(row.verdict, VERDICT_COLORS[None])
    low, high = _finite_or(row.low * 100, limits[0]), _finite_or(row.high * 100, limits[1])
    ax.plot([low, high], [y, y], color=color, linewidth=2.5, solid_capstyle="butt")
    if math.isfinite(row.estimate):
        ax.plot([row.estimate * 100], [y], "o", color=color, markersize=6)
    if row.budget is not None:
        ax.plot([row.budget * 100], [y], "|", color=BUDGET_COLOR, markersize=16, markeredgewidth=2.5)


def _row_figures(row: OverheadRow) -> str:
    """``+2.1% / 5.0%``: the estimate and the budget, the figures the eye looks for beside the bar."""
    estimate = signed_percent_or_dash(row.estimate)
    budget = f" / {budget_percent(row.budget)}" if row.budget is not None else ""
    return f"{estimate}{budget}{' ' + row.verdict if row.verdict else ''}"


def _pair_overheads(result: TestResult, columns: tuple[int, int]) -> list[float]:
    values = []
    for row in result.samples:
        b, i = row[columns[0]], row[columns[1]]
        if b > 0 and i > 0:
            values.append((i / b - 1) * 100)
    return values


def pairs_chart(result: TestResult) -> str:
    """Three panels: per-pair CPU overhead, time per call of both arms per block, latency quantiles."""
    figure = Figure(figsize=(11, 3.0))
    ax_pairs, ax_blocks, ax_latency = figure.subplots(1, 3)
    _pairs_panel(ax_pairs, result)
    _blocks_panel(ax_blocks, result)
    _latency_panel(ax_latency, result)
    for ax in (ax_pairs, ax_blocks, ax_latency):
        ax.tick_params(labelsize=7)
    figure.tight_layout()
    return _svg(figure)


def _pairs_panel(ax: Axes, result: TestResult) -> None:
    """Histogram of the CPU overhead of each pair, with the estimate and the budget."""
    cpu = result.metric("cpu")
    overheads = _pair_overheads(result, (0, 1))
    if overheads:
        ordered = sorted(overheads)
        # The outer 1% on each side would stretch the axis past what the eye can use.
        cut = len(ordered) // 100
        shown = ordered[cut : len(ordered) - cut] if len(ordered) > 2 * cut else ordered
        ax.hist(shown, bins=min(40, max(8, len(shown) // 5)), color="#8c8c8c")
        if cpu is not None and cpu.kind == "relative" and math.isfinite(cpu.overhead):
            ax.axvline(cpu.overhead * 100, color="#222222", linewidth=1.5, label="estimate")
        if cpu is not None and cpu.budget is not None and cpu.budget.kind == "relative":
            ax.axvline(cpu.budget.value * 100, color=BUDGET_COLOR, linestyle="--", linewidth=1.5, label="budget")
        legend_below(ax)
    ax.set_title("CPU overhead of each pair of blocks", fontsize=9)
    ax.set_xlabel("%", fontsize=8)


def legend_below(ax: Axes) -> None:
    """The legend under the panel, where it covers no bar, line or point; none when nothing is labelled."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2, frameon=False)


def _blocks_panel(ax: Axes, result: TestResult) -> None:
    """Histograms of wall time per call, block by block, of both arms on one scale."""
    walls = [(row[2], row[3]) for row in result.samples if row[2] > 0 and row[3] > 0]
    if walls:
        scale, unit = _time_scale(max(max(w) for w in walls))
        baseline = [w[0] * scale for w in walls]
        instrumented = [w[1] * scale for w in walls]
        low, high = min(baseline + instrumented), max(baseline + instrumented)
        bins: Any = 30 if high > low else 1
        ax.hist(baseline, bins=bins, range=(low, high), alpha=0.6, color=BASELINE_COLOR, label="baseline")
        ax.hist(instrumented, bins=bins, range=(low, high), alpha=0.6, color=INSTRUMENTED_COLOR, label="instrumented")
        ax.set_xlabel(unit, fontsize=8)
        legend_below(ax)
    ax.set_title("wall time per call, block by block", fontsize=9)


def _latency_panel(ax: Axes, result: TestResult) -> None:
    """Latency quantiles of both arms side by side."""
    names = [("p50", "latency_p50"), ("p95", "latency_p95"), ("p99", "latency_p99")]
    quantiles = [(label, result.metric(name)) for label, name in names]
    # A quantile measured in no pair (n 0, blocks too short for a p99) has no figure to draw.
    present = [(label, m) for label, m in quantiles if m is not None and m.n > 0 and math.isfinite(m.baseline)]
    if present:
        scale, unit = _time_scale(max(max(m.baseline, m.instrumented) for _, m in present))
        positions = range(len(present))
        baseline = [m.baseline * scale for _, m in present]
        instrumented = [m.instrumented * scale for _, m in present]
        ax.bar([p - 0.2 for p in positions], baseline, width=0.4, color=BASELINE_COLOR, label="baseline")
        ax.bar([p + 0.2 for p in positions], instrumented, width=0.4, color=INSTRUMENTED_COLOR, label="instrumented")
        ax.set_xticks(list(positions), [label for label, _ in present])
        ax.set_ylabel(unit, fontsize=8)
        legend_below(ax)
    ax.set_title("latency per call, both arms", fontsize=9)


def _time_scale(largest: float) -> tuple[float, str]:
    if largest >= 1:
        return 1.0, "s"
    if largest >= 1e-3:
        return 1e3, "ms"
    if largest >= 1e-6:
        return 1e6, "µs"
    return 1e9, "ns"


def _size_scale(largest: float) -> tuple[float, str]:
    if largest >= 1024**2:
        return 1 / 1024**2, "MiB"
    if largest >= 1024:
        return 1 / 1024, "KiB"
    return 1.0, "B"


def heap_chart(results: Sequence[TestResult]) -> str:
    """Peak heap of each test in both arms."""
    rows = [(r.nodeid, m) for r in results if (m := r.metric("heap")) is not None and math.isfinite(m.baseline)]
    figure = Figure(figsize=(8.5, 0.9 + 0.45 * max(1, len(rows))))
    ax = figure.add_subplot()
    largest = max([max(m.baseline, m.instrumented) for _, m in rows] + [1.0])
    scale, unit = _size_scale(largest)
    for y, (_, metric) in enumerate(reversed(rows)):
        ax.barh(
            y + 0.2, metric.baseline * scale, height=0.38, color=BASELINE_COLOR, label="baseline" if y == 0 else None
        )
        ax.barh(
            y - 0.2,
            metric.instrumented * scale,
            height=0.38,
            color=INSTRUMENTED_COLOR,
            label="instrumented" if y == 0 else None,
        )
    ax.set_yticks(range(len(rows)), [_text(nodeid) for nodeid, _ in reversed(rows)], fontsize=8)
    ax.set_xlabel(f"peak heap per block, {unit}")
    if rows:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _svg(figure)


def trend_chart(title: str, points: Sequence[TrendPoint], budget: float | None) -> str:
    """One test's overhead run after run, with intervals and the budget."""
    figure = Figure(figsize=(8.5, 2.6))
    ax = figure.add_subplot()
    xs = list(range(len(points)))
    estimates = [p.estimate * 100 for p in points]
    finite = [v for p in points for v in (p.low * 100, p.high * 100) if math.isfinite(v)] + [
        e for e in estimates if math.isfinite(e)
    ]
    bottom = min([*finite, 0.0]) - 1
    top = max([*finite, 0.0, (budget or 0.0) * 100]) + 1
    ax.fill_between(
        xs,
        [_finite_or(p.low * 100, bottom) for p in points],
        [_finite_or(p.high * 100, top) for p in points],
        color=INSTRUMENTED_COLOR,
        alpha=0.25,
        linewidth=0,
        label="confidence interval",
    )
    ax.plot(xs, estimates, "o-", color=INSTRUMENTED_COLOR, label="overhead")
    if budget is not None:
        ax.axhline(budget * 100, color=BUDGET_COLOR, linestyle="--", label="budget")
    ax.set_xticks(xs, [_text(p.label, 24) for p in points], rotation=30, ha="right", fontsize=7)
    ax.set_ylim(bottom, top)
    ax.set_ylabel("overhead, %", fontsize=8)
    ax.set_title(_text(title, 110), fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", color="#eeeeee")
    return _svg(figure)


def sweep_chart(sweep: SweepResult) -> str:
    """Overhead with its interval against the first swept setting; one series per combination of the others.

    The x axis is logarithmic when every value is positive and they span a factor of ten or more,
    categorical when the values are not numbers. The budget is a dashed line. Each point's marker
    and interval carry the ids ``sweep<N>-point<i>`` and ``sweep<N>-interval<i>`` (``N`` numbers
    the chart, ``i`` the points drawn in it), so a page can find or style them.
    """
    first = sweep.axes[0]
    positions, log_x = _sweep_positions(first)
    gates = [g for p in sweep.points if (g := p.gate(sweep.metric)) is not None]
    scale, unit = _overhead_scale(gates)
    budget = sweep.budget.value * scale if sweep.budget is not None else None
    frame = _SweepFrame(sweep.metric, scale, _sweep_limits(gates, scale, budget), next(_counter))
    series = _sweep_series(sweep, positions)
    step = _series_step(positions, len(series))
    joined = first.numeric() is not None  # a line between categories would suggest an order they lack
    figure = Figure(figsize=(9.5, 4.6))
    ax = figure.add_subplot()
    handles: list[Any] = []
    for number, (name, members) in enumerate(series.items()):
        color = SERIES_COLORS[number % len(SERIES_COLORS)]
        offset = (number - (len(series) - 1) / 2) * step
        frame.draw_series(ax, [(x + offset, point) for x, point in members], color, join=joined)
        handles.append(
            Line2D([], [], color=color, marker="o", linestyle="-" if joined else "none", label=_text(name, 40))
        )
    if budget is not None:
        handles.append(ax.axhline(budget, color=BUDGET_COLOR, linestyle="--", linewidth=1.5, label="budget"))
    ax.axhline(0, color="#999999", linewidth=0.8)
    ax.set_xticks(positions, [_text(label, 24) for label in first.labels], fontsize=8)
    ax.set_xlabel(_text(first.key + (" (log scale)" if log_x else "")))
    if joined:
        ax.margins(x=0.06)
    else:
        ax.set_xlim(-0.5, len(positions) - 0.5)
    ax.set_ylim(*frame.limits)
    ax.set_ylabel(f"overhead, {unit}" if unit == "%" else f"overhead per call, {unit}")
    ax.set_title(_text(f"{sweep.nodeid}: {sweep.metric} overhead by {first.key}", 110), fontsize=9)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", color="#eeeeee")
    ax.set_axisbelow(True)
    return _svg(figure)


def _sweep_positions(axis: SweepAxis) -> tuple[list[float], bool]:
    """Where each value of the first axis sits on x, and whether that is a log scale."""
    numbers = axis.numeric()
    if numbers is None:
        return [float(index) for index in range(len(axis.values))], False
    if min(numbers) > 0 and max(numbers) / min(numbers) >= 10:
        return [math.log10(n) for n in numbers], True
    return list(numbers), False


def _overhead_scale(gates: Sequence[MetricResult]) -> tuple[float, str]:
    """Factor and unit of the y axis: percent for relative overheads, else a size or a duration."""
    if not gates or gates[0].kind == "relative":
        return 100.0, "%"
    largest = max([abs(v) for g in gates for v in (g.overhead, g.ci_low, g.ci_high) if math.isfinite(v)] + [0.0])
    return _size_scale(largest) if gates[0].metric == "heap" else _time_scale(largest)


def _sweep_limits(gates: Sequence[MetricResult], scale: float, budget: float | None) -> tuple[float, float]:
    finite = [v * scale for g in gates for v in (g.overhead, g.ci_low, g.ci_high) if math.isfinite(v)]
    candidates = [*finite, 0.0] + ([budget] if budget is not None else [])
    low, high = min(candidates), max(candidates)
    pad = (high - low) * 0.08 or 1.0
    return low - pad, high + pad


def _sweep_series(sweep: SweepResult, positions: Sequence[float]) -> dict[str, list[tuple[float, SweepPoint]]]:
    """Points grouped by the values of the other axes (the series' name), each with its x, left to right."""
    first = sweep.axes[0]
    series: dict[str, list[tuple[float, SweepPoint]]] = {}
    for point in sweep.points:
        name = ", ".join(f"{k}={v}" for k, v in point.values[1:]) or sweep.metric
        series.setdefault(name, []).append((positions[first.labels.index(point.values[0][1])], point))
    return {name: sorted(members, key=lambda member: member[0]) for name, members in series.items()}


def _series_step(positions: Sequence[float], count: int) -> float:
    """How far apart the series are drawn at one x, so that their intervals do not overlap."""
    distinct = sorted(set(positions))
    span = (distinct[-1] - distinct[0]) or 1.0
    gap = min((b - a for a, b in itertools.pairwise(distinct)), default=span)
    return min(span * 0.015, gap / (count + 1))


@dataclass
class _SweepFrame:
    """What every series of one sweep chart shares: the metric, the y scale and limits, the ids."""

    metric: str
    scale: float
    limits: tuple[float, float]
    chart: int
    drawn: int = 0

    def draw_series(self, ax: Axes, points: Sequence[tuple[float, SweepPoint]], color: str, join: bool) -> None:
        """Each point's interval (clipped to the axis when unbounded) and estimate, ringed by its verdict."""
        xs, ys = [], []
        for x, point in points:
            gate = point.gate(self.metric)
            if gate is None or not math.isfinite(gate.overhead):
                continue
            low = _finite_or(gate.ci_low * self.scale, self.limits[0])
            high = _finite_or(gate.ci_high * self.scale, self.limits[1])
            y = gate.overhead * self.scale
            ring = VERDICT_COLORS.get(point.result.verdict.value, VERDICT_COLORS[None])
            gid = f"sweep{self.chart}-interval{self.drawn}"
            ax.plot([x, x], [low, high], color=color, linewidth=1.5, marker="_", markersize=8, gid=gid)
            gid = f"sweep{self.chart}-point{self.drawn}"
            ax.plot([x], [y], "o", color=color, mec=ring, mew=1.5, markersize=7, zorder=3, gid=gid)
            self.drawn += 1
            xs.append(x)
            ys.append(y)
        if join and len(xs) > 1:
            ax.plot(xs, ys, color=color, alpha=0.5)
