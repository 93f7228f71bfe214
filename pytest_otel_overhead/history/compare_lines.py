"""A comparison in words: the terminal lines, and the paragraph that fails a regressed test."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_otel_overhead.history.criteria import idle_message
from pytest_otel_overhead.stats.verdict import Verdict

if TYPE_CHECKING:
    from pytest_otel_overhead.history.compare import Comparison, MetricChange, TestChange
    from pytest_otel_overhead.history.criteria import Criterion
    from pytest_otel_overhead.history.store import RunRecord

__all__ = ["MACHINE_LINE", "comparison_lines", "describe_run", "regression_message"]

MACHINE_LINE = (
    "  the machines differ ({differences}): time comparisons are widened by a machine term "
    "(docs/sharding.md); counts (estimated cycles, instructions) compare as equals"
)


def describe_run(run: RunRecord) -> str:
    """``run 'main' (saved 2025-01-01T12:00:00+00:00, commit 1a2b3c4d5e)``."""
    parts = [f"saved {run.created}" if run.created else None, f"commit {run.commit}" if run.commit else None]
    details = ", ".join(p for p in parts if p)
    return f"run {run.label!r}" + (f" ({details})" if details else "")


def regression_message(change: TestChange, comparison: Comparison) -> str:
    """Why a test fails its regression criteria, in one paragraph."""
    sentences = []
    for metric in change.metrics:
        for criterion in metric.failed:
            sentences.append(f"{metric.describe()}; grew by {criterion.allowed()} ({criterion.describe()})")
    text = "; ".join(sentences) + f" — compared with {describe_run(comparison.before)}"
    if comparison.differences:
        text += "; the runs differ: " + ", ".join(comparison.differences)
    return text


def comparison_lines(comparison: Comparison) -> list[str]:
    """The comparison as terminal lines: per test and metric the change with its interval and verdict."""
    criteria = ", ".join(c.describe() for c in comparison.criteria)
    lines = [
        f"compared with {describe_run(comparison.before)}" + (f"; fail on growth beyond {criteria}" if criteria else "")
    ]
    if comparison.differences:
        lines.append("  WARNING the runs differ: " + "; ".join(comparison.differences))
    if comparison.machine:
        lines.append(MACHINE_LINE.format(differences="; ".join(comparison.machine)))
    for test in comparison.tests:
        if test.note:
            lines.append(f"  {test.nodeid}  {test.note}")
            continue
        lines.append(f"  {test.nodeid}" + (f"  {_outcome(test.verdict)}" if test.verdict else ""))
        if test.settings_differences:
            lines.append("      WARNING settings differ: " + "; ".join(test.settings_differences))
        for metric in test.metrics:
            verdicts = ", ".join(f"{_outcome(v, metric, c)} {c.describe()}" for c, v in metric.outcomes)
            lines.append(
                ("      WARNING " if metric.problem is not None else "      ")
                + f"{metric.describe()}  [{metric.n_before} vs {metric.n_after} pairs]"
                + (f"  {verdicts}" if verdicts else "")
            )
    if comparison.missing:
        lines.append(f"  not measured in this run: {', '.join(comparison.missing)}")
    lines += [f"  WARNING {idle_message(criterion)}" for criterion in comparison.idle_criteria]
    if comparison.criteria:
        counts = comparison.counts()
        lines.append(
            f"{sum(counts.values())} compared: {counts[Verdict.FAIL]} regressed, {counts[Verdict.PASS]} within "
            f"{criteria}, {counts[Verdict.INCONCLUSIVE]} undecided"
        )
    return lines


def _outcome(verdict: Verdict | None, metric: MetricChange | None = None, criterion: Criterion | None = None) -> str:
    """``REGRESSED``, ``OK`` or ``UNDECIDED``; an undecided criterion that one term alone held open says which."""
    why = dict(metric.held_open).get(criterion) if metric is not None and criterion is not None else None
    if verdict is Verdict.INCONCLUSIVE and why is not None:
        return f"UNDECIDED ({why.value})"
    return {Verdict.FAIL: "REGRESSED", Verdict.PASS: "OK", Verdict.INCONCLUSIVE: "UNDECIDED", None: ""}[verdict]
