"""Regression criteria: how much a metric's overhead may grow between two runs (``cpu:+1pp``, ``cpu:+20%``),
and how one is decided on the box of the earlier overhead ``a`` and its shift ``δ`` (``history.compare``)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from pytest_otel_overhead.history.shift import COUNTED_METRICS, TIME_COLUMNS
from pytest_otel_overhead.results import METRIC_LABELS
from pytest_otel_overhead.stats.intervals import Interval
from pytest_otel_overhead.stats.verdict import Verdict, decide
from pytest_otel_overhead.units import SettingsError
from pytest_otel_overhead.wire.text import TextEnum

__all__ = [
    "COMPARED_METRICS",
    "Criterion",
    "HeldOpen",
    "corners",
    "decide_criterion",
    "held_open",
    "idle_message",
    "parse_criteria",
    "points",
    "relative",
]

COMPARED_METRICS = (*TIME_COLUMNS, *COUNTED_METRICS)
"""The metrics whose raw per-pair samples are kept, and so the ones two runs can be compared on: CPU and wall
time, and in instructions mode estimated cycles (its gate) and instructions."""
_CRITERION = re.compile(r"^\s*([a-z_0-9]+)\s*:\s*\+?\s*((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(pp|%)\s*$")


@dataclass(frozen=True)
class Criterion:
    """How much a metric's overhead may grow: ``amount`` percentage points (``pp``) or relatively (``%``)."""

    metric: str
    amount: float
    unit: Literal["pp", "%"]

    def describe(self) -> str:
        return f"{self.metric}:+{self.amount * 100:g}{self.unit}"

    def allowed(self) -> str:
        if self.unit == "pp":
            return f"more than {self.amount * 100:g} percentage points"
        return f"more than {self.amount * 100:g}% of its earlier value"


def parse_criteria(values: str | Iterable[str], source: str) -> tuple[Criterion, ...]:
    """``"cpu:+1pp"``, ``"cpu:+1pp,wall:+20%"``, or several such strings; errors name ``source``."""
    texts = [values] if isinstance(values, str) else list(values)
    criteria: list[Criterion] = []
    for text in texts:
        for part in text.split(","):
            if not part.strip():
                continue
            match = _CRITERION.match(part.strip().lower())
            if not match:
                raise SettingsError(
                    f"{source}: {part.strip()!r} is not a regression criterion; write METRIC:+Npp (grew by more than "
                    "N percentage points) or METRIC:+N% (grew by more than N% of itself), e.g. cpu:+1pp"
                )
            metric, number, unit = match.group(1), float(match.group(2)), match.group(3)
            if metric not in COMPARED_METRICS:
                raise SettingsError(
                    f"{source}: {part.strip()!r}: runs keep per-pair samples of {', '.join(COMPARED_METRICS)} "
                    f"only, so only those can be compared"
                )
            if not math.isfinite(number) or number <= 0:
                raise SettingsError(f"{source}: {part.strip()!r}: the allowed growth must be above 0")
            criteria.append(Criterion(metric, number / 100, unit))  # type: ignore[arg-type]
    if not criteria:
        raise SettingsError(f"{source}: no criterion given; e.g. cpu:+1pp")
    return tuple(criteria)


def idle_message(criterion: Criterion) -> str:
    """The warning for a criterion that no test was compared on."""
    label = METRIC_LABELS.get(criterion.metric, criterion.metric)
    return f"{criterion.describe()} decided nothing: no test was compared on {label}"


def points(a: float, delta: float) -> float:
    """The change in percentage points (as a fraction) of an overhead at log ratio ``a`` shifted by ``δ``."""
    return math.exp(a) * math.expm1(delta)


def relative(a: float, delta: float) -> float:
    """The relative change of an overhead at log ratio ``a`` shifted by ``δ``."""
    return math.expm1(a + delta) / math.expm1(a) - 1


def corners(a_low: float, a_high: float, delta: float, fn: Callable[[float, float], float]) -> list[float]:
    """``fn`` at both ends of ``a`` at one ``δ``: the change is monotone in each, so its extremes lie there."""
    return [fn(a, delta) for a in (a_low, a_high)]


def _margin(criterion: Criterion, a: float, delta: float) -> float:
    """Positive when the change at (a, δ) is more than the criterion allows."""
    if criterion.unit == "pp":
        return points(a, delta) - criterion.amount
    return math.expm1(a + delta) - (1 + criterion.amount) * math.expm1(a)


def decide_criterion(criterion: Criterion, a_low: float, a_high: float, shift: Interval) -> Verdict:
    """REGRESSED (``FAIL``) when the whole box lies above the allowed growth, ``PASS`` below, else undecided."""
    low, _, high = shift
    if not all(math.isfinite(v) for v in (a_low, a_high, low, high)):
        return Verdict.INCONCLUSIVE
    lowest = min(_margin(criterion, a, low) for a in (a_low, a_high))
    highest = max(_margin(criterion, a, high) for a in (a_low, a_high))
    return decide(lowest, highest, 0.0)


class HeldOpen(TextEnum):
    """Which term alone left a criterion undecided: without it, the same figures decide it."""

    MACHINES = "the machines differ"
    BUSY = "measured on a busy machine"


def held_open(
    criterion: Criterion, a: tuple[float, float], without_machine: Interval, without_load: Interval
) -> HeldOpen | None:
    """Why an undecided criterion is undecided, when one term alone is why: the machines' difference (its
    shift ``without_machine`` decides it) or the runs' own load (``without_load`` does); None otherwise, where
    the figures themselves are too close to tell."""
    if decide_criterion(criterion, *a, without_machine) is not Verdict.INCONCLUSIVE:
        return HeldOpen.MACHINES
    if decide_criterion(criterion, *a, without_load) is not Verdict.INCONCLUSIVE:
        return HeldOpen.BUSY
    return None
