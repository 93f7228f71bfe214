"""Where the overhead comes from: the pipeline built up layer by layer, each layer an arm of its own.

Every layer is measured against the same baseline (the OpenTelemetry API with no SDK behind it),
so each row's overhead is the cost of the pipeline up to and including that layer, with its own
interval; what a layer adds is the difference from the row above:

1. SDK, sampling off: the SDK's tracer and sampler run, nothing is recorded;
2. spans recorded, not processed: the configured sampler, no span processor;
3. processor: the configured processor, exporting to a discarding exporter;
4. exporter: the configured exporter (skipped when it is ``none``: the processor layer is the pipeline).

The API itself has no arm: its calls are in the baseline. Its cost is estimated from the spans per
call and a micro-benchmark of the no-op span, and labelled as an estimate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pytest_otel_overhead.formatting import finite_or_none, format_seconds, interval_heading, signed
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.results import MetricResult, TestResult
from pytest_otel_overhead.settings.merge import with_overrides
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.intervals import median

__all__ = ["Explanation", "LayerRow", "explain", "explain_lines", "layer_settings", "noop_span_cost"]


def layer_settings(settings: MeasureSettings) -> list[tuple[str, str, MeasureSettings]]:
    """(key, label, settings) of each layer, in the order the pipeline is built up."""
    pipeline = settings.pipeline
    layers = [
        ("sdk", "SDK, sampling off", with_overrides(settings, sampler="always_off", sample_rate=None)),
        ("record", "spans recorded, not processed", with_overrides(settings, processor="none")),
        (
            "processor",
            f"{pipeline.processor} processor" + (" (spans discarded)" if pipeline.exporter != "none" else ""),
            with_overrides(settings, exporter="none"),
        ),
    ]
    if pipeline.exporter != "none":
        layers.append(("exporter", f"exporter {pipeline.exporter}", settings))
    return layers


@dataclass(frozen=True)
class LayerRow:
    key: str
    label: str
    result: TestResult | None
    metric: str
    adds: float
    """What this layer adds to the row above, on the overhead's scale (fraction or seconds)."""
    adds_per_call_s: float
    per_span_s: float

    @property
    def gate(self) -> MetricResult | None:
        return None if self.result is None else self.result.metric(self.metric)

    def as_dict(self) -> dict[str, object]:
        gate = self.gate
        return {
            "layer": self.key,
            "label": self.label,
            "pipeline": None if self.result is None else self.result.settings.pipeline.as_dict(),
            "overhead": None if gate is None else finite_or_none(gate.overhead),
            "ci_low": None if gate is None else finite_or_none(gate.ci_low),
            "ci_high": None if gate is None else finite_or_none(gate.ci_high),
            "overhead_kind": None if gate is None else gate.kind,
            "adds": finite_or_none(self.adds),
            "adds_per_call_s": finite_or_none(self.adds_per_call_s),
            "per_span_s": finite_or_none(self.per_span_s),
            "pairs": None if self.result is None else self.result.pairs,
        }


@dataclass(frozen=True)
class Explanation:
    nodeid: str
    metric: str
    pipeline: str
    baseline_per_call_s: float
    rows: tuple[LayerRow, ...]
    spans_by_name: tuple[tuple[str, float], ...]
    api_span_cost_s: float = math.nan

    @property
    def spans_per_call(self) -> float:
        return sum(per_call for _, per_call in self.spans_by_name)

    @property
    def api_estimate_s(self) -> float:
        return self.spans_per_call * self.api_span_cost_s

    def as_dict(self) -> dict[str, object]:
        return {
            "nodeid": self.nodeid,
            "metric": self.metric,
            "pipeline": self.pipeline,
            "baseline_per_call_s": finite_or_none(self.baseline_per_call_s),
            "api": {
                "noop_span_cost_s": finite_or_none(self.api_span_cost_s),
                "estimated_per_call_s": finite_or_none(self.api_estimate_s),
                "estimated": True,
            },
            "layers": [row.as_dict() for row in self.rows],
            "spans_per_call_by_name": dict(self.spans_by_name),
        }


def noop_span_cost(router: ArmRouter, spans: int = 20_000, repeats: int = 5) -> float:
    """CPU seconds per no-op span through an idle router, as the baseline's spans are made."""
    if not router.idle:
        return math.nan
    tracer = router.get_tracer("pytest_otel_overhead.advice.explain")
    costs = []
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(spans):
            with tracer.start_as_current_span("noop"):
                pass
        costs.append((time.process_time() - start) / spans)
    return median(costs)


def explain(
    nodeid: str,
    settings: MeasureSettings,
    measure_at: Callable[[MeasureSettings, str], TestResult],
    *,
    full: TestResult | None = None,
    api_span_cost: float = math.nan,
    progress: Callable[[str], None] | None = None,
) -> Explanation:
    """Measure each layer (reusing ``full``, the test's own measurement, for the complete pipeline)."""
    say = progress or (lambda message: None)
    metric = settings.metric
    measured: list[tuple[str, str, TestResult]] = []
    for key, label, layer in layer_settings(settings):
        reuse = next((r for _, _, r in measured if r.settings.pipeline == layer.pipeline), None)
        if reuse is None and full is not None and layer.pipeline == full.settings.pipeline:
            reuse = full
        if reuse is None:
            say(f"explain {nodeid}: measuring layer {label}")
            reuse = measure_at(layer, f"{nodeid}[layer {key}]")
        measured.append((key, label, reuse))
    rows = _rows(measured, metric)
    last = measured[-1][2]
    health = (full or last).health
    by_name: tuple[tuple[str, float], ...] = ()
    if health is not None and health.calls:
        by_name = tuple((name, count / health.calls) for name, count in health.by_name)
    gate = (full or last).metric(metric)
    return Explanation(
        nodeid=nodeid,
        metric=metric,
        pipeline=settings.pipeline.describe(),
        baseline_per_call_s=gate.baseline if gate is not None else math.nan,
        rows=tuple(rows),
        spans_by_name=by_name,
        api_span_cost_s=api_span_cost,
    )


def _rows(measured: Sequence[tuple[str, str, TestResult]], metric: str) -> list[LayerRow]:
    rows = []
    previous = 0.0
    for key, label, result in measured:
        gate = result.metric(metric)
        overhead = gate.overhead if gate is not None else math.nan
        adds = overhead - previous
        relative = gate is not None and gate.kind == "relative"
        adds_per_call = adds * gate.baseline if gate is not None and relative else adds
        health = result.health
        # The SDK layer's cost is spread over every span started; the later layers' over the sampled ones.
        spans = math.nan
        if health is not None:
            spans = health.per_call(health.started if key == "sdk" else health.sampled)
        per_span = adds_per_call / spans if spans and math.isfinite(spans) and spans > 0 else math.nan
        rows.append(LayerRow(key, label, result, metric, adds, adds_per_call, per_span))
        if math.isfinite(overhead):
            previous = overhead
    return rows


def explain_lines(explanation: Explanation, top: int = 8) -> list[str]:
    """The layers as a table, then the spans per call by name."""
    lines = [f"{explanation.nodeid}  overhead by layer ({explanation.metric}; {explanation.pipeline})"]
    levels = interval_heading(row.gate.confidence for row in explanation.rows if row.gate is not None)
    header = ["layer", "overhead", levels, "adds", "adds/call", "per span"]
    api = "-"
    if math.isfinite(explanation.api_estimate_s) and explanation.spans_per_call > 0:
        api = f"≈{format_seconds(explanation.api_estimate_s)} (est.)"
    baseline = (
        format_seconds(explanation.baseline_per_call_s) if math.isfinite(explanation.baseline_per_call_s) else "-"
    )
    rows = [header, ["API, no SDK (baseline " + baseline + "/call)", "0", "-", "-", api, "-"]]
    for row in explanation.rows:
        gate = row.gate
        relative = gate is not None and gate.kind == "relative"
        rows.append(
            [
                row.label,
                gate.format_overhead(gate.overhead) if gate is not None and math.isfinite(gate.overhead) else "-",
                gate.format_interval() if gate is not None else "-",
                (f"{row.adds * 100:+.1f} pts" if relative else f"{row.adds:+.3g}") if math.isfinite(row.adds) else "-",
                _signed_seconds(row.adds_per_call_s),
                _signed_seconds(row.per_span_s),
            ]
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    lines += ["    " + "  ".join(cell.ljust(widths[c]) for c, cell in enumerate(r)).rstrip() for r in rows]
    if explanation.spans_by_name:
        shown = explanation.spans_by_name[:top]
        named = ", ".join(f"{name}: {per_call:.3g}" for name, per_call in shown)
        more = (
            f" (and {len(explanation.spans_by_name) - top} more names)" if len(explanation.spans_by_name) > top else ""
        )
        lines.append(f"    spans per call: {named}{more}")
    return lines


def _signed_seconds(value: float) -> str:
    """A cell of the layer table: a signed duration, or ``-`` when there is none."""
    return signed(value, format_seconds) if math.isfinite(value) else "-"
