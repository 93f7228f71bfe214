"""The measurement engine: paired, randomly ordered blocks of both arms with sequential looks.

Order of a measurement, all within the test's ``max_time``:

1. warm-up in both arms, then calibrate the calls per block to about ``BLOCK_TARGET_S``;
2. timed pairs: a baseline and an instrumented block, in ABBA order from a random start, each from a
   collected heap, the instrumented one flushing its pipeline inside the timed span, so export
   work is charged to it; CPU time of the whole process (all threads), wall time, and the wall
   latency of every call are recorded;
3. looks at planned fractions of the time (``LookPlan``): stop as soon as every time budget is
   decided, else measure to the cap; past ``MAX_BATCHES`` pairs, intervals come from batches of
   consecutive pairs, since neighbouring pairs are not independent on a shared machine;
4. one diagnostic round with counting pipeline (spans started, sampled, exported, dropped);
5. heap rounds under tracemalloc (peak and retained per call), in pairs of their own.

Nothing that observes (counting, tracemalloc, psutil) runs inside a timed block.
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pytest_otel_overhead.engine.probes import calm_gc, heap_round, process_reading, tracing_heap
from pytest_otel_overhead.otel.pipeline import Pipeline, build_pipeline
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.results import MetricResult, PipelineHealth, ProcessProbe, TestResult
from pytest_otel_overhead.settings.layers import MeasureSettings
from pytest_otel_overhead.stats import batch_slices, mad_spread, median, quantile
from pytest_otel_overhead.units import Budget
from pytest_otel_overhead.verdict import Decision, LookPlan, Verdict, decide_budget

__all__ = ["BLOCK_TARGET_S", "measure"]

BLOCK_TARGET_S = 0.01
"""Target length of one timed block: short blocks give many pairs per second at similar spread."""
WARMUP_S = 0.2
DIAGNOSTIC_S = 0.25
MARGIN_S = 0.4
"""Kept back beyond the estimates, for the last pair, the last look's statistics, the pipeline's
shutdown and the result: with 0.05 s, runs that went to the cap ended up to 0.16 s past it here."""
HEAP_PAIRS_BUDGETED = 8
HEAP_PAIRS_REPORTED = 3
HEAP_SHARE_REPORTED = 0.1
"""At most this share of max_time is kept back for heap rounds that only report (no heap budget)."""
HEAP_SHARE_BUDGETED = 0.5
TRACEMALLOC_SLOWDOWN = 20.0
"""Time reserved for the heap rounds, as a multiple of the workload's time: pure-Python code allocating
small objects on every step runs about 20 times slower under tracemalloc here."""
LATENCY_QUANTILES = {"latency_p50": 0.50, "latency_p95": 0.95, "latency_p99": 0.99}
TIME_METRICS = ("cpu", "wall", *LATENCY_QUANTILES)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class _Block:
    cpu: float
    wall: float
    latencies: tuple[float, ...]


@dataclass(frozen=True)
class _Pair:
    baseline: _Block
    instrumented: _Block


class _Arms:
    """Runs timed blocks of the workload in either arm."""

    def __init__(self, workload: Callable[[], object], router: ArmRouter, pipeline: Pipeline) -> None:
        self.workload = workload
        self.router = router
        self.pipeline = pipeline

    def block(self, instrumented: bool, calls: int, collect: Callable[[], object]) -> _Block:
        workload = self.workload
        clock = time.perf_counter
        latencies = [0.0] * calls
        collect()
        self.router.switch(self.pipeline.provider if instrumented else None)
        try:
            cpu_start = time.process_time()
            wall_start = clock()
            for i in range(calls):
                started = clock()
                workload()
                latencies[i] = clock() - started
            if instrumented:
                # The block's length lets exports and metric collection keep production's pace.
                self.pipeline.flush(clock() - wall_start)
            wall_end = clock()
            cpu_end = time.process_time()
        finally:
            self.router.switch(None)
        self.pipeline.after_block()
        return _Block((cpu_end - cpu_start) / calls, (wall_end - wall_start) / calls, tuple(latencies))


def _statistic(baseline: float, instrumented: float, kind: str) -> float:
    """One pair's statistic: ``ln(instrumented / baseline)`` for a relative budget (NaN, which the
    decision skips, unless both are positive), ``instrumented - baseline`` for an absolute one."""
    if kind != "relative":
        return float(instrumented - baseline)
    return math.log(instrumented / baseline) if baseline > 0 and instrumented > 0 else math.nan


def _paired(pairs: Sequence[_Pair], attribute: str, kind: str) -> list[float]:
    """Per batch of consecutive pairs (``batch_slices``), the statistic of the arms' mean block.

    Up to ``MAX_BATCHES`` pairs, each pair is its own batch.
    """
    values = []
    for batch in batch_slices(len(pairs)):
        group = pairs[batch]
        b = math.fsum(getattr(p.baseline, attribute) for p in group) / len(group)
        i = math.fsum(getattr(p.instrumented, attribute) for p in group) / len(group)
        values.append(_statistic(b, i, kind))
    return values


def _latency_groups(pairs: Sequence[_Pair], q: float, calls: int, kind: str) -> list[float]:
    """Per group of consecutive pairs, the statistic of the arms' pooled latency quantile.

    A group holds enough calls for the quantile to mean something (about 2 / (1 - q) per arm), and
    there are at most ``MAX_BATCHES`` groups, as for the other metrics.
    """
    size = max(1, math.ceil(math.ceil(2 / (1 - q)) / calls))
    values = []
    for batch in batch_slices(len(pairs), min_size=size):
        group = pairs[batch]
        b = quantile(sorted(x for p in group for x in p.baseline.latencies), q)
        i = quantile(sorted(x for p in group for x in p.instrumented.latencies), q)
        values.append(_statistic(b, i, kind))
    return values


def _statistics(pairs: Sequence[_Pair], metric: str, budget: Budget | None, calls: int) -> list[float]:
    kind = budget.kind if budget is not None else "relative"
    if metric in LATENCY_QUANTILES:
        return _latency_groups(pairs, LATENCY_QUANTILES[metric], calls, kind)
    return _paired(pairs, metric, kind)


def _look(
    pairs: Sequence[_Pair], metrics: Sequence[str], settings: MeasureSettings, calls: int, confidence: float
) -> dict[str, Decision]:
    return {
        metric: decide_budget(
            _statistics(pairs, metric, settings.budget(metric), calls), settings.budget(metric), confidence
        )
        for metric in metrics
    }


def _arm_values(pairs: Sequence[_Pair], metric: str, instrumented: bool) -> float:
    blocks = [p.instrumented if instrumented else p.baseline for p in pairs]
    if not blocks:
        return math.nan
    if metric in LATENCY_QUANTILES:
        return quantile(sorted(x for b in blocks for x in b.latencies), LATENCY_QUANTILES[metric])
    return median([getattr(b, metric) for b in blocks])


def _calibration_time(warm: Sequence[_Block]) -> float:
    """Seconds per call that size the blocks, from the later half of the warm-up.

    CPU time, because wall time stretches when other jobs take the CPU, and blocks sized from it
    would shrink exactly when noise is worst; but at least a quarter of wall time, so that a
    workload that mostly waits (I/O, a slow backend) still gets blocks of a sensible length.
    """
    later = warm[len(warm) // 2 :]
    return max(median([b.cpu for b in later]), median([b.wall for b in later]) / 4)


def _pair_spread(pairs: Sequence[_Pair], metric: str, kind: str, decision: Decision) -> float:
    """Spread (MAD as a standard deviation) of the single pairs' statistic, on the overhead scale.

    The interval is built from batches of pairs; the note speaks of single pairs, which users can
    picture. Latency statistics exist only per group, so theirs is the groups' spread.
    """
    if metric in LATENCY_QUANTILES:
        return decision.spread
    values = [_statistic(getattr(p.baseline, metric), getattr(p.instrumented, metric), kind) for p in pairs]
    values = [v for v in values if math.isfinite(v)]
    if len(values) < 2:
        return decision.spread
    spread = mad_spread(values)
    return math.expm1(spread) if kind == "relative" else spread


def _noise_note(metric: str, decision: Decision, budget: Budget, spread: float) -> str:
    return (
        f"too noisy to decide a {budget.describe(metric)} budget here: pair-to-pair spread "
        f"{budget.format(spread, metric)}, interval ±{budget.format(decision.half_width, metric)} "
        "at the end of max_time"
    )


def measure(
    workload: Callable[[], object],
    settings: MeasureSettings,
    router: ArmRouter,
    *,
    nodeid: str = "",
    progress: Progress | None = None,
    plan: LookPlan | None = None,
    rng: random.Random | None = None,
) -> TestResult:
    """Measure ``workload`` in both arms and decide every budget in ``settings``.

    Exceptions from the workload propagate unchanged; the pipeline is shut down and the router
    left idle whatever happens.
    """
    plan = plan or LookPlan()
    rng = rng or random.Random()
    say = progress or (lambda message: None)
    started = time.perf_counter()
    deadline = started + settings.max_time
    rss_baseline, threads_baseline = process_reading()
    pipeline = build_pipeline(settings.pipeline)
    arms = _Arms(workload, router, pipeline)
    sequential = [m for m in TIME_METRICS if settings.budget(m) is not None]
    try:
        with calm_gc() as collect:
            # Warm-up doubles as calibration: the slower arm's per-call time sets the block size.
            warm: dict[bool, list[_Block]] = {False: [], True: []}
            while True:
                for instrumented in (False, True):
                    warm[instrumented].append(arms.block(instrumented, 1, collect))
                if time.perf_counter() - started >= min(WARMUP_S, settings.max_time / 20) and len(warm[True]) >= 2:
                    break
            per_call = max(_calibration_time(warm[False]), _calibration_time(warm[True]))
            calls = max(1, round(BLOCK_TARGET_S / max(per_call, 1e-9)))
            heap_pairs = HEAP_PAIRS_BUDGETED if settings.budget("heap") is not None else HEAP_PAIRS_REPORTED
            wall_per_call = max(median([b.wall for b in warm[False]]), median([b.wall for b in warm[True]]))
            heap_pair_s = 2 * calls * wall_per_call * TRACEMALLOC_SLOWDOWN
            # Heap rounds without a heap budget only report, so they may not eat much of the time.
            share = HEAP_SHARE_BUDGETED if settings.budget("heap") is not None else HEAP_SHARE_REPORTED
            reserve = DIAGNOSTIC_S + min(heap_pairs * heap_pair_s, share * settings.max_time) + MARGIN_S
            timed_start = time.perf_counter()
            timed_span = max(0.0, deadline - timed_start - reserve)
            look_times = [timed_start + f * timed_span for f in plan.fractions]

            pairs: list[_Pair] = []
            decisions: dict[str, Decision] = {}
            stop_reason = "max_time"
            looks_done = 0
            notes: dict[str, str] = {}
            confidence = plan.per_look_confidence
            # ABBA order from a random start: the block after an instrumented one is a baseline one
            # half of the time, so what one arm leaves behind (its export thread winding down, caches)
            # does not land mostly on the other; with a coin per pair it would, three times in four.
            orientation = rng.random() < 0.5
            for look_index, look_time in enumerate(look_times):
                while time.perf_counter() < look_time or len(pairs) < 2:
                    first = orientation ^ (len(pairs) % 2 == 1)
                    a = arms.block(first, calls, collect)
                    b = arms.block(not first, calls, collect)
                    pairs.append(_Pair(baseline=b if first else a, instrumented=a if first else b))
                    if time.perf_counter() > deadline - reserve and len(pairs) >= 2:
                        break
                looks_done = look_index + 1
                decisions = _look(pairs, sequential, settings, calls, confidence)
                say(
                    _progress_line(
                        nodeid,
                        looks_done,
                        len(plan.fractions),
                        len(pairs),
                        time.perf_counter() - started,
                        decisions,
                        settings,
                    )
                )
                undecided = [m for m in sequential if decisions[m].verdict is Verdict.INCONCLUSIVE]
                if not sequential and len(pairs) >= 16:
                    stop_reason = "no time budget"
                    break
                if sequential and not undecided:
                    stop_reason = "decided"
                    break
                if time.perf_counter() > deadline - reserve:
                    break
            for m in sequential:
                if decisions[m].verdict is Verdict.INCONCLUSIVE and m not in notes:
                    d = decisions[m]
                    budget = settings.budget(m)
                    assert budget is not None
                    if d.half_width > budget.value:
                        notes[m] = _noise_note(m, d, budget, _pair_spread(pairs, m, budget.kind, d))
                    else:
                        notes[m] = (
                            f"undecided after {len(pairs)} pairs: this run resolves overheads below "
                            f"{budget.format(budget.value - d.half_width, m)} or above "
                            f"{budget.format(budget.value + d.half_width, m)}"
                        )
            reported = [m for m in TIME_METRICS if m not in decisions]
            decisions.update(_look(pairs, reported, settings, calls, confidence))
            rss_instrumented, threads_instrumented = process_reading()
            health = _diagnostic_round(workload, settings, router, calls, per_call)
            if health.max_dropped is not None:  # a FAIL from lost spans shows where the looks' PASS did
                say(_dropped_progress_line(nodeid, health))
            # Heap pairs must end a margin before the cap: shutdown and the result still follow.
            heap_metric, retained = _heap_rounds(
                arms, settings, calls, heap_pairs, rng, plan.confidence, deadline - MARGIN_S, heap_pair_s
            )
    finally:
        router.switch(None)
        pipeline.shutdown()

    metrics = [
        MetricResult(
            metric=m,
            baseline=_arm_values(pairs, m, False),
            instrumented=_arm_values(pairs, m, True),
            overhead=decisions[m].estimate,
            ci_low=decisions[m].ci_low,
            ci_high=decisions[m].ci_high,
            kind=settings.budget(m).kind if settings.budget(m) is not None else "relative",  # type: ignore[union-attr]
            n=decisions[m].n,
            spread=decisions[m].spread,
            confidence=plan.confidence,
            budget=settings.budget(m),
            verdict=decisions[m].verdict if settings.budget(m) is not None else None,
            resolution=decisions[m].half_width if decisions[m].verdict is Verdict.INCONCLUSIVE else None,
            note=notes.get(m),
        )
        for m in TIME_METRICS
    ]
    metrics.append(heap_metric)
    wall_b = _arm_values(pairs, "wall", False)
    wall_i = _arm_values(pairs, "wall", True)
    return TestResult(
        nodeid=nodeid,
        settings=settings,
        metrics=tuple(metrics),
        health=health,
        process=ProcessProbe(
            rss_baseline=rss_baseline,
            rss_instrumented=rss_instrumented,
            threads_baseline=threads_baseline,
            threads_instrumented=threads_instrumented,
            heap_retained_baseline=retained[0],
            heap_retained_instrumented=retained[1],
        ),
        pairs=len(pairs),
        calls_per_block=calls,
        looks=looks_done,
        duration_s=time.perf_counter() - started,
        stop_reason=stop_reason,
        throughput_baseline=1 / wall_b if wall_b > 0 else math.nan,
        throughput_instrumented=1 / wall_i if wall_i > 0 else math.nan,
        samples=tuple((p.baseline.cpu, p.instrumented.cpu, p.baseline.wall, p.instrumented.wall) for p in pairs),
    )


def _progress_line(
    nodeid: str,
    look: int,
    looks: int,
    pairs: int,
    elapsed: float,
    decisions: dict[str, Decision],
    settings: MeasureSettings,
) -> str:
    """``t look 2/6: 8 pairs, 2.3s: CPU -0.6% [-2.8%, +21.2%] budget 5.0%: INCONCLUSIVE``, figures as in the summary.

    After the looks, ``_dropped_progress_line`` adds the pipeline's verdict when ``max_dropped`` is set.
    """
    parts = []
    for m, d in decisions.items():
        budget = settings.budget(m)
        shown = MetricResult(
            metric=m,
            baseline=math.nan,
            instrumented=math.nan,
            overhead=d.estimate,
            ci_low=d.ci_low,
            ci_high=d.ci_high,
            kind=budget.kind if budget is not None else "relative",
            n=d.n,
            spread=d.spread,
            confidence=d.confidence,
            budget=budget,
        )
        against = f" budget {budget.describe(m)}" if budget is not None else ""
        parts.append(
            f"{shown.label} {shown.format_overhead(d.estimate)} {shown.format_interval()}{against}: {d.verdict.value}"
        )
    return f"{nodeid} look {look}/{looks}: {pairs} pairs, {elapsed:.1f}s" + (": " + "; ".join(parts) if parts else "")


def _dropped_progress_line(nodeid: str, health: PipelineHealth) -> str:
    """``t pipeline: lost 312 spans in 1000 calls (…): FAIL (max_dropped 0)``, after the diagnostic round."""
    verdict = Verdict.FAIL if health.over_budget else Verdict.PASS
    return f"{nodeid} pipeline: {health.dropped_sentence()}: {verdict.value} (max_dropped {health.max_dropped})"


def _diagnostic_round(
    workload: Callable[[], object], settings: MeasureSettings, router: ArmRouter, calls: int, per_call: float
) -> PipelineHealth:
    """Run the instrumented arm with counters, unflushed as in production, then flush and count."""
    threads_before = process_reading()[1]
    observed = build_pipeline(settings.pipeline, observe=True)
    # Calls for DIAGNOSTIC_S of the workload's own time (per_call is only a first guess: a slow
    # backend inflates the timed blocks' flushes), so queue pressure shows as in production.
    n = min(100_000, max(calls, math.ceil(DIAGNOSTIC_S / max(per_call, 1e-9))))
    clock = time.perf_counter
    try:
        router.switch(observed.provider)
        try:
            started, done = clock(), 0
            while done < n or (done < 100_000 and clock() - started < DIAGNOSTIC_S):
                workload()
                done += 1
            n = done
        finally:
            router.switch(None)
        threads_during = process_reading()[1]  # the pipeline's own threads, before shutdown ends them
        observed.flush()
        return observed.health(n, extra_threads=threads_during - threads_before)
    finally:
        observed.shutdown()


def _heap_rounds(
    arms: _Arms,
    settings: MeasureSettings,
    calls: int,
    heap_pairs: int,
    rng: random.Random,
    confidence: float,
    deadline: float,
    expected_pair_s: float,
) -> tuple[MetricResult, tuple[float, float]]:
    """Peak heap per round in both arms, in paired rounds of their own under tracemalloc.

    A pair runs only while it is expected to end before the deadline (``expected_pair_s``, or the
    slowest pair so far if slower), except that a heap budget always gets one pair; without one,
    a workload too slow for any pair in time reports no heap figures.
    """
    budget = settings.budget("heap")
    kind = budget.kind if budget is not None else "relative"
    peaks: dict[bool, list[int]] = {False: [], True: []}
    retained: dict[bool, list[float]] = {False: [], True: []}
    pipeline, router, workload = arms.pipeline, arms.router, arms.workload

    def run(instrumented: bool) -> None:
        router.switch(pipeline.provider if instrumented else None)
        try:
            for _ in range(calls):
                workload()
            if instrumented:
                pipeline.flush()
        finally:
            router.switch(None)

    slowest = expected_pair_s
    with tracing_heap():
        for _ in range(heap_pairs):
            pair_started = time.perf_counter()
            if (peaks[False] or budget is None) and pair_started + slowest > deadline:
                break
            order = [False, True]
            rng.shuffle(order)
            for arm in order:
                result = heap_round(functools.partial(run, arm), pipeline.after_block)
                peaks[arm].append(result.peak)
                retained[arm].append(result.retained / calls)
            slowest = max(slowest, time.perf_counter() - pair_started)
    if not peaks[False]:
        skipped = MetricResult(
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
        return skipped, (math.nan, math.nan)
    baseline, instrumented = median(peaks[False]), median(peaks[True])
    note = None
    stats = [_statistic(b, i, kind) for b, i in zip(peaks[False], peaks[True], strict=True)]
    if kind == "relative" and baseline < 512 and budget is not None:
        note = (
            f"the baseline peak is {baseline:.0f} B, too small for a relative heap budget; "
            "give an absolute one such as heap='256KiB'"
        )
    decision = decide_budget(stats, budget if note is None else None, confidence, kind=kind, method="sign")
    if budget is not None and note is None and decision.verdict is Verdict.INCONCLUSIVE and len(stats) < heap_pairs:
        note = (
            f"max_time left room for {len(stats)} of {heap_pairs} heap pairs (tracemalloc slows this workload); "
            "a longer max_time decides the heap budget"
        )
    verdict = None
    if budget is not None:
        verdict = Verdict.INCONCLUSIVE if note is not None else decision.verdict
    metric = MetricResult(
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
    return metric, (median(retained[False]), median(retained[True]))
