"""Estimated cycles from callgrind's simulated caches: the fixed cache model, the events read, the weights.

Callgrind runs with its cache simulation on, over caches whose sizes the plugin fixes (not the
host's, which callgrind would read by default), so a count is the same on every machine. Each dump
counts, per event named on its ``events:`` line, instructions executed (``Ir``), data reads and
writes (``Dr``, ``Dw``), first-level misses (``I1mr``, ``D1mr``, ``D1mw``) and last-level misses
(``ILmr``, ``DLmr``, ``DLmw``), and with branch simulation on (only when mispredicts weigh),
mispredicted conditional and indirect branches (``Bcm``, ``Bim``). An estimated cycle count weighs them:

    cycles = Ir + w1 × (I1mr + D1mr + D1mw) + wLL × (ILmr + DLmr + DLmw) + wB × (Bcm + Bim)

the classic model of cachegrind's documentation (about 10 cycles to the last level, 100 to
memory) plus a mispredict's pipeline flush, with weights calibrated against time on real workloads
(docs/instructions-mode.md, ``python -m benchmarks.cycles_calibration``). A last-level miss is also a
first-level miss: it pays both weights. The formula itself is ``results.CycleModel.cycles``, which comparisons
between saved runs use too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pytest_otel_overhead.results import CacheLevel, CycleModel

__all__ = [
    "CYCLE_MODEL",
    "EVENTS",
    "L1_MISS_EVENTS",
    "LL_MISS_EVENTS",
    "MISPREDICT_EVENTS",
    "Counts",
    "cache_options",
    "counts_from_events",
]

L1_MISS_EVENTS = ("I1mr", "D1mr", "D1mw")
LL_MISS_EVENTS = ("ILmr", "DLmr", "DLmw")
MISPREDICT_EVENTS = ("Bcm", "Bim")
EVENTS = ("Ir", *L1_MISS_EVENTS, *LL_MISS_EVENTS, *MISPREDICT_EVENTS)
"""The events an estimated cycle count needs; a dump without cache simulation has ``Ir`` only."""

CYCLE_MODEL = CycleModel(
    i1=CacheLevel(size_bytes=32768, ways=8, line_bytes=64),
    d1=CacheLevel(size_bytes=32768, ways=8, line_bytes=64),
    ll=CacheLevel(size_bytes=8388608, ways=16, line_bytes=64),
    l1_miss_cycles=40.0,
    ll_miss_cycles=300.0,
    mispredict_cycles=0.0,
)
"""A common x86-64 server core (32 KiB 8-way first-level caches, an 8 MiB last level) and the weights
calibrated against time (docs/instructions-mode.md): least squares within what a miss can cost put
both miss weights at the top of that range; mispredicts got no weight, so branch simulation is off."""


def cache_options(model: CycleModel = CYCLE_MODEL) -> list[str]:
    """Callgrind's options for the simulated caches of ``model``; branches are simulated when they weigh."""
    return [
        "--cache-sim=yes",
        f"--branch-sim={'yes' if model.mispredict_cycles else 'no'}",
        f"--I1={model.i1.option}",
        f"--D1={model.d1.option}",
        f"--LL={model.ll.option}",
    ]


@dataclass(frozen=True)
class Counts:
    """What a block (or a call, once divided) cost: instructions, cache misses by level, mispredicted branches."""

    instructions: float
    l1_misses: float = 0.0
    ll_misses: float = 0.0
    mispredicts: float = 0.0

    @property
    def figures(self) -> tuple[float, float, float, float]:
        return (self.instructions, self.l1_misses, self.ll_misses, self.mispredicts)

    def __sub__(self, other: Counts) -> Counts:
        return Counts(*(mine - theirs for mine, theirs in zip(self.figures, other.figures, strict=True)))

    def per(self, calls: int) -> Counts:
        return Counts(*(figure / calls for figure in self.figures))

    def cycles(self, model: CycleModel = CYCLE_MODEL) -> float:
        """Estimated cycles under ``model`` (its formula: ``results.CycleModel.cycles``)."""
        return model.cycles(*self.figures)

    @staticmethod
    def mean(counts: Sequence[Counts]) -> Counts:
        return Counts(*(sum(column) / len(counts) for column in zip(*(c.figures for c in counts), strict=True)))


def counts_from_events(events: Mapping[str, int]) -> Counts:
    """The counts of one dump from its events by name; events missing (no cache simulation) count 0."""
    return Counts(
        instructions=events.get("Ir", 0),
        l1_misses=sum(events.get(name, 0) for name in L1_MISS_EVENTS),
        ll_misses=sum(events.get(name, 0) for name in LL_MISS_EVENTS),
        mispredicts=sum(events.get(name, 0) for name in MISPREDICT_EVENTS),
    )
