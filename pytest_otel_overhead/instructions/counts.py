"""From counts to verdicts: each layout's counts per call, the ratio of estimated cycles decided against the budget.

The per-process ratio of estimated cycles per call (instructions plus weighted cache misses,
:mod:`.cycles`) is the paired statistic and the spread from process to process gives the
interval, decided as in time mode; the ratio of instructions alone is reported beside it. Where the
counts cannot show what production would do (a sampler driven by the clock, an exporter that sends
requests) the verdict says so; the budgets counts cannot decide (time per call, wall time, latency)
are left INCONCLUSIVE with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import pytest

from pytest_otel_overhead.formatting import confidence_percent
from pytest_otel_overhead.instructions.cycles import CYCLE_MODEL, Counts
from pytest_otel_overhead.results import CycleModel, MetricResult
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.intervals import median
from pytest_otel_overhead.stats.verdict import Decision, Verdict, decide_budget
from pytest_otel_overhead.units import Budget

__all__ = [
    "CYCLES",
    "INSTRUCTIONS",
    "LOCAL_EXPORTERS",
    "UNDECIDABLE",
    "Layout",
    "clock_driven",
    "instruction_metrics",
    "summarise_layout",
]

CYCLES = "cycles"
"""The gate of this mode: estimated cycles per call."""
INSTRUCTIONS = "instructions"
"""Instructions per call, reported beside the gate."""
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
    """What one memory layout (process) counted: counts per call in each arm."""

    layout: int
    calls: int
    baseline: Counts
    """Per call, mean over the process's baseline blocks."""
    instrumented: Counts

    def figures(self, metric: str, model: CycleModel = CYCLE_MODEL) -> tuple[float, float]:
        """(baseline, instrumented) per call of ``metric``: estimated cycles or instructions."""
        if metric == CYCLES:
            return self.baseline.cycles(model), self.instrumented.cycles(model)
        return self.baseline.instructions, self.instrumented.instructions

    def log_ratio(self, metric: str = CYCLES, model: CycleModel = CYCLE_MODEL) -> float:
        baseline, instrumented = self.figures(metric, model)
        return math.log(instrumented / baseline) if baseline > 0 and instrumented > 0 else math.nan

    @property
    def sample(self) -> tuple[float, ...]:
        """The row of ``instruction_samples``: instructions, first- and last-level misses, mispredicts, per arm."""
        pairs = zip(self.baseline.figures, self.instrumented.figures, strict=True)
        return tuple(figure for pair in pairs for figure in pair)


def summarise_layout(layout: int, blocks: Sequence[tuple[int, int, int, Counts]]) -> Layout:
    """Counts per call in each arm of one layout, from its dumps ``(block, arm, calls, counts)``.

    Block -1 of each arm is empty: its counts, the cost of counting itself, are taken off the others.
    """
    empty = {arm: counts for block, arm, _, counts in blocks if block == -1}
    per_arm: dict[int, list[Counts]] = {0: [], 1: []}
    calls_seen = 1
    for block, arm, calls, counts in blocks:
        if block >= 0 and calls > 0:
            per_arm[arm].append((counts - empty.get(arm, Counts(0))).per(calls))
            calls_seen = calls
    if not per_arm[0] or not per_arm[1]:
        pytest.fail(f"otel-overhead: no counted blocks for layout {layout}", pytrace=False)
    baseline, instrumented = Counts.mean(per_arm[0]), Counts.mean(per_arm[1])
    return Layout(layout=layout, calls=calls_seen, baseline=baseline, instrumented=instrumented)


def _undecidable(metric: str, budget: Budget, note: str, confidence: float) -> MetricResult:
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
        confidence=confidence,
        budget=budget,
        verdict=Verdict.INCONCLUSIVE,
        note=note + "; use mode='time' for this budget",
    )


def clock_driven(settings: MeasureSettings) -> bool:
    """Whether the sampler's decisions depend on the time of day, not on the spans alone."""
    pipeline = settings.pipeline
    return pipeline.sampler in ("rate_limiting", "load_adaptive") or pipeline.max_traces_per_second is not None


def instruction_metrics(
    settings: MeasureSettings, layouts: Sequence[Layout], model: CycleModel = CYCLE_MODEL
) -> list[MetricResult]:
    """Estimated cycles, decided against the CPU budget; instructions beside them; other time budgets, undecided."""
    cpu = settings.budget("cpu")
    budget = cpu if cpu is not None and cpu.kind == "relative" else None
    decision = decide_budget([layout.log_ratio(CYCLES, model) for layout in layouts], budget, settings.confidence)
    verdict, note = _qualified(settings, budget, decision)
    gate = _ratio(CYCLES, layouts, model, decision, budget, settings.confidence)
    gate = replace(
        gate,
        verdict=verdict if budget is not None else None,
        resolution=decision.half_width if verdict is Verdict.INCONCLUSIVE else None,
        note=note,
    )
    counted = decide_budget([layout.log_ratio(INSTRUCTIONS) for layout in layouts], None, settings.confidence)
    instructions = _ratio(INSTRUCTIONS, layouts, model, counted, None, settings.confidence)
    return [gate, instructions, *_undecidable_budgets(settings)]


def _ratio(
    metric: str,
    layouts: Sequence[Layout],
    model: CycleModel,
    decision: Decision,
    budget: Budget | None,
    confidence: float,
) -> MetricResult:
    figures = [layout.figures(metric, model) for layout in layouts]
    return MetricResult(
        metric=metric,
        baseline=median([baseline for baseline, _ in figures]),
        instrumented=median([instrumented for _, instrumented in figures]),
        overhead=decision.estimate,
        ci_low=decision.ci_low,
        ci_high=decision.ci_high,
        kind="relative",
        n=decision.n,
        spread=decision.spread,
        confidence=confidence,
        budget=budget,
    )


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
    if budget is not None and not (math.isfinite(decision.ci_low) and math.isfinite(decision.ci_high)):
        # The signed-rank interval of n layouts reaches at most 1 - 2 / 2**n: 99.2% for eight.
        reach = 1 - 2 / 2**decision.n if decision.n else 0.0
        note = (
            f"{decision.n} memory layouts cannot bound a {confidence_percent(settings.confidence)} interval "
            f"(at most {confidence_percent(reach)}); lower the confidence or use mode='time'"
        )
        return Verdict.INCONCLUSIVE, note
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
                settings.confidence,
            )
        )
    for metric, reason in UNDECIDABLE.items():
        other = settings.budget(metric)
        if other is not None:
            metrics.append(
                _undecidable(metric, other, f"not decidable in instructions mode: {reason}", settings.confidence)
            )
    return metrics
