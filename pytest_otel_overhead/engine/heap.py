"""Heap rounds: peak and retained heap per call in both arms, under tracemalloc, in pairs of their own.

tracemalloc slows Python many-fold, so the heap is never measured in a timed block: after the
timed pairs and the diagnostic round, pairs of untimed rounds (in random order within each pair)
give the peak of traced memory per round and what stays after a collection. The paired statistic
of the peaks is decided with the sign-test interval.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass

from pytest_otel_overhead.engine.arms import Arms
from pytest_otel_overhead.engine.looks import pair_statistic
from pytest_otel_overhead.engine.probes import heap_round, tracing_heap
from pytest_otel_overhead.results import MetricResult
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.intervals import median
from pytest_otel_overhead.stats.verdict import Verdict, decide_budget
from pytest_otel_overhead.units import Budget

__all__ = [
    "HEAP_PAIRS_BUDGETED",
    "HEAP_PAIRS_REPORTED",
    "TRACEMALLOC_SLOWDOWN",
    "HeapPlan",
    "heap_pairs_for",
    "heap_reserve_limit",
    "heap_rounds",
    "plan_heap_rounds",
]

HEAP_PAIRS_BUDGETED = 8
HEAP_PAIRS_REPORTED = 3
HEAP_SHARE_REPORTED = 0.1
"""At most this share of max_time is kept back for heap rounds that only report (no heap budget)."""
HEAP_SHARE_BUDGETED = 0.5
TRACEMALLOC_SLOWDOWN = 20.0
"""Time reserved for the heap rounds, as a multiple of the workload's time: pure-Python code allocating
small objects on every step runs about 20 times slower under tracemalloc here."""


@dataclass(frozen=True)
class HeapPlan:
    """The heap pairs to run, the time one is expected to take, and the time kept back for them all."""

    pairs: int
    pair_s: float
    reserve_s: float


def heap_pairs_for(settings: MeasureSettings) -> int:
    """Pairs of heap rounds: enough to decide a heap budget, fewer when they only report."""
    return HEAP_PAIRS_BUDGETED if settings.budget("heap") is not None else HEAP_PAIRS_REPORTED


def heap_reserve_limit(settings: MeasureSettings) -> float:
    """The most time the heap rounds may keep back, whatever the workload."""
    # Heap rounds without a heap budget only report, so they may not eat much of the time.
    share = HEAP_SHARE_BUDGETED if settings.budget("heap") is not None else HEAP_SHARE_REPORTED
    return share * settings.max_time


def plan_heap_rounds(settings: MeasureSettings, calls: int, wall_per_call: float) -> HeapPlan:
    """Time to keep back for the heap rounds, from the workload's wall time per call."""
    pairs = heap_pairs_for(settings)
    pair_s = 2 * calls * wall_per_call * TRACEMALLOC_SLOWDOWN
    return HeapPlan(pairs=pairs, pair_s=pair_s, reserve_s=min(pairs * pair_s, heap_reserve_limit(settings)))


def heap_rounds(
    arms: Arms,
    settings: MeasureSettings,
    calls: int,
    *,
    pairs: int,
    rng: random.Random,
    confidence: float,
    deadline: float,
    expected_pair_s: float,
) -> tuple[MetricResult, tuple[float, float]]:
    """Peak heap per round in both arms, and retained heap per call (baseline, instrumented).

    A pair runs only while it is expected to end before the deadline (``expected_pair_s``, or the
    slowest pair so far if slower), except that a heap budget always gets one pair; without one,
    a workload too slow for any pair in time reports no heap figures.
    """
    budget = settings.budget("heap")
    kind = budget.kind if budget is not None else "relative"
    peaks, retained = _run_pairs(
        arms, calls, pairs, rng, deadline, expected_pair_s, first_pair_always=budget is not None
    )
    if not peaks[False]:
        return _not_measured(kind, confidence), (math.nan, math.nan)
    metric = _decided(peaks, budget, kind, pairs, confidence)
    return metric, (median(retained[False]), median(retained[True]))


def _run_pairs(
    arms: Arms,
    calls: int,
    pairs: int,
    rng: random.Random,
    deadline: float,
    expected_pair_s: float,
    *,
    first_pair_always: bool,
) -> tuple[dict[bool, list[int]], dict[bool, list[float]]]:
    """Peaks per round and retained bytes per call, by arm, of the pairs that fit before ``deadline``."""
    peaks: dict[bool, list[int]] = {False: [], True: []}
    retained: dict[bool, list[float]] = {False: [], True: []}
    slowest = expected_pair_s
    with tracing_heap():
        for _ in range(pairs):
            pair_started = arms.clock.wall()
            if (peaks[False] or not first_pair_always) and pair_started + slowest > deadline:
                break
            order = [False, True]
            rng.shuffle(order)
            for arm in order:
                result = heap_round(functools.partial(arms.run, arm, calls), arms.pipeline.after_block)
                peaks[arm].append(result.peak)
                retained[arm].append(result.retained / calls)
            slowest = max(slowest, arms.clock.wall() - pair_started)
    return peaks, retained


def _not_measured(kind: str, confidence: float) -> MetricResult:
    return MetricResult(
        metric="heap",
        baseline=math.nan,
        instrumented=math.nan,
        overhead=math.nan,
        ci_low=-math.inf,
        ci_high=math.inf,
        kind=kind,
        n=0,
        spread=math.nan,
        confidence=confidence,
        budget=None,
        verdict=None,
        note="not measured: one pair of heap rounds under tracemalloc would not end within max_time",
    )


def _decided(
    peaks: dict[bool, list[int]], budget: Budget | None, kind: str, planned: int, confidence: float
) -> MetricResult:
    """The heap metric from the pairs' peaks; a budget it cannot judge stays INCONCLUSIVE with a note."""
    baseline, instrumented = median(peaks[False]), median(peaks[True])
    note = None
    stats = [pair_statistic(b, i, kind) for b, i in zip(peaks[False], peaks[True], strict=True)]
    if kind == "relative" and baseline < 512 and budget is not None:
        note = (
            f"the baseline peak is {baseline:.0f} B, too small for a relative heap budget; "
            "give an absolute one such as heap='256KiB'"
        )
    decision = decide_budget(stats, budget if note is None else None, confidence, kind=kind, method="sign")
    if budget is not None and note is None and decision.verdict is Verdict.INCONCLUSIVE and len(stats) < planned:
        note = (
            f"max_time left room for {len(stats)} of {planned} heap pairs (tracemalloc slows this workload); "
            "a longer max_time decides the heap budget"
        )
    verdict = None
    if budget is not None:
        verdict = Verdict.INCONCLUSIVE if note is not None else decision.verdict
    return MetricResult(
        metric="heap",
        baseline=baseline,
        instrumented=instrumented,
        overhead=decision.estimate,
        ci_low=decision.ci_low,
        ci_high=decision.ci_high,
        kind=kind,
        n=decision.n,
        spread=decision.spread,
        confidence=confidence,
        budget=budget,
        verdict=verdict,
        note=note,
    )
