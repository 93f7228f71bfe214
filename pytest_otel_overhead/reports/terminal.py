"""Human-readable results: verdict lines for failures and warnings, and the terminal summary table.

Figures print as everywhere else (``formatting``): intervals as ``[low, high]``, a missing figure as
``NO_FIGURE``. Relative and absolute overheads never share a column: a test's table has a block
headed ``overhead %`` and, when a budget is absolute, one headed ``overhead/call``.
"""

from __future__ import annotations

import functools
import math
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Iterable, Sequence

from pytest_otel_overhead.formatting import (
    NO_FIGURE,
    format_bytes,
    format_seconds,
    interval_heading,
)
from pytest_otel_overhead.results import (
    AGAINST_ARMS_NOTE,
    FAILED_EXPORTS,
    METRIC_LABELS,
    NO_TELEMETRY,
    MetricResult,
    TestResult,
)
from pytest_otel_overhead.settings.origin import Source, SourceKind
from pytest_otel_overhead.stats.process_term import TermSource
from pytest_otel_overhead.stats.verdict import Verdict

__all__ = [
    "budget_origin",
    "budgets_phrase",
    "command_width",
    "headline",
    "health_line",
    "metric_sentence",
    "outcome_label",
    "outcome_lines",
    "overhead_heading",
    "result_message",
    "summary_lines",
    "verdict_label",
    "wrap",
    "wrap_lines",
]

DEFAULT_WIDTH = 120
"""The width of the summary when the terminal's is not known (a CI log)."""
PAIRED_MARK = "†"
PAIRED_NOTE = (
    "† paired estimate: the median over pairs of blocks, not the difference of the two arms' figures beside it; "
    "the two differ when calls vary much from block to block"
)
# Columns a narrow terminal does without, first to last (instrumented/call, baseline/call, the interval), by
# their place in a table's header; metric, overhead, budget and verdict stay.
_DROPPED_FIRST = (2, 1, 4)


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
    """``CPU overhead +7.3% (95% CI [+6.1%, +8.4%]) exceeds budget 5.0%``, and the like for each verdict, at the
    interval's own confidence."""
    assert metric.budget is not None
    if math.isnan(metric.overhead):  # not measured, e.g. a time budget in instructions mode
        figures = "not measured"
    else:
        per_call = "" if metric.kind == "relative" else " per call"
        level = interval_heading([metric.confidence])
        figures = f"{metric.format_overhead(metric.overhead)}{per_call} ({level} {metric.format_interval()})"
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


def _context(result: TestResult, pipeline: str | None = None) -> str:
    """The setup and figures behind a verdict; ``pipeline``: the settings' pipeline described, when known."""
    parts = [result.settings.pipeline.describe() if pipeline is None else pipeline]
    gate = result.metric(result.settings.metric)
    if gate is not None and math.isfinite(gate.baseline):
        parts.append(
            f"baseline {format_seconds(gate.baseline)}/call, instrumented {format_seconds(gate.instrumented)}/call"
        )
    if result.health is not None:
        h = result.health
        parts.append(f"{h.per_call(h.started):.3g} spans/call, {h.dropped} dropped")
    if result.mode == "instructions":
        # The table shows the gate, estimated cycles; instructions alone go beside it here.
        counted = result.metric("instructions")
        if counted is not None and math.isfinite(counted.baseline):
            parts.append(
                f"instructions {counted.format_value(counted.baseline)} → {counted.format_value(counted.instrumented)}"
                f"/call, {counted.format_overhead(counted.overhead)} {counted.format_interval()}"
            )
        parts.append(f"instructions mode: {result.pairs} processes under valgrind in {result.duration_s:.1f} s")
    elif result.processes > 1:
        parts.append(f"{result.pairs} pairs over {result.processes} processes in {result.duration_s:.1f} s")
    else:
        parts.append(f"{result.pairs} pairs in {result.duration_s:.1f} s")
    if result.mode != "instructions" and gate is not None and gate.between_process_spread is not None:
        spread = gate.format_overhead(gate.between_process_spread).lstrip("+")
        source = gate.between_process_source
        where = "" if source is None or source is TermSource.MEASURED else f", {source} prior"
        parts.append(f"{gate.label} between processes ±{spread} (τ{where})")
    return "; ".join(parts)


def _headline_part(metric: MetricResult) -> str:
    assert metric.budget is not None
    budget = metric.budget.describe(metric.metric)
    if math.isnan(metric.overhead):
        return f"{metric.label} not measured, budget {budget}"
    relation = {Verdict.FAIL: ">", Verdict.PASS: "<="}.get(metric.verdict or Verdict.INCONCLUSIVE, "undecided vs")
    return f"{metric.label} {metric.format_overhead(metric.overhead)} {relation} budget {budget}"


def headline(result: TestResult, verdict: Verdict) -> str:
    """``CPU +39.2% > budget 5.0%``: the budgets with ``verdict`` and their figures, short, for ``-r``'s one line."""
    parts = [_headline_part(m) for m in result.budgeted if m.verdict is verdict]
    health = result.health
    if verdict is Verdict.FAIL and health is not None and health.over_budget:
        parts.append(f"{health.dropped} spans dropped > max_dropped {health.max_dropped}")
    return ", ".join(parts)


def result_message(result: TestResult, verdict: Verdict) -> str:
    """The headline on the first line (what ``-r`` shows), then each budget with ``verdict`` in a sentence,
    and the settings and figures behind them."""
    sentences = [metric_sentence(m) for m in result.budgeted if m.verdict is verdict]
    if verdict is Verdict.FAIL and result.health is not None and result.health.over_budget:
        sentences.append(result.health.budget_sentence())
    return headline(result, verdict) + "\n" + "; ".join(sentences) + " — " + _context(result)


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

    The gate metric (CPU unless ``metric`` says otherwise; in instructions mode the estimated
    cycles, which carry the CPU budget) is what a reader expects a verdict to be about; any other
    budget behind a FAIL or INCONCLUSIVE is named next to it.
    """
    if result.outcome != result.verdict.value:  # NO TELEMETRY, FAILED EXPORTS: whatever the budgets say
        return outcome_label(result)
    verdict = result.verdict
    if verdict is Verdict.PASS:
        return str(verdict)
    gates = {result.settings.metric, "cycles", "instructions"}
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


def adds_up(metric: MetricResult) -> bool:
    """Whether the overhead shown is near what the two arms' figures beside it give: within a quarter of
    it, or within 2% of the baseline.

    The estimate is the median over pairs of blocks (of differences, or of ratios); the arms' figures
    are each arm's own median or percentile. Where calls vary much the two part, and the table says so.
    """
    base, instrumented, estimate = metric.baseline, metric.instrumented, metric.overhead
    if not (math.isfinite(base) and math.isfinite(instrumented) and math.isfinite(estimate)) or metric.against_arms:
        return True
    if metric.kind == "relative":
        if base <= 0:
            return True
        arms, scale = instrumented / base - 1, 1.0
    else:
        arms, scale = instrumented - base, abs(base)
    apart = abs(estimate - arms)
    return apart <= 0.25 * max(abs(estimate), abs(arms)) or apart <= 0.02 * scale


def _row(metric: MetricResult, outcome: str | None = None) -> list[str]:
    return [
        metric.label,
        metric.format_value(metric.baseline) if math.isfinite(metric.baseline) else NO_FIGURE,
        metric.format_value(metric.instrumented) if math.isfinite(metric.instrumented) else NO_FIGURE,
        metric.format_estimate() + ("" if adds_up(metric) else PAIRED_MARK),
        metric.format_interval(),
        metric.budget.describe(metric.metric) if metric.budget else NO_FIGURE,
        NO_FIGURE if metric.verdict is None else outcome or metric.verdict.value,
    ]


def _table(metrics: Sequence[MetricResult], width: int = DEFAULT_WIDTH, outcome: str | None = None) -> list[str]:
    """The metrics' rows, one block per kind of overhead (relative, absolute), each with its header.

    ``outcome`` stands in the verdict column of every budget instead of its verdict (``NO TELEMETRY``).
    Wider than ``width``, the table drops the arms' figures, then the interval, and says which.
    """
    kinds = list(dict.fromkeys(m.kind for m in metrics))
    levels = interval_heading(m.confidence for m in metrics)  # a test's intervals share its confidence
    rows: list[list[str]] = []
    for kind in kinds:
        rows.append(
            ["metric", "baseline/call", "instrumented/call", overhead_heading(kind), levels, "budget", "verdict"]
        )
        rows += [_row(m, outcome) for m in metrics if m.kind == kind]
    kept = list(range(len(rows[0])))
    dropped: list[str] = []
    lines = _aligned(rows, kept)
    for column in _DROPPED_FIRST:
        if max(map(len, lines)) <= width:
            break
        kept.remove(column)
        dropped.append(rows[0][column])
        lines = _aligned(rows, kept)
    if dropped:
        lines.append(f"    ({', '.join(dropped)} left out to fit {width} columns; the JSON report has them)")
    return lines


def _aligned(rows: Sequence[Sequence[str]], columns: Sequence[int]) -> list[str]:
    cells = [[row[c] for c in columns] for row in rows] if len(columns) < len(rows[0]) else rows
    widths = [max(map(len, column)) for column in zip(*cells, strict=True)]
    return ["    " + "  ".join([cell.ljust(w) for cell, w in zip(row, widths, strict=True)]).rstrip() for row in cells]


def wrap(line: str, width: int, indent: str = "    ") -> list[str]:
    """``line`` (indented by ``indent``) in lines of at most ``width``; continuations indented two more.

    Words longer than the width (a test id) stay whole rather than break mid-word, and a figure
    stays with its unit (``12.3 µs``).
    """
    plain = line.isprintable() and line == line.strip()
    if line and len(indent) + len(line) <= max(width, 40) and plain:
        return [indent + line]  # what textwrap makes of a short line of plain spaces, without its cost
    kept = _FIGURE_AND_UNIT.sub("\u00a0", line)  # textwrap breaks at ASCII spaces only
    if line and plain and "  " not in line:
        return [wrapped.replace("\u00a0", " ") for wrapped in _fill(kept, max(width, 40), indent)]
    lines = textwrap.wrap(
        kept,
        width=max(width, 40),
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [wrapped.replace("\u00a0", " ") for wrapped in lines] or [indent.rstrip()]


def wrap_lines(lines: Iterable[str], width: int) -> list[str]:
    """Each of ``lines`` wrapped by :func:`wrap` to ``width``, under its own indentation."""
    wrapped: list[str] = []
    for line in lines:
        text = line.lstrip(" ")
        wrapped += wrap(text, width, indent=line[: len(line) - len(text)])
    return wrapped


def command_width() -> int:
    """The width a command of ``python -m pytest_otel_overhead`` prints to, as pytest finds its own: the
    terminal's or ``$COLUMNS``; ``DEFAULT_WIDTH`` when neither is there (a pipe, a CI log)."""
    if "COLUMNS" in os.environ or sys.stdout.isatty():
        return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    return DEFAULT_WIDTH


def _fill(text: str, width: int, indent: str) -> list[str]:
    """What ``textwrap.wrap`` makes of ``text``, words joined by single spaces (no long word broken): each line
    as many words as fit, a longer word alone; a line at a time, by a pattern, rather than textwrap's chunks."""
    first, rest = _line_pattern(width - len(indent)), _line_pattern(width - len(indent) - 2)
    line = first.match(text)
    assert line is not None  # a word (no space) always matches
    lines = [indent + line[0]]
    at = line.end() + 1  # past the space between lines
    while at < len(text):
        line = rest.match(text, at)
        assert line is not None
        lines.append(indent + "  " + line[0])
        at = line.end() + 1
    return lines


@functools.cache
def _line_pattern(room: int) -> re.Pattern[str]:
    """The longest run of whole words within ``room`` characters, or one longer word alone."""
    return re.compile(rf"(?:.{{1,{max(room, 1)}}}(?= |$)|[^ ]+)")


_FIGURE_AND_UNIT = re.compile(r"(?<=\d) (?=(?:ns|µs|ms|s|B|KiB|MiB|GiB|k|M|G|instructions|estimated)\b)")


def summary_lines(results: Sequence[TestResult], verbose: bool = False, width: int = DEFAULT_WIDTH) -> list[str]:
    """The summary: per test its verdict and budgets, the setup, then a row per budgeted metric (every one in -v).

    Every line fits ``width`` columns, but a word (a test id) longer than that.
    """
    lines: list[str] = []
    # Per settings record (the tests of a suite share one, read once): its budgets and pipeline in words.
    described: dict[int, tuple[str, str]] = {}
    for result in results:
        said = described.get(id(result.settings))
        if said is None:
            said = described[id(result.settings)] = (budgets_phrase(result), result.settings.pipeline.describe())
        lines += wrap(f"{result.nodeid}  {verdict_label(result)}  {said[0]}", width, indent="")
        lines += wrap(_context(result, said[1]), width)
        lines += _metric_lines(result, verbose, width)
        health = health_line(result)
        if health is not None:
            lines += wrap(health, width)
        for line in outcome_lines(result):
            lines += wrap(line, width)
    outcomes = [r.outcome for r in results]  # once each: a merged run has thousands
    counts = {v: outcomes.count(v.value) for v in Verdict}
    nothing = outcomes.count(NO_TELEMETRY)
    failed = outcomes.count(FAILED_EXPORTS)
    lines.append(
        f"{len(results)} measured: {counts[Verdict.PASS]} PASS, {counts[Verdict.FAIL]} FAIL, "
        f"{counts[Verdict.INCONCLUSIVE]} INCONCLUSIVE"
        + (f", {nothing} NO TELEMETRY" if nothing else "")
        + (f", {failed} FAILED EXPORTS" if failed else "")
    )
    return lines


def _metric_lines(result: TestResult, verbose: bool, width: int) -> list[str]:
    """The table of metrics, its footnotes, then the notes on undecided or failed budgets."""
    lines: list[str] = []
    shown = (
        result.metrics if verbose else tuple(m for m in result.metrics if m.verdict is not None or m.metric == "wall")
    )
    if shown:
        displayed = [m.for_display() for m in shown]
        # The arms ran the same code: a budget that measured nothing shows no PASS (the JSON keeps the verdict).
        lines += _table(displayed, width, outcome_label(result) if result.no_telemetry is not None else None)
        if any(m.against_arms for m in displayed):
            lines += wrap(AGAINST_ARMS_NOTE, width)
        if not all(adds_up(m) for m in displayed):
            lines += wrap(PAIRED_NOTE, width)
    for m in result.metrics:
        if m.note and (m.verdict in (Verdict.FAIL, Verdict.INCONCLUSIVE) or (verbose and m.verdict is None)):
            lines += wrap(f"{m.label}: {m.note}", width)
    return lines
