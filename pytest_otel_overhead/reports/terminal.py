"""Human-readable results: verdict lines for failures and warnings, and the terminal summary table."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pytest_otel_overhead.formatting import format_bytes, format_seconds, percent
from pytest_otel_overhead.results import NO_TELEMETRY, MetricResult, TestResult
from pytest_otel_overhead.verdict import Verdict

__all__ = ["health_line", "metric_sentence", "outcome_label", "outcome_lines", "result_message", "summary_lines"]


def outcome_label(result: TestResult) -> str:
    """``PASS``, ``FAIL``, ``INCONCLUSIVE`` or ``NO TELEMETRY``, as people read it."""
    return result.outcome.replace("_", " ")


def outcome_lines(result: TestResult) -> list[str]:
    """Why no telemetry was measured, and what in the surroundings affected the figures."""
    lines = [f"no telemetry measured: {result.no_telemetry}"] if result.no_telemetry is not None else []
    return lines + [f"note: {note}" for note in result.notes]


def metric_sentence(metric: MetricResult) -> str:
    """``CPU overhead 7.3% (95% CI 6.1–8.4%) exceeds budget 5.0%``, and the like for each verdict."""
    assert metric.budget is not None
    if math.isnan(metric.overhead):  # not measured, e.g. a time budget in instructions mode
        figures = "not measured"
    elif metric.kind == "relative":
        figures = f"{percent(metric.overhead)} (95% CI {percent(metric.ci_low)}–{percent(metric.ci_high)})"
    else:
        figures = f"{metric.format_overhead(metric.overhead)} per call (95% CI {metric.format_interval()})"
    budget = metric.budget.describe(metric.metric)
    relation = {
        Verdict.FAIL: "exceeds budget",
        Verdict.PASS: "within budget",
        Verdict.INCONCLUSIVE: "undecided against budget",
    }[metric.verdict or Verdict.INCONCLUSIVE]
    sentence = f"{metric.label} overhead {figures} {relation} {budget}"
    if metric.note:
        sentence += f" ({metric.note})"
    return sentence


def _context(result: TestResult) -> str:
    parts = [result.settings.pipeline.describe()]
    gate = result.metric(result.settings.metric)
    if gate is not None and math.isfinite(gate.baseline):
        parts.append(
            f"baseline {format_seconds(gate.baseline)}/call, instrumented {format_seconds(gate.instrumented)}/call"
        )
    if result.health is not None:
        h = result.health
        parts.append(f"{h.per_call(h.started):.3g} spans/call, {h.dropped} dropped")
    if result.mode == "instructions":
        counted = result.metric("instructions")
        if counted is not None and math.isfinite(counted.baseline):
            parts.append(
                f"baseline {counted.format_value(counted.baseline)} instructions/call, "
                f"instrumented {counted.format_value(counted.instrumented)}/call"
            )
        parts.append(f"instructions mode: {result.pairs} processes under valgrind in {result.duration_s:.1f} s")
    else:
        parts.append(f"{result.pairs} pairs in {result.duration_s:.1f} s")
    return "; ".join(parts)


def result_message(result: TestResult, verdict: Verdict) -> str:
    """The budgets with ``verdict``, one sentence each, then the settings and figures behind them."""
    sentences = [metric_sentence(m) for m in result.budgeted if m.verdict is verdict]
    if verdict is Verdict.FAIL and result.health is not None and result.health.over_budget:
        sentences.append(result.health.budget_sentence())
    return "; ".join(sentences) + " — " + _context(result)


def health_line(result: TestResult) -> str | None:
    """One compact line of pipeline health from the diagnostic round, or ``None`` without one."""
    h = result.health
    if h is None or not h.calls:
        return None
    parts = [
        f"spans/call {h.per_call(h.started):.3g} started, {h.per_call(h.sampled):.3g} sampled, "
        f"{h.per_call(h.exported):.3g} exported, {h.dropped} dropped of {h.calls} calls"
        + (f" (queue full {h.dropped_by_queue}, failed exports {h.spans_failed})" if h.dropped else "")
    ]
    exports = f"{h.export_calls} exports"
    if h.export_failures:
        exports += f", {h.export_failures} failed"
    if h.export_latency_p50 is not None and h.export_latency_p95 is not None:
        exports += f", p50 {format_seconds(h.export_latency_p50)} p95 {format_seconds(h.export_latency_p95)}"
    if h.export_cpu_s:
        exports += f", {format_seconds(h.per_call(h.export_cpu_s))} CPU/call"
    parts.append(exports)
    if h.backend_rejected:
        parts.append(f"backend answered 503 to {h.backend_rejected} of {h.backend_requests} requests")
    if h.bytes_sent is not None:
        sent = f"{format_bytes(h.per_call(h.bytes_sent))}/call sent"
        ratio = h.compression_ratio
        if ratio is not None and h.bytes_uncompressed != h.bytes_sent:
            sent += f" (compressed ×{ratio:.1f})"
        parts.append(sent)
    if h.queue_peak is not None and h.queue_capacity is not None:
        parts.append(f"queue peak {h.queue_peak}/{h.queue_capacity}")
    if h.metric_points:
        parts.append(f"{h.metric_points} metric points")
    if h.extra_threads is not None:
        parts.append(f"{h.extra_threads:+d} threads")
    if h.max_dropped is not None:
        parts.append(f"max_dropped {h.max_dropped}: {'FAIL' if h.over_budget else 'PASS'}")
    return "pipeline: " + "; ".join(parts)


def _row(result: TestResult, metric: MetricResult) -> list[str]:
    return [
        metric.label,
        metric.format_value(metric.baseline) if math.isfinite(metric.baseline) else "-",
        metric.format_value(metric.instrumented) if math.isfinite(metric.instrumented) else "-",
        metric.format_overhead(metric.overhead) if math.isfinite(metric.overhead) else "-",
        metric.format_interval(),
        metric.budget.describe(metric.metric) if metric.budget else "-",
        metric.verdict.value if metric.verdict else "-",
    ]


def summary_lines(results: Sequence[TestResult], verbose: bool = False) -> list[str]:
    """The summary table: per test its verdict, then a row per budgeted metric (every metric in -v)."""
    header = ["metric", "baseline/call", "instrumented/call", "overhead", "95% CI", "budget", "verdict"]
    lines: list[str] = []
    for result in results:
        lines.append(f"{result.nodeid}  {outcome_label(result)}  ({_context(result)})")
        shown = (
            result.metrics
            if verbose
            else tuple(m for m in result.metrics if m.verdict is not None or m.metric == "wall")
        )
        rows = [header] + [_row(result, m) for m in shown]
        widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
        for row in rows:
            lines.append("    " + "  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row)).rstrip())
        for m in result.metrics:
            if m.note and (m.verdict in (Verdict.FAIL, Verdict.INCONCLUSIVE) or (verbose and m.verdict is None)):
                lines.append(f"    {m.label}: {m.note}")
        health = health_line(result)
        if health is not None:
            lines.append("    " + health)
        lines += ["    " + line for line in outcome_lines(result)]
    counts = {v: sum(1 for r in results if r.outcome == v.value) for v in Verdict}
    nothing = sum(1 for r in results if r.outcome == NO_TELEMETRY)
    lines.append(
        f"{len(results)} measured: {counts[Verdict.PASS]} PASS, {counts[Verdict.FAIL]} FAIL, "
        f"{counts[Verdict.INCONCLUSIVE]} INCONCLUSIVE" + (f", {nothing} NO TELEMETRY" if nothing else "")
    )
    return lines
