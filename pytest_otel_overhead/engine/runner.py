"""The measurement engine: paired, randomly ordered blocks of both arms with sequential looks.

``measure`` runs these phases in order, all within the test's ``max_time``:

1. warm-up in both arms, then calibrate the calls per block to about ``BLOCK_TARGET_S``
   (``timed.warm_up``); from the calibration, keep back time for the phases after the timed pairs
   (``heap.plan_heap_rounds``, ``diagnostic.diagnostic_reserve``, ``MARGIN_S``);
2. timed pairs (``timed.timed_pairs``): a baseline and an instrumented block (``arms.Arms``), in ABBA
   order from a random start, each from a collected heap, the instrumented one flushing its
   pipeline inside the timed span, so export work is charged to it; CPU time of the whole process
   (all threads), wall time, and the wall latency of every call are recorded;
3. looks at planned fractions of the time (``LookPlan``, ``looks.look``): stop as soon as every time
   budget is decided, else measure to the cap; past ``MAX_BATCHES`` pairs, intervals come from
   batches of consecutive pairs, since neighbouring pairs are not independent on a shared machine;
4. a note for each budget left undecided, and estimates for the metrics without a budget
   (``looks.undecided_notes``);
5. one diagnostic round with counting pipeline: spans started, sampled, exported, dropped, metric
   measurements and spans that went through other providers (``diagnostic.diagnostic_round``);
6. heap rounds under tracemalloc (peak and retained per call), in pairs of their own
   (``heap.heap_rounds``);
7. the result, built from all of the above, saying when the instrumented arm recorded no telemetry
   (``telemetry.no_telemetry_reason``).

All of it runs within ``surroundings.surroundings``: tracemalloc paused, tracers and profilers
noted, provider overrides by the measured code stopping the measurement. Nothing that observes
(counting, tracemalloc, psutil) runs inside a timed block. Each phase caps the pipeline's exports,
flushes and shutdown at the end of its time (``deadlines``), so the measurement keeps to
``max_time`` whatever the exporter does.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from pytest_otel_overhead.engine.arms import Arms, Clock
from pytest_otel_overhead.engine.deadlines import cap_phase, cap_timed_pairs, shut_down, with_rounds_cut
from pytest_otel_overhead.engine.diagnostic import diagnostic_reserve, diagnostic_round
from pytest_otel_overhead.engine.heap import HeapPlan, heap_reserve_limit, heap_rounds, plan_heap_rounds
from pytest_otel_overhead.engine.looks import (
    TIME_METRICS,
    Between,
    arm_value,
    dropped_progress_line,
    look,
    time_metric,
    undecided_notes,
)
from pytest_otel_overhead.engine.probes import calm_gc, process_probe, process_reading
from pytest_otel_overhead.engine.surroundings import Surroundings, surroundings
from pytest_otel_overhead.engine.telemetry import failed_exports_reason, no_telemetry_reason
from pytest_otel_overhead.engine.timed import Run, Sizing, TimedPairs, starved_cause, timed_pairs, warm_up
from pytest_otel_overhead.otel.pipeline import build_pipeline
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.results import MetricResult, PipelineHealth, ProcessProbe, TestResult
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.verdict import Decision, LookPlan, statistic_of

__all__ = ["MARGIN_S", "Progress", "Share", "measure"]

MARGIN_S = 0.4
"""Kept back beyond the estimates, for the last pair, the last look's statistics, the pipeline's
shutdown and the result: with 0.05 s, runs that went to the cap ended up to 0.16 s past it here."""

Progress = Callable[[str], None]
"""Where a measurement says how it is going, one line at a time (every measuring mode takes one)."""


def measure(
    workload: Callable[[], object],
    settings: MeasureSettings,
    router: ArmRouter,
    *,
    nodeid: str = "",
    progress: Progress | None = None,
    plan: LookPlan | None = None,
    rng: random.Random | None = None,
    share: Share | None = None,
) -> TestResult:
    """Measure ``workload`` in both arms and decide every budget in ``settings``.

    ``share`` says what this process's measurement is part of: by default the whole one, whose intervals
    count the between-process term of ``settings.process_term``.

    A workload that raises on a measured repetition raises ``RepetitionFailed``, its own exception
    chained; measured code that tries to replace a global provider stops the measurement with
    ``MeasurementStopped``. The pipeline is shut down, the router left idle and tracemalloc as
    found whatever happens.
    """
    plan = plan or LookPlan(confidence=settings.confidence)
    rng = rng or random.Random()
    # Looked up on each call, not at import, and handed to every phase: one clock times the whole measurement.
    clock = Clock(wall=time.perf_counter, cpu=time.process_time)
    started = clock.wall()
    before = process_reading()
    with surroundings(router) as around:
        pipeline = build_pipeline(settings.pipeline)
        arms = Arms(workload, router, pipeline, clock, check=around.check)
        try:
            with calm_gc() as collect:
                say = progress or (lambda message: None)
                share = share or Share()
                run = Run(
                    arms,
                    settings,
                    plan,
                    collect,
                    started,
                    started + settings.max_time - share.keep_back_s,
                    nodeid,
                    say,
                    between=_between(settings, share, plan, around),
                    adds_processes=share.adds_processes,
                    timed_only=share.timed_only,
                )
                done = _phases(run, rng, around)
        finally:
            router.switch(None)
            shut_down(pipeline, clock.wall, started + settings.max_time)
    if done.health is not None:
        done = replace(done, health=with_rounds_cut(done.health, pipeline))
    metrics = _time_metrics(done, settings, plan.confidence, run.between())
    process = process_probe(before, done.after, done.retained)
    heap = () if done.heap_metric is None else (done.heap_metric,)
    return _result(run, done, (*metrics, *heap), process, tuple(around.notes))


def _time_metrics(
    done: _Phases, settings: MeasureSettings, confidence: float, between: Between | None
) -> list[MetricResult]:
    """Every time metric's result, decided or only reported, with the between-process term it counted."""
    return [
        _with_term(
            time_metric(m, done.timed.pairs, done.decisions[m], done.notes.get(m), settings, confidence),
            between,
            done.decisions[m],
        )
        for m in TIME_METRICS
    ]


@dataclass(frozen=True)
class Share:
    """What one process's measurement is part of.

    The whole measurement (the default) counts the between-process term in its intervals; a process
    measuring one share of a measurement over processes counts only its own pairs (``counts_term``
    False), since the parent pools the processes; a share added to decide a budget the term kept open
    runs the timed pairs only (``timed_only``): the first process's diagnostic and heap rounds stand for all.
    """

    counts_term: bool = True
    adds_processes: bool = False
    """Whether fresh processes follow when the term alone keeps a budget open: the timed pairs stop then."""
    timed_only: bool = False
    keep_back_s: float = 0.0
    """Seconds of ``max_time`` left to the processes known to follow this one (``replicas.kept_back_s``):
    its phases end that much sooner."""


def _between(
    settings: MeasureSettings, share: Share, plan: LookPlan, around: Surroundings
) -> Callable[[], Between | None]:
    """The between-process term each look counts, with the machine's load as it is at that look."""
    if not share.counts_term:
        return lambda: None
    return lambda: Between(settings.process_term, around.busy(), plan.confidence)


def _with_term(metric: MetricResult, between: Between | None, decision: Decision) -> MetricResult:
    """The metric with the term its interval counts, and the interval of its own pairs, when it counted one."""
    if between is None or decision.term <= 0:
        return metric
    relative = metric.kind == "relative"
    at = statistic_of(metric.overhead, metric.kind) if relative else 0.0
    spread = math.expm1(between.term.with_load(at, between.busy))
    return replace(
        metric,
        # An absolute figure's term is that share of its baseline, in its units (``Between.widening``).
        between_process_spread=spread if relative else spread * abs(metric.baseline),
        between_process_source=between.term.source,
        process_ci_low=decision.own_low,
        process_ci_high=decision.own_high,
    )


@dataclass(frozen=True)
class _Phases:
    """What the phases found: calls per block, timed pairs and decisions, pipeline health and heap."""

    calls: int
    timed: TimedPairs
    decisions: dict[str, Decision]
    notes: dict[str, str]
    after: tuple[int, int]
    health: PipelineHealth | None
    heap_metric: MetricResult | None
    retained: tuple[float, float]


def _phases(run: Run, rng: random.Random, around: Surroundings) -> _Phases:
    """Warm-up, timed pairs, diagnostic round and heap rounds, in that order, each capped at its time;
    a share that runs the timed pairs only ends after them."""
    arms, settings, plan = run.arms, run.settings, run.plan
    later = 0.0 if run.timed_only else diagnostic_reserve(settings) + heap_reserve_limit(settings)
    cap_timed_pairs(run, later + MARGIN_S)
    sizing = warm_up(run)
    heap_plan = plan_heap_rounds(settings, sizing.calls, sizing.wall_per_call)
    reserve = MARGIN_S if run.timed_only else diagnostic_reserve(settings) + heap_plan.reserve_s + MARGIN_S
    cap_timed_pairs(run, reserve)
    arms.phase = "timed pairs"
    timed = timed_pairs(run, sizing.calls, rng, reserve=reserve)
    around.look()  # a tracer or profiler that arrived while the pairs ran
    around.note_load()
    cap_phase(run, run.deadline - MARGIN_S)  # the worker's exports from now on, and the heap rounds'
    notes = undecided_notes(timed.pairs, timed.decisions, settings, starved_cause(run, timed), run.between())
    decisions = {**timed.decisions, **_estimates(timed, settings, sizing.calls, plan, run.between())}
    after = process_reading()
    if run.timed_only:
        return _Phases(sizing.calls, timed, decisions, notes, after, None, None, (math.nan, math.nan))
    health = _diagnostic_round(run, sizing, heap_plan)
    around.check()
    if health.max_dropped is not None:  # a FAIL from lost spans shows where the looks' PASS did
        run.say(dropped_progress_line(run.nodeid, health))
    arms.phase = "heap rounds"
    # Heap pairs must end a margin before the cap: shutdown and the result still follow.
    heap_metric, retained = heap_rounds(
        arms,
        settings,
        sizing.calls,
        pairs=heap_plan.pairs,
        rng=rng,
        confidence=plan.confidence,
        deadline=run.deadline - MARGIN_S,
        expected_pair_s=heap_plan.pair_s,
    )
    return _Phases(sizing.calls, timed, decisions, notes, after, health, heap_metric, retained)


def _diagnostic_round(run: Run, sizing: Sizing, heap_plan: HeapPlan) -> PipelineHealth:
    """The diagnostic round, ending where the time kept for the heap rounds begins."""
    return diagnostic_round(
        run.arms.workload,
        run.settings,
        run.arms.router,
        sizing.calls,
        sizing.per_call,
        clock=run.arms.clock.wall,
        deadline=run.deadline - heap_plan.reserve_s - MARGIN_S,
    )


def _estimates(
    timed: TimedPairs, settings: MeasureSettings, calls: int, plan: LookPlan, between: Between | None
) -> dict[str, Decision]:
    """Estimates for the time metrics without a budget, which the looks leave out: they are only reported."""
    reported = [m for m in TIME_METRICS if m not in timed.decisions]
    return look(timed.pairs, reported, settings, calls, plan.per_look_confidence, between)


def _result(
    run: Run, done: _Phases, metrics: Sequence[MetricResult], process: ProcessProbe, notes: tuple[str, ...]
) -> TestResult:
    pairs = done.timed.pairs
    wall_b = arm_value(pairs, "wall", False)
    wall_i = arm_value(pairs, "wall", True)
    return TestResult(
        nodeid=run.nodeid,
        settings=run.settings,
        metrics=tuple(metrics),
        health=done.health,
        process=process,
        pairs=len(pairs),
        calls_per_block=done.calls,
        looks=done.timed.looks,
        duration_s=run.arms.clock.wall() - run.started,
        stop_reason=done.timed.stop_reason,
        throughput_baseline=1 / wall_b if wall_b > 0 else math.nan,
        throughput_instrumented=1 / wall_i if wall_i > 0 else math.nan,
        samples=tuple((p.baseline.cpu, p.instrumented.cpu, p.baseline.wall, p.instrumented.wall) for p in pairs),
        no_telemetry=no_telemetry_reason(done.health, run.settings),
        failed_exports=failed_exports_reason(done.health, run.settings),
        notes=notes,
    )
