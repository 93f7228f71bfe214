"""Instructions mode behind the engine's one measuring interface (:mod:`pytest_otel_overhead.engine.strategy`)."""

from __future__ import annotations

from pytest_otel_overhead.engine.strategy import Measurement
from pytest_otel_overhead.instructions.parent import measure_instructions, require_valgrind
from pytest_otel_overhead.results import TestResult
from pytest_otel_overhead.settings.records import MeasureSettings

__all__ = ["CountedInstructions"]


class CountedInstructions:
    """Both arms counted under valgrind in fresh processes; the CPU budget decided on the ratio of estimated cycles."""

    def check(self, settings: MeasureSettings) -> None:
        require_valgrind(settings)  # one clear error up front when instructions mode cannot run

    def measure(self, asked: Measurement) -> TestResult:
        return measure_instructions(
            asked.item, asked.settings, asked.workload, asked.router, label=asked.label, progress=asked.progress
        )
