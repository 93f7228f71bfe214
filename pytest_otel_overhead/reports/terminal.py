"""Human-readable results: verdict lines for failures and warnings, and the terminal summary table.

Figures print as everywhere else (``formatting``): intervals as ``[low, high]``, a missing figure as
``NO_FIGURE``. Relative and absolute overheads never share a column: a test's table has a block
headed ``overhead %`` and, when a budget is absolute, one headed ``overhead/call``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pytest_otel_overhead.formatting import NO_FIGURE, format_bytes, format_seconds
from pytest_otel_overhead.results import (
    AGAINST_ARMS_NOTE,
    FAILED_EXPORTS,
    METRIC_LABELS,
    NO_TELEMETRY,
    MetricResult,
    TestResult,
)
from pytest_otel_overhead.settings.origin import Source, SourceKind
from pytest_otel_overhead.stats.verdict import Verdict

__all__ = [
    "budget_origin",
    "budgets_phrase",
    "health_line",
    "metric_sentence",
    "outcome_label",
    "outcome_lines",
    "overhead_heading",
    "result_message",
    "summary_lines",
    "verdict_label",
]


def outcome_label(result: TestResult) -> str:
    """``PASS``, ``FAIL``, ``INCONCLUSIVE`` or ``NO TELEMETRY``, as people read it."""
    return result.outcome.replace("_", " ")


def outcome_lines(result: TestResult) -> list[str]:
    """Why no telemetry was measured, and what in the surroundings affected the figures."""
    lines = [f"no telemetry measured: {result.no_telemetry}"] if result.no_telemetry is not None else []
    if result.failed_exports is not None:
        lines.append(f"failed exports: {result.failed_exports}")
    return lines + [f"note: {note}" for note in result.notes]


def metric_sentence(metric: MetricResult) -> str:
    """``CPU overhead +7.3% (95% CI [+6.1%, +8.4%]) exceeds budget 5.0%``, and the like for each verdict."""
    assert metric.budget is not None
    if math.isnan(metric.overhead):  # not measured, e.g. a time budget in instructions mode
        figures = "not measured"
    else:
        per_call = "" if metric.kind == "relative" else " per call"
        figures = f"{metric.format_overhead(metric.overhead)}{per_call} (95% CI {metric.format_interval()})"
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
    elif result.processes > 1:
        parts.append(f"{result.pairs} pairs over {result.processes} processes in {result.duration_s:.1f} s")
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
        + (f" ({h.loss_breakdown()})" if h.dropped else "")
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


def verdict_label(result: TestResult) -> str:
    """``FAIL``, or ``FAIL (max_dropped 0)`` when what decided the verdict is not the gate metric;
    ``NO TELEMETRY`` when the instrumented arm recorded nothing.

    The gate metric (CPU unless ``metric`` says otherwise; in instructions mode the instruction
    count, which carries the CPU budget) is what a reader expects a verdict to be about; any other
    budget behind a FAIL or INCONCLUSIVE is named next to it.
    """
    if result.outcome != result.verdict.value:  # NO TELEMETRY, FAILED EXPORTS: whatever the budgets say
        return outcome_label(result)
    verdict = result.verdict
    if verdict is Verdict.PASS:
        return str(verdict)
    gates = {result.settings.metric, "instructions"}
    reasons = [m.label for m in result.budgeted if m.verdict is verdict and m.metric not in gates]
    health = result.health
    if verdict is Verdict.FAIL and health is not None and health.over_budget:
        reasons.append(f"max_dropped {health.max_dropped}")
    return f"{verdict.value} ({', '.join(reasons)})" if reasons else verdict.value


def budget_origin(source: Source) -> str:
    """Where a budget came from, short: ``default``, ``marker``, ``--otel-overhead-budget``, ``ini …``."""
    return "marker" if source.kind is SourceKind.MARKER else source


def budgets_phrase(result: TestResult) -> str:
    """``budget CPU 5.0% (default)``: every budget that applied, with where it came from."""
    settings = result.settings
    budgets = [
        f"{METRIC_LABELS.get(name, name)} {budget.describe(name)} ({budget_origin(settings.source(name))})"
        for name, budget in settings.budgets
    ]
    if not budgets:
        return "no budget"
    return ("budget " if len(budgets) == 1 else "budgets ") + ", ".join(budgets)


def overhead_heading(kind: str) -> str:
    """The heading of an overhead column: relative figures and per-call ones never share one."""
    return "overhead %" if kind == "relative" else "overhead/call"


def _row(metric: MetricResult) -> list[str]:
    return [
        metric.label,
        metric.format_value(metric.baseline) if math.isfinite(metric.baseline) else NO_FIGURE,
        metric.format_value(metric.instrumented) if math.isfinite(metric.instrumented) else NO_FIGURE,
        metric.format_estimate(),
        metric.format_interval(),
        metric.budget.describe(metric.metric) if metric.budget else NO_FIGURE,
        metric.verdict.value if metric.verdict else NO_FIGURE,
    ]


def _table(metrics: Sequence[MetricResult]) -> list[str]:
    """The metrics' rows, one block per kind of overhead (relative, absolute), each with its header."""
    kinds = list(dict.fromkeys(m.kind for m in metrics))
    blocks = [
        [["metric", "baseline/call", "instrumented/call", overhead_heading(kind), "95% CI", "budget", "verdict"]]
        + [_row(m) for m in metrics if m.kind == kind]
        for kind in kinds
    ]
    rows = [row for block in blocks for row in block]
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    return ["    " + "  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row)).rstrip() for row in rows]


def summary_lines(results: Sequence[TestResult], verbose: bool = False) -> list[str]:
    """The summary: per test its verdict and budgets, the setup, then a row per budgeted metric (every one in -v)."""
    lines: list[str] = []
    for result in results:
        lines.append(f"{result.nodeid}  {verdict_label(result)}  {budgets_phrase(result)}")
        lines.append(f"    {_context(result)}")
        shown = (
            result.metrics
            if verbose
            else tuple(m for m in result.metrics if m.verdict is not None or m.metric == "wall")
        )
        if shown:
            displayed = [m.for_display() for m in shown]
            lines += _table(displayed)
            if any(m.against_arms for m in displayed):
                lines.append(f"    {AGAINST_ARMS_NOTE}")
        for m in result.metrics:
            if m.note and (m.verdict in (Verdict.FAIL, Verdict.INCONCLUSIVE) or (verbose and m.verdict is None)):
                lines.append(f"    {m.label}: {m.note}")
        health = health_line(result)
        if health is not None:
            lines.append("    " + health)
        lines += ["    " + line for line in outcome_lines(result)]
    counts = {v: sum(1 for r in results if r.outcome == v.value) for v in Verdict}
    nothing = sum(1 for r in results if r.outcome == NO_TELEMETRY)
    failed = sum(1 for r in results if r.outcome == FAILED_EXPORTS)
    lines.append(
        f"{len(results)} measured: {counts[Verdict.PASS]} PASS, {counts[Verdict.FAIL]} FAIL, "
        f"{counts[Verdict.INCONCLUSIVE]} INCONCLUSIVE"
        + (f", {nothing} NO TELEMETRY" if nothing else "")
        + (f", {failed} FAILED EXPORTS" if failed else "")
    )
    return lines
