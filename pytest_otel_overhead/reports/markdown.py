"""The Markdown summary: what CI shows on a pull request or in GitHub's job summary.

Test ids and parameters are user text: every cell is escaped so that ``|``, ``*``, ``<script>``
and the like show as written instead of breaking the table or turning into markup, and control
characters (ESC, BEL, a newline) show as ``\\x1b``, ``\\x07``, ``\\n`` (``formatting.visible``). Relative and
per-call overheads have a column each; a report with only one kind has only that column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_otel_overhead.formatting import (
    NO_FIGURE,
    interval,
    interval_heading,
    percentage_points,
    signed_percent_or_dash,
    visible,
)
from pytest_otel_overhead.history.compare import Comparison, describe_run
from pytest_otel_overhead.history.store import RunRecord
from pytest_otel_overhead.reports.columns import overhead_columns
from pytest_otel_overhead.reports.terminal import budget_origin, outcome_lines, verdict_label
from pytest_otel_overhead.results import (
    AGAINST_ARMS_NOTE,
    FAILED_EXPORTS,
    NO_TELEMETRY,
    OTHER_OUTCOMES,
    MetricResult,
    TestResult,
)
from pytest_otel_overhead.stats.verdict import Verdict

__all__ = [
    "budget_cell",
    "escape",
    "headline_metrics",
    "markdown_report",
    "run_facts",
    "unmeasured_lines",
]

VERDICT_MARKS = {Verdict.PASS: "✅", Verdict.FAIL: "❌", Verdict.INCONCLUSIVE: "⚠️"}
OUTCOME_MARKS = {**{v.value: mark for v, mark in VERDICT_MARKS.items()}, NO_TELEMETRY: "🚫", FAILED_EXPORTS: "🚫"}
CHANGE_MARKS = {Verdict.FAIL: "❌ regressed", Verdict.PASS: "✅ ok", Verdict.INCONCLUSIVE: "⚠️ undecided"}
_MARKDOWN_SPECIAL = "\\`*_[]|~#!$"
# html.escape(quote=False) and then a backslash before each special character, in one pass: the entities it
# writes hold no special character.
_ESCAPED = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", **{c: "\\" + c for c in _MARKDOWN_SPECIAL}})


def escape(text: str) -> str:
    """Text shown as written inside Markdown (GitHub flavour), table cells included; controls shown escaped."""
    return visible(text).translate(_ESCAPED)


def headline_metrics(result: TestResult) -> tuple[MetricResult, ...]:
    """The metrics a summary shows for a test, as tables show them: its budgeted ones, else CPU."""
    if result.budgeted:
        return tuple(m.for_display() for m in result.budgeted)
    cpu = result.metric("cpu")
    return tuple(m.for_display() for m in ((cpu,) if cpu is not None else result.metrics[:1]))


def budget_cell(result: TestResult, metric: MetricResult) -> str:
    """``5.0% (default)``: the budget and where it came from; ``NO_FIGURE`` without one."""
    if metric.budget is None:
        return NO_FIGURE
    return f"{metric.budget.describe(metric.metric)} ({budget_origin(result.settings.source(metric.metric))})"


def run_facts(run: RunRecord) -> list[str]:
    """Python, OpenTelemetry SDK and plugin versions, machine and commit, as short phrases."""
    env = run.environment
    packages: dict[str, Any] = env["packages"] if isinstance(env.get("packages"), dict) else {}
    facts = []
    if env.get("python"):
        facts.append(f"{env.get('implementation') or 'Python'} {env['python']}")
    if packages.get("opentelemetry-sdk"):
        facts.append(f"opentelemetry-sdk {packages['opentelemetry-sdk']}")
    if env.get("cpu_count"):
        facts.append(f"{env['cpu_count']} CPUs")
    if run.commit:
        facts.append(f"commit {run.commit}")
    return facts


def _value(metric: MetricResult, value: float) -> str:
    return metric.format_value(value) if math.isfinite(value) else NO_FIGURE


def _results_table(results: Sequence[TestResult], shown: Sequence[tuple[MetricResult, ...]]) -> list[str]:
    """The table of ``results``, each with its ``headline_metrics`` (``shown``, in the same order)."""
    columns = overhead_columns([m for metrics in shown for m in metrics])
    overheads = [heading[0].upper() + heading[1:] for heading in columns.headers()]
    header = ["Test", "Verdict", "Metric", *overheads, "Budget", "Baseline/call", "Instrumented/call"]
    header += ["Spans/call", "Dropped", "Pairs"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for result, metrics in zip(results, shown, strict=True):
        health = result.health
        spans = f"{health.per_call(health.started):.3g}" if health is not None and health.calls else NO_FIGURE
        dropped = str(health.dropped) if health is not None else NO_FIGURE
        for index, metric in enumerate(metrics):
            first = index == 0
            cells = [
                escape(result.nodeid) if first else "",
                f"{OUTCOME_MARKS[result.outcome]} {escape(verdict_label(result))}" if first else "",
                escape(metric.label),
                *columns.cells(metric, escape),
                escape(budget_cell(result, metric)),
                escape(_value(metric, metric.baseline)),
                escape(_value(metric, metric.instrumented)),
                spans if first else "",
                dropped if first else "",
                str(result.pairs) if first else "",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _notes(results: Sequence[TestResult]) -> list[str]:
    notes = []
    for result in results:
        for metric in result.metrics:
            if metric.note and metric.verdict is not None and metric.verdict is not Verdict.PASS:
                notes.append(f"- {escape(result.nodeid)}, {escape(metric.label)}: {escape(metric.note)}")
        if result.health is not None and result.health.dropped:
            notes.append(
                f"- {escape(result.nodeid)}: {result.health.dropped} spans dropped by the pipeline "
                "(queue full); raise queue_size or lower the sampling rate"
            )
        notes += [f"- {escape(result.nodeid)}: {escape(line)}" for line in outcome_lines(result)]
    return notes


def unmeasured_lines(unmeasured: Sequence[Mapping[str, str]]) -> list[str]:
    """The tests that were to be measured and were not, with why: a short table (folded when long)."""
    if not unmeasured:
        return []
    rows = [f"| {escape(e['nodeid'])} | {escape(e['outcome'])} | {escape(e['reason'])} |" for e in unmeasured]
    table = ["| Test | Outcome | Reason |", "| --- | --- | --- |", *rows]
    count = f"{len(unmeasured)} test{'s' if len(unmeasured) != 1 else ''} to measure"
    lead = f"**Not measured:** {count} skipped or errored before a result."
    if len(unmeasured) > 10:
        return ["", lead, "", "<details><summary>Not measured</summary>", "", *table, "", "</details>"]
    return ["", lead, "", *table]


def _comparison(comparison: Comparison) -> list[str]:
    lines = ["", f"### Compared with {escape(describe_run(comparison.before))}", ""]
    if comparison.criteria:
        lines.append("Fails on growth beyond " + ", ".join(f"`{c.describe()}`" for c in comparison.criteria) + ".")
        lines.append("")
    if comparison.differences:
        lines += [
            "> [!WARNING]",
            "> The runs were measured in different places: " + escape("; ".join(comparison.differences)),
        ]
        lines.append("")
    lines.append(f"| Test | Metric | Before | After | Change ({interval_heading([comparison.confidence])}) | Verdict |")
    lines.append("| --- | --- | --- | --- | --- | --- |")
    for test in comparison.tests:
        if test.note:
            lines.append(f"| {escape(test.nodeid)} | | | | {escape(test.note)} | |")
            continue
        for index, metric in enumerate(test.metrics):
            low, estimate, high = metric.points
            change = f"{percentage_points(estimate)} {interval(low, high, percentage_points)}"
            verdict = CHANGE_MARKS[metric.verdict] if metric.verdict is not None else ""
            cells = [
                escape(test.nodeid) if index == 0 else "",
                escape(metric.label),
                escape(signed_percent_or_dash(metric.before)),
                escape(signed_percent_or_dash(metric.after)),
                escape(change),
                verdict,
            ]
            lines.append("| " + " | ".join(cells) + " |")
    settings = [t for t in comparison.tests if t.settings_differences]
    if settings:
        lines.append("")
        for test in settings:
            lines.append(f"- {escape(test.nodeid)}: settings differ: {escape('; '.join(test.settings_differences))}")
    return lines


def markdown_report(
    run: RunRecord,
    comparison: Comparison | None = None,
    *,
    title: str = "OpenTelemetry overhead",
    warnings: Sequence[str] = (),
    unmeasured: Sequence[Mapping[str, str]] = (),
) -> str:
    """The whole summary as one Markdown document; ``unmeasured``: the tests that were to be measured and
    were not (``{"nodeid", "outcome", "reason"}`` each, as the JSON report's ``unmeasured`` section holds them)."""
    results = run.results
    counts = {v: sum(1 for r in results if r.outcome == v.value) for v in Verdict}
    others = [(o.replace("_", " "), sum(1 for r in results if r.outcome == o)) for o in OTHER_OUTCOMES]
    lines = [f"## {escape(title)}", ""]
    headline = (
        f"**{len(results)} measured: {counts[Verdict.PASS]} PASS, {counts[Verdict.FAIL]} FAIL, "
        f"{counts[Verdict.INCONCLUSIVE]} INCONCLUSIVE" + "".join(f", {n} {o}" for o, n in others if n) + "**"
    )
    facts = run_facts(run)
    lines.append(headline + (" — " + escape(", ".join(facts)) if facts else ""))
    lines.append("")
    if results:
        shown = [headline_metrics(result) for result in results]  # once each: a merged run has thousands
        lines += _results_table(results, shown)
        if any(m.against_arms for metrics in shown for m in metrics):
            lines += ["", escape(AGAINST_ARMS_NOTE)]
    lines += unmeasured_lines(unmeasured)
    notes = _notes(results)
    if notes:
        lines += ["", "<details><summary>Notes</summary>", "", *notes, "", "</details>"]
    for warning in warnings:
        lines += ["", "> [!WARNING]", "> " + escape(warning)]
    if comparison is not None:
        lines += _comparison(comparison)
    return "\n".join(lines) + "\n"
