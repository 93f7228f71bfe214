"""Observers that never run inside a timed block: heap (tracemalloc), process readings (psutil), GC state.

Each one restores what it changed, so a measured test leaves the interpreter as it found it.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psutil

from pytest_otel_overhead.results import ProcessProbe

__all__ = ["HeapRound", "calm_gc", "heap_round", "process_probe", "process_reading", "tracing_heap"]


@contextmanager
def calm_gc() -> Iterator[Callable[[], object]]:
    """Let every block start from a collected heap at little cost; restore GC state after.

    GC stays enabled (allocation pressure from spans is real overhead). Objects alive before the
    measurement are frozen, so the collection before each block walks only what the measurement
    made; without that, each collection would walk the whole test session's heap and cost more than
    a block. Nothing is frozen when the caller already froze objects of its own.
    """
    froze = gc.get_freeze_count() == 0
    gc.collect()
    if froze:
        gc.freeze()
    try:
        yield gc.collect
    finally:
        if froze:
            gc.unfreeze()


@dataclass(frozen=True)
class HeapRound:
    """One round under tracemalloc: peak above the start, and what stayed after a collection."""

    peak: int
    retained: int


@contextmanager
def tracing_heap() -> Iterator[None]:
    """tracemalloc on for the heap rounds; left as found (on if it was on, off if it was off)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        yield
    finally:
        if started:
            tracemalloc.stop()


def heap_round(run: Callable[[], None], after: Callable[[], None]) -> HeapRound:
    """Run ``run`` with tracemalloc tracing; ``after`` releases what the round may keep (outside the peak)."""
    gc.collect()
    start, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    run()
    _, peak = tracemalloc.get_traced_memory()
    after()
    gc.collect()
    end, _ = tracemalloc.get_traced_memory()
    return HeapRound(peak=max(0, peak - start), retained=end - start)


def process_reading() -> tuple[int, int]:
    """(RSS bytes, thread count) of this process."""
    process = psutil.Process()
    return process.memory_info().rss, process.num_threads()


def process_probe(
    baseline: tuple[int, int], instrumented: tuple[int, int], retained: tuple[float, float]
) -> ProcessProbe:
    """The readings taken before and after the instrumented arm ran, with the heap retained per call in each arm."""
    return ProcessProbe(
        rss_baseline=baseline[0],
        rss_instrumented=instrumented[0],
        threads_baseline=baseline[1],
        threads_instrumented=instrumented[1],
        heap_retained_baseline=retained[0],
        heap_retained_instrumented=retained[1],
    )
