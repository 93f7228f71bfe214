"""From instruction counts to verdicts: each layout's instructions per call, their ratio decided against the budget.

The per-process ratio is the paired statistic and the spread from process to process gives the
interval, decided as in time mode. Where the counts cannot show what production would do (a
sampler driven by the clock, an exporter that sends requests) the verdict says so; the budgets
instruction counts cannot decide (time per call, wall time, latency) are left INCONCLUSIVE with
the reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from pytest_otel_overhead.results import MetricResult
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.intervals import median
from pytest_otel_overhead.stats.verdict import Decision, Verdict, decide_budget
from pytest_otel_overhead.units import Budget

__all__ = [
    "CONFIDENCE",
    "LOCAL_EXPORTERS",
    "UNDECIDABLE",
    "Layout",
    "clock_driven",
    "instruction_metrics",
    "summarise_layout",
]

CONFIDENCE = 0.95
UNDECIDABLE = {
    "wall": "wall time includes waiting (I/O, locks, sleeps) that instruction counts do not see",
    "latency_p50": "latency is a time and its quantiles depend on timing, which instruction counts do not see",
    "latency_p95": "latency is a time and its quantiles depend on timing, which instruction counts do not see",
    "latency_p99": "latency is a time and its quantiles depend on timing, which instruction counts do not see",
}
LOCAL_EXPORTERS = ("none", "memory")
"""Exporters whose work per span does not depend on how often they are flushed."""


@dataclass(frozen=True)
class Layout:
    """What one memory layout (process) counted: instructions per call in each arm."""

    layout: int
    calls: int
    baseline: float
    """Instructions per call, mean over the process's baseline blocks."""
    instrumented: float

    @property
    def log_ratio(self) -> float:
        return math.log(self.instrumented / self.baseline) if self.baseline > 0 and self.instrumented > 0 else math.nan


def summarise_layout(layout: int, blocks: Sequence[tuple[int, int, int, int]]) -> Layout:
    """Instructions per call in each arm of one layout, from its dumps ``(block, arm, calls, count)``.

    Block -1 of each arm is empty: its count, the cost of counting itself, is taken off the others.
    """
    empty = {arm: count for block, arm, _, count in blocks if block == -1}
    per_arm: dict[int, list[float]] = {0: [], 1: []}
    calls_seen = 1
    for block, arm, calls, count in blocks:
        if block >= 0 and calls > 0:
            per_arm[arm].append((count - empty.get(arm, 0)) / calls)
            calls_seen = calls
    if not per_arm[0] or not per_arm[1]:
        pytest.fail(f"otel-overhead: no counted blocks for layout {layout}", pytrace=False)
    return Layout(
        layout=layout,
        calls=calls_seen,
        baseline=sum(per_arm[0]) / len(per_arm[0]),
        instrumented=sum(per_arm[1]) / len(per_arm[1]),
    )


def _undecidable(metric: str, budget: Budget, note: str) -> MetricResult:
    return MetricResult(
        metric=metric,
        baseline=math.nan,
        instrumented=math.nan,
        overhead=math.nan,
        ci_low=-math.inf,
        ci_high=math.inf,
        kind=budget.kind,
        n=0,
        spread=math.nan,
        confidence=CONFIDENCE,
        budget=budget,
        verdict=Verdict.INCONCLUSIVE,
        note=note + "; use mode='time' for this budget",
    )


def clock_driven(settings: MeasureSettings) -> bool:
    """Whether the sampler's decisions depend on the time of day, not on the spans alone."""
    pipeline = settings.pipeline
    return pipeline.sampler in ("rate_limiting", "load_adaptive") or pipeline.max_traces_per_second is not None


def instruction_metrics(
    settings: MeasureSettings, layouts: Sequence[Layout], stats: Sequence[float]
) -> list[MetricResult]:
    """The instruction ratio, decided against the CPU budget; time budgets other than that, undecided."""
    cpu = settings.budget("cpu")
    budget = cpu if cpu is not None and cpu.kind == "relative" else None
    decision = decide_budget(stats, budget, CONFIDENCE)
    verdict, note = _qualified(settings, budget, decision)
    ratio = MetricResult(
        metric="instructions",
        baseline=median([layout.baseline for layout in layouts]),
        instrumented=median([layout.instrumented for layout in layouts]),
        overhead=decision.estimate,
        ci_low=decision.ci_low,
        ci_high=decision.ci_high,
        kind="relative",
        n=decision.n,
        spread=decision.spread,
        confidence=CONFIDENCE,
        budget=budget,
        verdict=verdict if budget is not None else None,
        resolution=decision.half_width if verdict is Verdict.INCONCLUSIVE else None,
        note=note,
    )
    return [ratio, *_undecidable_budgets(settings)]


def _qualified(settings: MeasureSettings, budget: Budget | None, decision: Decision) -> tuple[Verdict, str | None]:
    """The ratio's verdict and note, where the counts cannot show what production would do."""
    if clock_driven(settings):
        note = (
            f"the {settings.pipeline.sampler} sampler decides by the clock, which valgrind slows some fifty "
            "times, so these counts do not show production's sampling; use mode='time'"
        )
        return Verdict.INCONCLUSIVE, note
    if settings.pipeline.exporter not in LOCAL_EXPORTERS:
        # Each counted block ends with a full flush, so a network exporter pays one request per block
        # (about 3 ms of work) where production pays one per batch: the count overstates the overhead.
        note = (
            f"exporter {settings.pipeline.exporter!r} sends a request per counted block, more often than "
            "production's batches do: this overhead is an upper bound"
        )
        if decision.verdict is Verdict.FAIL:
            return Verdict.INCONCLUSIVE, note + ", too high to fail on; use mode='time'"
        return decision.verdict, note
    if budget is not None and decision.verdict is Verdict.INCONCLUSIVE:
        note = (
            f"the {decision.n} memory layouts disagree (spread {decision.spread * 100:.2f}%) by more than "
            f"this overhead's distance from the budget"
        )
        return decision.verdict, note
    return decision.verdict, None


def _undecidable_budgets(settings: MeasureSettings) -> list[MetricResult]:
    """The budgets given that instruction counts cannot decide, each INCONCLUSIVE with the reason."""
    metrics = []
    cpu = settings.budget("cpu")
    if cpu is not None and cpu.kind != "relative":
        metrics.append(
            _undecidable(
                "cpu",
                cpu,
                "an absolute CPU budget (time per call) cannot be decided from instruction counts; "
                "give a relative one such as '5%'",
            )
        )
    for metric, reason in UNDECIDABLE.items():
        other = settings.budget(metric)
        if other is not None:
            metrics.append(_undecidable(metric, other, f"not decidable in instructions mode: {reason}"))
    return metrics
