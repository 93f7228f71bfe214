"""Estimated cycles from counts: the simulated caches, a miss's cost, and the one formula that weighs them.

Instructions mode (``instructions.cycles``) counts under callgrind's cache simulation and records,
per process and call, the columns of :data:`INSTRUCTION_COLUMNS` with the :class:`CycleModel` it
counted with; the mode's gate and comparisons between saved runs (``history.shift``) both turn
those counts into estimated cycles here, so that the formula lives in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["INSTRUCTION_COLUMNS", "CacheLevel", "CycleModel"]

INSTRUCTION_COLUMNS = (
    "instructions_baseline",
    "instructions_instrumented",
    "l1_misses_baseline",
    "l1_misses_instrumented",
    "ll_misses_baseline",
    "ll_misses_instrumented",
    "mispredicts_baseline",
    "mispredicts_instrumented",
)
"""Per process and call; runs saved before the cache simulation hold the first two only."""


@dataclass(frozen=True)
class CacheLevel:
    """One simulated cache: size, associativity and line size, as callgrind's ``--I1``, ``--D1``, ``--LL`` take them."""

    size_bytes: int
    ways: int
    line_bytes: int

    @property
    def option(self) -> str:
        return f"{self.size_bytes},{self.ways},{self.line_bytes}"


@dataclass(frozen=True)
class CycleModel:
    """How instructions mode estimates cycles: the caches it simulates (fixed, not the host's) and a miss's cost.

    Estimated cycles = instructions + ``l1_miss_cycles`` x first-level misses + ``ll_miss_cycles`` x last-level
    misses + ``mispredict_cycles`` x mispredicted branches."""

    i1: CacheLevel
    """First-level instruction cache."""
    d1: CacheLevel
    """First-level data cache."""
    ll: CacheLevel
    """Last-level cache."""
    l1_miss_cycles: float
    """Cycles added per first-level miss (instruction read, data read or write)."""
    ll_miss_cycles: float
    """Cycles added per last-level miss, on top of its first-level miss."""
    mispredict_cycles: float
    """Cycles added per mispredicted branch (conditional or indirect)."""

    def cycles(self, instructions: float, l1_misses: float, ll_misses: float, mispredicts: float) -> float:
        """Estimated cycles: each instruction one cycle, each miss and mispredict its weight (a last-level
        miss is also a first-level miss: it pays both)."""
        return (
            instructions
            + self.l1_miss_cycles * l1_misses
            + self.ll_miss_cycles * ll_misses
            + self.mispredict_cycles * mispredicts
        )

    def arms(self, row: Sequence[float]) -> tuple[float, float]:
        """(baseline, instrumented) estimated cycles of one row of ``instruction_samples`` (all its columns)."""
        if len(row) != len(INSTRUCTION_COLUMNS):
            raise ValueError(f"a row of {len(row)} columns holds no cache counts; estimated cycles need all of them")
        baseline, instrumented = row[0::2], row[1::2]  # the columns alternate the arms, figure by figure
        return self.cycles(*baseline), self.cycles(*instrumented)

    def differences(self, other: CycleModel) -> tuple[str, ...]:
        """What sets ``other`` apart from this model: each cache geometry and weight that differs."""
        out = []
        for name, label in (("i1", "I1"), ("d1", "D1"), ("ll", "LL")):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                out.append(f"{label} {mine.option} → {theirs.option}")
        weights = (
            ("l1_miss_cycles", "first-level miss"),
            ("ll_miss_cycles", "last-level miss"),
            ("mispredict_cycles", "mispredict"),
        )
        for name, label in weights:
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                out.append(f"{label} {mine:g} → {theirs:g} cycles")
        return tuple(out)
