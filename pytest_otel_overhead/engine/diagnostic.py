"""The diagnostic round: the instrumented arm once more, through a counting pipeline, untimed.

It counts spans started, sampled, exported and dropped, export calls, bytes and the pipeline's
threads, the measurements made on the plugin's metric instruments, and spans started through SDK
TracerProviders other than the arm's (which the arms cannot switch). Counting costs time, so it
runs after the timed pairs and never inside a timed block.
With a deadline, the round and its pipeline's exports end by it, whatever the backend does, so
the heap rounds after it keep their time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace

from opentelemetry.sdk.trace import TracerProvider

from pytest_otel_overhead.engine.probes import process_reading
from pytest_otel_overhead.engine.repeatable import RepetitionFailed
from pytest_otel_overhead.otel.exporters import sends_requests
from pytest_otel_overhead.otel.foreign import counting_foreign_spans
from pytest_otel_overhead.otel.pipeline import build_pipeline
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.results import PipelineHealth
from pytest_otel_overhead.settings.records import MeasureSettings

__all__ = ["DIAGNOSTIC_FLUSH_S", "DIAGNOSTIC_S", "DIAGNOSTIC_WIND_DOWN_S", "diagnostic_reserve", "diagnostic_round"]

DIAGNOSTIC_S = 0.25
DIAGNOSTIC_FLUSH_S = 0.25
"""Kept for the final flush when the exporter sends requests: a few batches to a collector on a loaded machine."""
DIAGNOSTIC_WIND_DOWN_S = 0.1
"""Kept after the exports when they send requests: the receiver's figures and the shutdown, so that
with a backend that holds every export to the cap the heap rounds still start on time."""
MAX_CALLS = 100_000


def diagnostic_reserve(settings: MeasureSettings) -> float:
    """Time the round needs: ``DIAGNOSTIC_S`` of calls, and a flush if exports cost a request."""
    return DIAGNOSTIC_S + _after_calls(settings)


def _after_calls(settings: MeasureSettings) -> float:
    """Time the round needs after its calls: nothing with a local exporter, which never waits."""
    return DIAGNOSTIC_FLUSH_S + DIAGNOSTIC_WIND_DOWN_S if sends_requests(settings.pipeline.exporter) else 0.0


def diagnostic_round(
    workload: Callable[[], object],
    settings: MeasureSettings,
    router: ArmRouter,
    calls: int,
    per_call: float,
    *,
    clock: Callable[[], float] = time.perf_counter,
    deadline: float | None = None,
) -> PipelineHealth:
    """Run the instrumented arm with counters, unflushed as in production, then flush and count.

    With a ``deadline`` (on ``clock``) the round ends by it: the calls stop in time for the flush,
    and no export or flush of the round's pipeline runs into the time its count and shutdown need;
    exports cut short are counted apart.
    """
    threads_before = process_reading()[1]
    observed = build_pipeline(settings.pipeline, observe=True)
    calls_until = None
    if deadline is not None:
        calls_until = deadline - _after_calls(settings)
        observed.cap(calls_until + DIAGNOSTIC_FLUSH_S - clock())
    # Calls for DIAGNOSTIC_S of the workload's own time (per_call is only a first guess: a slow
    # backend inflates the timed blocks' flushes), so queue pressure shows as in production.
    n = min(MAX_CALLS, max(calls, math.ceil(DIAGNOSTIC_S / max(per_call, 1e-9))))
    try:
        with router.meters.counting() as measured, counting_foreign_spans(observed.provider) as foreign:
            n, calls_s = _calls(workload, router, observed.provider, n, clock, calls_until)
        threads_during = process_reading()[1]  # the pipeline's own threads, before shutdown ends them
        observed.flush()
        health = observed.health(n, extra_threads=threads_during - threads_before)
        return replace(
            health,
            calls_s=calls_s,
            metric_measurements=measured.measurements,
            foreign_spans=foreign.total,
            foreign_origins=foreign.describe(n),
        )
    finally:
        observed.shutdown()


def _calls(
    workload: Callable[[], object],
    router: ArmRouter,
    provider: TracerProvider,
    n: int,
    clock: Callable[[], float],
    until: float | None,
) -> tuple[int, float]:
    """At least ``n`` calls in the arm of ``provider``, more until ``DIAGNOSTIC_S`` has passed; how many ran,
    and in how many seconds of wall time.

    Past ``until``, it stops after the call in progress.
    """
    router.switch(provider)
    try:
        started, done = clock(), 0
        try:
            while done < n or (done < MAX_CALLS and clock() - started < DIAGNOSTIC_S):
                workload()
                done += 1
                if until is not None and clock() >= until:
                    break
        except Exception as error:
            raise RepetitionFailed("diagnostic round", True, 1, done + 1, n) from error
        return done, clock() - started
    finally:
        router.switch(None)
