"""Instructions mode: overhead as the ratio of estimated cycles per call, counted under valgrind.

Counting instructions removes timing noise, but not bias: the arms leave the interpreter and the
allocator in different states, and a fixed layout can favour one arm by a percent or two,
repeatably. So each count comes from several processes with different memory layouts, both arms
interleaved inside each process; the per-process ratio is the paired statistic and the spread from
process to process gives the interval, decided against the budget as in time mode.

The test node is re-run in child pytest processes under callgrind (started and read by
:mod:`.processes`, counting inside with :mod:`.child`; their counts decided by :mod:`.counts`); this
process meanwhile runs the heap rounds (tracemalloc) and the diagnostic round, which count bytes and
spans, not time, so the parallel work does not disturb them.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence

import pytest

from pytest_otel_overhead.engine.arms import Arms
from pytest_otel_overhead.engine.children import children_workspace
from pytest_otel_overhead.engine.diagnostic import diagnostic_round
from pytest_otel_overhead.engine.heap import heap_pairs_for, heap_rounds
from pytest_otel_overhead.engine.probes import calm_gc, process_probe, process_reading
from pytest_otel_overhead.engine.runner import Progress
from pytest_otel_overhead.instructions.counts import CYCLES, INSTRUCTIONS, Layout, instruction_metrics
from pytest_otel_overhead.instructions.cycles import CYCLE_MODEL
from pytest_otel_overhead.instructions.processes import collect_layouts, start_children, wait_for
from pytest_otel_overhead.instructions.valgrind import ValgrindUnavailable, check_valgrind
from pytest_otel_overhead.otel.pipeline import build_pipeline
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.results import MetricResult, PipelineHealth, ProcessProbe, StopReason, TestResult
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.intervals import median

__all__ = ["measure_instructions", "require_valgrind"]

NATIVE_BLOCK_S = 0.005
"""Length of a heap-round block, run natively in this process."""


def require_valgrind(settings: MeasureSettings) -> None:
    """Raise :class:`ValgrindUnavailable` early when instructions mode is chosen but cannot run."""
    if settings.mode == "instructions":
        check_valgrind()


def measure_instructions(
    item: pytest.Item,
    settings: MeasureSettings,
    workload: Callable[[], object],
    router: ArmRouter,
    *,
    label: str,
    progress: Progress | None = None,
) -> TestResult:
    """Count both arms of ``workload`` under valgrind and decide the CPU budget on the ratio of estimated cycles."""
    say = progress or (lambda message: None)
    try:
        valgrind = check_valgrind()
    except ValgrindUnavailable as error:
        pytest.fail(f"otel-overhead: {error}", pytrace=False)
    started = time.perf_counter()
    before = process_reading()
    pipeline = build_pipeline(settings.pipeline)
    arms = Arms(workload, router, pipeline)
    try:
        with calm_gc() as collect:
            per_call = median([arms.block(instrumented, 1, collect).wall for instrumented in (False, True) * 3])
        with children_workspace() as out:  # removed however the session ends, as the children end with it
            children = start_children(item, settings, label, valgrind, out, per_call, say)
            try:
                after = process_reading()
                health, heap_metric, retained = _parent_rounds(arms, settings, per_call)
                wait_for(children, settings.max_time, started)
            finally:
                for counting in children:
                    counting.child.stop()
            layouts = collect_layouts(out, children)
    finally:
        router.switch(None)
        pipeline.shutdown()
    metrics = [*instruction_metrics(settings, layouts, CYCLE_MODEL), heap_metric]
    result = _result(label, settings, layouts, metrics, health, process_probe(before, after, retained), started)
    gate, counted = result.metric(CYCLES), result.metric(INSTRUCTIONS)
    if gate is not None and counted is not None:
        say(
            f"{label}: estimated cycles {gate.format_overhead(gate.overhead)} {gate.format_interval()}, "
            f"instructions {counted.format_overhead(counted.overhead)}, "
            f"over {len(layouts)} layouts in {result.duration_s:.1f}s"
        )
    return result


def _result(
    label: str,
    settings: MeasureSettings,
    layouts: Sequence[Layout],
    metrics: Sequence[MetricResult],
    health: PipelineHealth,
    process: ProcessProbe,
    started: float,
) -> TestResult:
    return TestResult(
        nodeid=label,
        settings=settings,
        metrics=tuple(metrics),
        health=health,
        process=process,
        pairs=len(layouts),
        calls_per_block=round(median([layout.calls for layout in layouts])),
        looks=1,
        duration_s=time.perf_counter() - started,
        stop_reason=StopReason.COUNTED,
        throughput_baseline=math.nan,
        throughput_instrumented=math.nan,
        mode="instructions",
        instruction_samples=tuple(layout.sample for layout in layouts),
        cycle_model=CYCLE_MODEL,
    )


def _parent_rounds(
    arms: Arms, settings: MeasureSettings, per_call: float
) -> tuple[PipelineHealth, MetricResult, tuple[float, float]]:
    """Diagnostic and heap rounds, as in time mode, natively in this process."""
    calls = max(1, round(NATIVE_BLOCK_S / max(per_call, 1e-9)))
    with calm_gc():
        health = diagnostic_round(arms.workload, settings, arms.router, calls, per_call)
        # No time cap in this mode: every heap pair runs.
        heap_metric, retained = heap_rounds(
            arms,
            settings,
            calls,
            pairs=heap_pairs_for(settings),
            rng=random.Random(0),
            confidence=settings.confidence,
            deadline=math.inf,
            expected_pair_s=0.0,
        )
    return health, heap_metric, retained
