"""Several processes' measurements of one test combined into one: each metric's interval across them.

Each process's estimate and its own interval go into a random-effects interval
(``verdict.decide_across_processes``), wide when the processes disagree, with a note saying how they
compare. A measurement over processes (``replicas``) combines its processes so, and a merge of shards
(``history.merge``) a test measured in several shards. Nothing here starts a process or measures:
a merge imports this without the measuring machinery (or the OpenTelemetry SDK it brings).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Sequence

from pytest_otel_overhead.engine.looks import TIME_METRICS
from pytest_otel_overhead.engine.machine import is_busy_note, load_degree
from pytest_otel_overhead.results import MetricResult, TestResult
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.intervals import median, standard_error
from pytest_otel_overhead.stats.process_term import TermSource
from pytest_otel_overhead.stats.verdict import (
    Decision,
    LookPlan,
    Verdict,
    decide,
    decide_across_processes,
    statistic_of,
    to_statistic,
)

__all__ = ["child_plan", "combined_metrics", "median_finite", "process_estimates"]


def child_plan(confidence: float) -> LookPlan:
    """The looks a process measuring one share of a measurement makes, its metrics recorded at ``confidence``
    over them all; its intervals are at this plan's per-look confidence."""
    return LookPlan(confidence=confidence)


def process_estimates(metrics: Sequence[MetricResult]) -> tuple[list[float], list[float]]:
    """One metric's estimate per process and its standard error, on the paired statistic's scale.

    A time metric's interval comes from the child's last look, at ``child_plan``'s per-look
    confidence; any other metric's (heap) at its own. Processes without an estimate are left out.
    """
    estimates, errors = [], []
    for m in metrics:
        if not math.isfinite(m.overhead):
            continue
        level = child_plan(m.confidence).per_look_confidence if m.metric in TIME_METRICS else m.confidence
        # A process whose interval counted the between-process term is pooled by its own pairs' interval.
        low = m.ci_low if m.process_ci_low is None else m.process_ci_low
        high = m.ci_high if m.process_ci_high is None else m.process_ci_high
        estimates.append(statistic_of(m.overhead, m.kind))
        errors.append(standard_error(statistic_of(low, m.kind), statistic_of(high, m.kind), level))
    return estimates, errors


def combined_metrics(
    settings: MeasureSettings,
    results: Sequence[TestResult],
    look_confidence: float,
    confidence: float,
    only: Collection[str] | None = None,
) -> list[MetricResult]:
    """Every metric the processes measured (of ``only``, when given), combined across them at ``look_confidence``.

    ``confidence`` is what the sequence of looks holds over all, as reported."""
    measured = dict.fromkeys(m.metric for result in results for m in result.metrics)
    names = [name for name in measured if only is None or name in only]
    notes = [note for result in results for note in result.notes]  # a busy machine in any process counts
    combined = []
    for name in names:
        per_process = [m for result in results if (m := result.metric(name)) is not None]
        combined.append(_combined_metric(settings, per_process, look_confidence, confidence, notes))
    return combined


def _combined_metric(
    settings: MeasureSettings,
    per_process: Sequence[MetricResult],
    look_confidence: float,
    confidence: float,
    notes: Sequence[str] = (),
) -> MetricResult:
    first = per_process[0]
    # A process that could not measure the metric (heap rounds cut by max_time) gives it no budget.
    budget = settings.budget(first.metric) if any(m.budget is not None for m in per_process) else None
    kind = budget.kind if budget is not None else first.kind
    estimates, errors = process_estimates(per_process)
    # Load as it is now stands for the processes' when any of them saw a busy machine.
    busy = load_degree() if any(map(is_busy_note, notes)) else 0.0
    baseline = median_finite([m.baseline for m in per_process])
    decision = decide_across_processes(
        estimates, errors, budget, look_confidence, kind=kind, prior=settings.process_term, busy=busy, baseline=baseline
    )
    refused = _refusal(per_process)
    verdict = (Verdict.INCONCLUSIVE if refused else decision.verdict) if budget is not None else None
    metric = MetricResult(
        metric=first.metric,
        baseline=baseline,
        instrumented=median_finite([m.instrumented for m in per_process]),
        overhead=decision.estimate,
        ci_low=decision.ci_low,
        ci_high=decision.ci_high,
        kind=kind,
        n=decision.n,
        spread=median_finite([m.spread for m in per_process]),
        confidence=confidence,
        budget=budget,
        verdict=verdict,
        resolution=decision.half_width if verdict is Verdict.INCONCLUSIVE and not refused else None,
        between_process_spread=decision.spread if kind == "relative" or first.metric in TIME_METRICS else None,
        between_process_source=TermSource.MEASURED if decision.n > 1 else settings.process_term.source,
    )
    note = refused or _note(metric, per_process, decision, errors)
    return dataclasses.replace(metric, note=note)


def _refusal(per_process: Sequence[MetricResult]) -> str | None:
    """The note of a process that left a budget undecided although its interval cleared it: the
    engine declined to judge (a relative heap budget on a tiny baseline, say), so the combination does too."""
    for m in per_process:
        if m.budget is None or m.verdict is not Verdict.INCONCLUSIVE or not m.note:
            continue
        low, high = statistic_of(m.ci_low, m.kind), statistic_of(m.ci_high, m.kind)
        if decide(low, high, to_statistic(m.budget)) is not Verdict.INCONCLUSIVE:
            return m.note
    return None


def _note(metric: MetricResult, per_process: Sequence[MetricResult], decision: Decision, errors: list[float]) -> str:
    """How the processes' estimates compare, and for an undecided budget what would decide it."""
    measured = [m.overhead for m in per_process if math.isfinite(m.overhead)]
    if len(measured) < 2:
        reason = per_process[0].note if not measured else None
        return reason or _too_few_note(metric, len(per_process), len(measured))
    spread = metric.format_overhead(decision.spread).lstrip("+")
    note = (
        f"{len(measured)} processes: {metric.format_overhead(min(measured))} to "
        f"{metric.format_overhead(max(measured))} each, between-process spread {spread}"
    )
    if metric.verdict is not Verdict.INCONCLUSIVE or metric.budget is None:
        return note
    within = median([se * se for se in errors])
    tau = statistic_of(decision.spread, metric.kind)
    if math.isfinite(tau) and (not math.isfinite(within) or tau * tau > within):
        return note + "; the processes disagree by more than each one's own noise: more processes narrow this"
    low = metric.format_overhead(metric.budget.value - decision.half_width)
    high = metric.format_overhead(metric.budget.value + decision.half_width)
    return note + f"; this run resolves overheads below {low} or above {high}"


def _too_few_note(metric: MetricResult, processes: int, measured: int) -> str:
    """Why fewer than two processes gave a figure, with the advice that fits: time ran out, or calls did."""
    if processes < 2:  # max_time ran out before a second process could start
        return (
            f"only {processes} process ran within max_time: its interval counts the prior's between-process "
            "term, not one measured across processes; raise max_time or lower processes"
        )
    return (
        f"{measured} of {processes} processes had calls enough for a {metric.label} figure of their own, so no "
        "interval across processes; each process stops once its budgets are decided: a budget on "
        f"{metric.label} keeps them measuring until it is decided too"
    )


def median_finite(values: Sequence[float]) -> float:
    """The median of the finite values, NaN when there are none."""
    finite = [v for v in values if math.isfinite(v)]
    return median(finite) if finite else math.nan
