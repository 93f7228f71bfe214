"""The two arms of a measurement: blocks of workload calls without (baseline) or with the SDK pipeline.

A timed block starts from a collected heap and times the whole process's CPU time (all threads),
the wall time and every call's latency; the instrumented block flushes its pipeline inside the
timed span, so export work is charged to it. Untimed runs serve the heap rounds, which observe
the heap instead. A call that raises is reported as the repetition it was (``RepetitionFailed``),
and after every block or run, outside the timed span, ``check`` may stop the measurement.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pytest_otel_overhead.engine.repeatable import RepetitionFailed
from pytest_otel_overhead.otel.pipeline import Pipeline
from pytest_otel_overhead.otel.routing import ArmRouter

__all__ = ["Arms", "Block", "Clock", "Pair"]


@dataclass(frozen=True)
class Clock:
    """The clocks a measurement reads: wall time and the CPU time of the whole process."""

    wall: Callable[[], float] = time.perf_counter
    cpu: Callable[[], float] = time.process_time


@dataclass(frozen=True)
class Block:
    """One timed block of one arm: CPU and wall time per call, and each call's wall latency."""

    cpu: float
    wall: float
    latencies: tuple[float, ...]


@dataclass(frozen=True)
class Pair:
    """A baseline and an instrumented block run one after the other."""

    baseline: Block
    instrumented: Block


class Arms:
    """Runs blocks of the workload in either arm, leaving the router idle after each.

    ``phase`` names the phase under way in errors; ``check`` runs after each block or run.
    """

    def __init__(
        self,
        workload: Callable[[], object],
        router: ArmRouter,
        pipeline: Pipeline,
        clock: Clock | None = None,
        *,
        check: Callable[[], None] | None = None,
    ) -> None:
        self.workload = workload
        self.router = router
        self.pipeline = pipeline
        self.clock = clock or Clock()
        self.check = check or (lambda: None)
        self.phase = "warm-up"
        self.blocks = {False: 0, True: 0}

    def _failed(self, instrumented: bool, call: int, calls: int) -> RepetitionFailed:
        return RepetitionFailed(self.phase, instrumented, self.blocks[instrumented], call + 1, calls)

    def block(self, instrumented: bool, calls: int, collect: Callable[[], object]) -> Block:
        """``calls`` timed calls in one arm, from a heap ``collect`` has just collected."""
        workload = self.workload
        clock, cpu_clock = self.clock.wall, self.clock.cpu
        latencies = [0.0] * calls
        self.blocks[instrumented] += 1
        collect()
        self.router.switch(self.pipeline.provider if instrumented else None)
        try:
            cpu_start = cpu_clock()
            wall_start = clock()
            try:  # no cost per call unless one raises
                for i in range(calls):
                    started = clock()
                    workload()
                    latencies[i] = clock() - started
            except Exception as error:
                raise self._failed(instrumented, i, calls) from error
            if instrumented:
                # The block's length lets exports and metric collection keep production's pace.
                self.pipeline.flush(clock() - wall_start)
            wall_end = clock()
            cpu_end = cpu_clock()
        finally:
            self.router.switch(None)
        self.pipeline.after_block()
        self.check()
        return Block((cpu_end - cpu_start) / calls, (wall_end - wall_start) / calls, tuple(latencies))

    def pair(self, instrumented_first: bool, calls: int, collect: Callable[[], object]) -> Pair:
        """A block of each arm, the instrumented one first if ``instrumented_first``."""
        first = self.block(instrumented_first, calls, collect)
        second = self.block(not instrumented_first, calls, collect)
        if instrumented_first:
            return Pair(baseline=second, instrumented=first)
        return Pair(baseline=first, instrumented=second)

    def run(self, instrumented: bool, calls: int) -> None:
        """``calls`` untimed calls in one arm, the instrumented one flushing its pipeline at the end."""
        self.blocks[instrumented] += 1
        self.router.switch(self.pipeline.provider if instrumented else None)
        try:
            done = 0
            try:
                while done < calls:
                    self.workload()
                    done += 1
            except Exception as error:
                raise self._failed(instrumented, done, calls) from error
            if instrumented:
                self.pipeline.flush()
        finally:
            self.router.switch(None)
        self.check()
