"""Regression criteria: how much a metric's overhead may grow between two runs (``cpu:+1pp``, ``cpu:+20%``)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pytest_otel_overhead.history.shift import COUNTED_METRICS, TIME_COLUMNS
from pytest_otel_overhead.results import METRIC_LABELS
from pytest_otel_overhead.units import SettingsError

__all__ = ["COMPARED_METRICS", "Criterion", "idle_message", "parse_criteria"]

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
