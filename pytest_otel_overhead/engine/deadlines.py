"""The time cap on the pipeline: exports, flushes and the shutdown end within each phase's time.

A backend that is down, never answers, refuses everything or is slow would otherwise hold the
measurement at every flush for the exporter's whole deadline (``export_timeout``, 30 s by
default). Each phase therefore caps the pipeline's waits at the end of the time it may use
(:meth:`Pipeline.cap`), so it costs at most that and the phases after it keep their time:

* warm-up and timed pairs: until the time kept back for the later phases, plus ``TIMED_GRACE_S``
  for the pair still in progress then;
* the diagnostic round, on a pipeline of its own: until the heap rounds' time (its ``deadline``);
* the heap rounds, and the batch worker's exports meanwhile: until the margin before ``max_time``;
* the shutdown: until ``max_time``, but at least ``SHUTDOWN_MIN_S``.

What the cap cut short is counted and reported with the pipeline's health. A measurement thus
ends within ``max_time + CAP_MARGIN_S`` whatever the exporter does (docs/method.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from pytest_otel_overhead.engine.timed import Run
from pytest_otel_overhead.otel.pipeline import Pipeline
from pytest_otel_overhead.results import PipelineHealth

__all__ = [
    "CAP_MARGIN_S",
    "SHUTDOWN_MIN_S",
    "TIMED_GRACE_S",
    "cap_phase",
    "cap_timed_pairs",
    "shut_down",
    "with_rounds_cut",
]

TIMED_GRACE_S = 0.2
"""The timed pairs stop at the first pair that ends past their time; its exports may still run this long."""
SHUTDOWN_MIN_S = 0.1
"""A shutdown that starts past max_time still gets this long for the last spans of a healthy pipeline."""
CAP_MARGIN_S = 1.0
"""How far past max_time a measurement may end: the shutdown's minimum (the only export time allowed past
max_time), threads waking late on a loaded machine, the last statistics and the result."""


def cap_phase(run: Run, until: float) -> None:
    """Let the measured pipeline's exports and flushes run no later than ``until`` (on the run's clock)."""
    run.arms.pipeline.cap(until - run.arms.clock.wall())


def cap_timed_pairs(run: Run, reserve: float) -> None:
    """Cap the warm-up's and timed pairs' exports where the ``reserve`` kept back for the later phases begins.

    Before the calibration has sized the heap rounds, give the largest reserve they may take: an
    export started then keeps its deadline, and must not run into the later phases' time.
    """
    cap_phase(run, run.deadline - reserve + TIMED_GRACE_S)


def shut_down(pipeline: Pipeline, clock: Callable[[], float], deadline: float) -> None:
    """Shut ``pipeline`` down by ``deadline`` (on ``clock``), or within ``SHUTDOWN_MIN_S`` if it has passed."""
    pipeline.cap(max(deadline - clock(), SHUTDOWN_MIN_S))
    pipeline.shutdown()


def with_rounds_cut(health: PipelineHealth, pipeline: Pipeline) -> PipelineHealth:
    """``health`` with what the cap cut short in the measured pipeline: timed and heap rounds, shutdown."""
    capped = pipeline.capped
    with capped.lock:
        return dataclasses.replace(
            health,
            rounds_exports_timed_out=capped.exports,
            rounds_spans_timed_out=capped.spans,
            export_left_running=capped.running > 0,
        )
