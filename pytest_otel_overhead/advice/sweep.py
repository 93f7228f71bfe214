"""Sweeps: one test measured over a grid of pipeline settings, as a table and a chart.

``--otel-overhead-sweep "sample_rate=0.01,0.05,0.1" "batch_size=128,512"`` measures each marked test
at every combination. A grid point is a settings layer above the test's own layers (marker, CLI,
ini, environment), so it overrides them and goes through the same checks: a batch larger than the
queue is an error before anything is measured, and a profile can be swept like any setting.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pytest_otel_overhead.results import MetricResult, TestResult
from pytest_otel_overhead.settings.layers import KEYS, RATIO_SAMPLERS, Layer, MeasureSettings, SettingsError
from pytest_otel_overhead.units import Budget

__all__ = ["SweepAxis", "SweepPoint", "SweepResult", "parse_sweep", "run_sweep", "sweep_lines", "sweep_svg"]

# What a sweep varies is the pipeline; budgets and limits say how it is judged, not what it is.
NOT_SWEEPABLE = frozenset(
    {"budget", "cpu", "wall", "latency_p50", "latency_p95", "latency_p99", "heap", "metric", "max_time", "inconclusive"}
)
SOURCE = "--otel-overhead-sweep"


@dataclass(frozen=True)
class SweepAxis:
    """One swept setting: its values as parsed, and as the user wrote them (for tables and charts)."""

    key: str
    values: tuple[object, ...]
    labels: tuple[str, ...]

    def numeric(self) -> tuple[float, ...] | None:
        numbers = [v for v in self.values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return tuple(float(v) for v in numbers) if len(numbers) == len(self.values) else None


def parse_sweep(specs: Sequence[str], source: str = SOURCE) -> tuple[SweepAxis, ...]:
    """``KEY=V1,V2,…`` per spec (values split on ``;`` instead when any is present)."""
    axes: list[SweepAxis] = []
    for spec in specs:
        key, sep, text = spec.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise SettingsError(
                f"{source}: {spec!r} is not KEY=V1,V2,…; give test paths before {SOURCE}, or repeat the flag"
            )
        if key not in KEYS:
            raise SettingsError(f"{source}: unknown setting {key!r}; sweep one of {', '.join(_sweepable())}")
        if key in NOT_SWEEPABLE:
            raise SettingsError(
                f"{source}: {key} says how a point is judged, not what it measures; sweep one of "
                f"{', '.join(_sweepable())}"
            )
        if any(axis.key == key for axis in axes):
            raise SettingsError(f"{source}: {key} is swept twice; give all its values in one spec")
        separator = ";" if ";" in text else ","
        labels = tuple(dict.fromkeys(part.strip() for part in text.split(separator) if part.strip()))
        if not labels:
            raise SettingsError(f"{source}: {key}= has no values")
        values = tuple(KEYS[key].parse(label, f"{source} {key}") for label in labels)
        axes.append(SweepAxis(key, values, labels))
    return tuple(axes)


def _sweepable() -> list[str]:
    return [key for key in KEYS if key not in NOT_SWEEPABLE]


def grid(axes: Sequence[SweepAxis]) -> list[tuple[tuple[tuple[str, str], ...], dict[str, object]]]:
    """Every combination: ((key, label), …) and {key: parsed value}."""
    points = []
    for combination in itertools.product(*(range(len(axis.values)) for axis in axes)):
        labels = tuple((axis.key, axis.labels[i]) for axis, i in zip(axes, combination, strict=True))
        values = {axis.key: axis.values[i] for axis, i in zip(axes, combination, strict=True)}
        points.append((labels, values))
    return points


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
        "spans_per_call": None if health is None else _finite(health.per_call(health.started)),
        "spans_sampled_per_call": None if health is None else _finite(health.per_call(health.sampled)),
        "spans_dropped": None if health is None else health.dropped,
        "pairs": result.pairs,
        "duration_s": result.duration_s,
        "stop_reason": result.stop_reason,
    }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def point_layers(
    axes: Sequence[SweepAxis], settings_at: Callable[[Layer], MeasureSettings], source: str = SOURCE
) -> list[tuple[tuple[tuple[str, str], ...], MeasureSettings]]:
    """Settings of every grid point, all checked before anything is measured.

    A swept rate with no swept sampler also selects the ratio sampler, so the points differ by the
    rate even when the test's own sampler takes none.
    """
    points = []
    for labels, values in grid(axes):
        layer_values = {key: (value, f"{source} {key}") for key, value in values.items()}
        settings = settings_at(Layer(layer_values))
        if "sample_rate" in values and "sampler" not in values and settings.pipeline.sampler not in RATIO_SAMPLERS:
            layer_values["sampler"] = ("parentbased_traceidratio", f"{source} sample_rate")
            settings = settings_at(Layer(layer_values))
        points.append((labels, settings))
    return points


def run_sweep(
    nodeid: str,
    axes: Sequence[SweepAxis],
    settings_at: Callable[[Layer], MeasureSettings],
    measure_at: Callable[[MeasureSettings, str], TestResult],
    progress: Callable[[str], None] | None = None,
) -> SweepResult:
    """Measure the workload at every grid point; ``measure_at(settings, label)`` runs one measurement."""
    say = progress or (lambda message: None)
    planned = point_layers(axes, settings_at)
    gate_settings = settings_at(Layer({}))
    points = []
    for index, (labels, settings) in enumerate(planned, 1):
        text = ", ".join(f"{k}={v}" for k, v in labels)
        say(f"sweep point {index}/{len(planned)}: {text}")
        result = measure_at(settings, f"{nodeid}[{text}]")
        points.append(SweepPoint(labels, result))
    return SweepResult(
        nodeid=nodeid,
        axes=tuple(axes),
        metric=gate_settings.metric,
        budget=gate_settings.budget(gate_settings.metric),
        points=tuple(points),
    )


# --- terminal table -----------------------------------------------------------------------------


def sweep_lines(sweep: SweepResult) -> list[str]:
    """The grid as a table: one row per point, the gate metric's overhead, interval and verdict."""
    budget = sweep.budget.describe(sweep.metric) if sweep.budget is not None else "none"
    metric_label = next((m.label for p in sweep.points if (m := p.gate(sweep.metric)) is not None), sweep.metric)
    lines = [f"{sweep.nodeid}  sweep of {', '.join(a.key for a in sweep.axes)} ({metric_label} budget {budget})"]
    header = [*(axis.key for axis in sweep.axes), "overhead", "95% CI", "verdict", "spans/call", "sampled", "pairs"]
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


# --- chart (inline SVG, no plotting library) -----------------------------------------------------

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22")
_VERDICT_COLORS = {"PASS": "#2e7d32", "FAIL": "#c62828", "INCONCLUSIVE": "#ef6c00"}


def _nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    span = high - low
    if span <= 0:
        return [low]
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _scale(metric: MetricResult | None) -> tuple[float, str]:
    """Factor and unit suffix for the y axis: percent for relative overheads, else µs / ms / bytes."""
    if metric is None or metric.kind == "relative":
        return 100.0, "%"
    if metric.metric == "heap":
        return 1 / 1024, " KiB"
    return 1e6, " µs"


def sweep_svg(sweep: SweepResult, width: int = 720, height: int = 400) -> str:
    """Overhead with its interval against the first swept setting; one series per other combination.

    The x axis is logarithmic when every value is positive and they span a factor of ten or more;
    categorical when the values are not numbers. The budget is a dashed line.
    """
    first = sweep.axes[0]
    numbers = first.numeric()
    log_x = numbers is not None and min(numbers) > 0 and max(numbers) / min(numbers) >= 10
    gates = [p.gate(sweep.metric) for p in sweep.points]
    factor, unit = _scale(next((g for g in gates if g is not None), None))
    left, right, top, bottom = 70, 170, 40, 55
    plot_w, plot_h = width - left - right, height - top - bottom

    def x_of(index: int) -> float:
        if numbers is None:
            return left + plot_w * (index + 0.5) / len(first.values)
        value = numbers[index]
        lo, hi = min(numbers), max(numbers)
        if lo == hi:
            return left + plot_w / 2
        span = (math.log(hi) - math.log(lo), math.log(value) - math.log(lo)) if log_x else (hi - lo, value - lo)
        share = span[1] / span[0]
        return left + plot_w * (0.06 + 0.88 * share)  # keep the outermost points off the frame

    finite = [v * factor for g in gates if g is not None for v in (g.overhead, g.ci_low, g.ci_high) if math.isfinite(v)]
    budget_y = sweep.budget.value * factor if sweep.budget is not None else None
    candidates = [*finite, 0.0] + ([budget_y] if budget_y is not None else [])
    y_lo, y_hi = min(candidates), max(candidates)
    pad = (y_hi - y_lo) * 0.08 or 1.0
    y_lo, y_hi = y_lo - pad, y_hi + pad

    def y_of(value: float) -> float:
        clipped = min(max(value, y_lo), y_hi)
        return top + plot_h * (1 - (clipped - y_lo) / (y_hi - y_lo))

    esc = html.escape
    title = f"{sweep.nodeid}: {sweep.metric} overhead by {first.key}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" role="img">',
        f"<title>{esc(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="13" font-weight="bold">{esc(_shorten(title, 80))}</text>',
    ]
    for tick in _nice_ticks(y_lo, y_hi):
        y = y_of(tick)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e0e0e0"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}{esc(unit)}</text>')
    parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y_of(0):.1f}" y2="{y_of(0):.1f}" stroke="#9e9e9e"/>')
    for index, label in enumerate(first.labels):
        x = x_of(index)
        parts.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 18}" text-anchor="middle">{esc(_shorten(label, 14))}</text>'
        )
    axis_title = first.key + (" (log scale)" if log_x else "")
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 12}" text-anchor="middle">{esc(axis_title)}</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#616161"/>')
    if budget_y is not None:
        y = y_of(budget_y)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c44e52" '
            'stroke-dasharray="6 4" stroke-width="1.5"/>'
        )
        parts.append(f'<text x="{left + plot_w - 4}" y="{y - 5:.1f}" text-anchor="end" fill="#c44e52">budget</text>')

    # One series per combination of the other axes, offset a little so intervals do not overlap.
    series: dict[tuple[tuple[str, str], ...], list[tuple[int, SweepPoint]]] = {}
    for point in sweep.points:
        series.setdefault(point.values[1:], []).append((first.labels.index(point.values[0][1]), point))
    offset_step = min(10.0, plot_w / max(1, len(first.values)) / (len(series) + 1))
    for number, (rest, members) in enumerate(series.items()):
        color = _COLORS[number % len(_COLORS)]
        offset = (number - (len(series) - 1) / 2) * offset_step
        line = []
        for index, point in sorted(members, key=lambda m: m[0]):
            gate = point.gate(sweep.metric)
            if gate is None or not math.isfinite(gate.overhead):
                continue
            x = x_of(index) + offset
            low = gate.ci_low * factor if math.isfinite(gate.ci_low) else y_lo
            high = gate.ci_high * factor if math.isfinite(gate.ci_high) else y_hi
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y_of(low):.1f}" y2="{y_of(high):.1f}" '
                f'stroke="{color}" stroke-width="1.5"/>'
            )
            for end in (low, high):
                parts.append(
                    f'<line x1="{x - 4:.1f}" x2="{x + 4:.1f}" y1="{y_of(end):.1f}" y2="{y_of(end):.1f}" '
                    f'stroke="{color}" stroke-width="1.5"/>'
                )
            y = y_of(gate.overhead * factor)
            verdict = point.result.verdict.value
            tip = f"{point.label()}: {gate.format_overhead(gate.overhead)} ({gate.format_interval()}) {verdict}"
            ring = _VERDICT_COLORS.get(verdict, "#455a64")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}" stroke="{ring}" stroke-width="1.5">'
                f"<title>{esc(tip)}</title></circle>"
            )
            line.append(f"{x:.1f},{y:.1f}")
        if len(line) > 1 and numbers is not None:
            parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="{color}" stroke-opacity="0.5"/>')
        legend_y = top + 14 + 18 * number
        name = ", ".join(f"{k}={v}" for k, v in rest) or sweep.metric
        parts.append(f'<rect x="{left + plot_w + 12}" y="{legend_y - 9}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{left + plot_w + 28}" y="{legend_y}">{esc(_shorten(name, 22))}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sweep_page(sweeps: Sequence[SweepResult]) -> str:
    """A self-contained HTML page: per swept test, its chart and its table."""
    body = []
    for sweep in sweeps:
        table = "\n".join(sweep_lines(sweep)[1:])
        body.append(
            f"<section><h2>{html.escape(sweep.nodeid)}</h2>\n{sweep_svg(sweep)}\n<pre>{html.escape(table)}</pre></section>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>otel-overhead sweeps</title>'
        "<style>body{font-family:sans-serif;margin:2em}pre{font-size:12px}</style></head><body>"
        "<h1>Telemetry overhead sweeps</h1>\n" + "\n".join(body) + "\n</body></html>\n"
    )
