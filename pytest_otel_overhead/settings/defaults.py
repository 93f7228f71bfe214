"""Each setting's default and fixed choices, in one place: the records' fields and ``--help`` read them here.

Every pytest run declares the options, and their help text states the defaults; this module lets it
do so without loading the settings records, their parsers or the sampling and pipeline modules.
"""

from __future__ import annotations

import enum

from pytest_otel_overhead.units import Budget

__all__ = [
    "BACKEND_ERROR_RATE",
    "BACKEND_LATENCY_MS",
    "BATCH_SIZE",
    "BUDGET",
    "COMPRESSION",
    "COMPRESSIONS",
    "CONFIDENCE",
    "CONFIDENCE_RANGE",
    "EXPORTER",
    "EXPORT_TIMEOUT_MS",
    "FAILED_EXPORTS",
    "INCONCLUSIVE",
    "LOAD_BASE",
    "LOAD_REFRESH_MS",
    "LOAD_STEPS",
    "MAX_TIME_S",
    "METRIC",
    "METRIC_INTERVAL_MS",
    "MODE",
    "NO_TELEMETRY",
    "PROCESSES",
    "PROCESSOR",
    "QUEUE_SIZE",
    "SAMPLER",
    "SCHEDULE_DELAY_MS",
    "STRATEGY_SAMPLERS",
    "Choice",
    "FailedExportsPolicy",
    "InconclusivePolicy",
    "Mode",
    "NoTelemetryPolicy",
    "load_thresholds_text",
]

STRATEGY_SAMPLERS = ("per_operation", "rate_limiting", "load_adaptive")
"""The plugin's own samplers, beyond the SDK's."""
COMPRESSIONS = ("none", "gzip", "deflate")

# The pipeline (PipelineSettings).
SAMPLER = "parentbased_always_on"
PROCESSOR = "batch"
BATCH_SIZE = 512
SCHEDULE_DELAY_MS = 5000.0
QUEUE_SIZE = 2048
EXPORT_TIMEOUT_MS = 30000.0
EXPORTER = "none"
LOAD_STEPS: tuple[tuple[float, float], ...] = ((0.8, 0.05), (0.6, 0.10))
"""load_adaptive's (load, rate) steps (LoadThresholds)."""
LOAD_BASE = 0.20
"""load_adaptive's rate below every step."""
LOAD_REFRESH_MS = 1000.0
COMPRESSION = "none"
BACKEND_LATENCY_MS = 0.0
BACKEND_ERROR_RATE = 0.0
METRIC_INTERVAL_MS = 60000.0

# One measurement (MeasureSettings).
METRIC = "cpu"
MAX_TIME_S = 30.0
PROCESSES: int | None = None
"""None: one process, and fresh ones added where they change the answer; a number: exactly that many."""
BUDGET = Budget("relative", 0.05)
"""The gate metric's budget when none is given."""
CONFIDENCE = 0.95
"""How sure every interval and verdict is, over all of a measurement's looks."""
CONFIDENCE_RANGE = (0.8, 0.999)
"""The confidences a setting may ask for: below, a verdict is a coin toss too often to gate on; above, the
intervals grow wider than any measurement within a CI job's time can narrow."""


def load_thresholds_text(steps: tuple[tuple[float, float], ...], base: float) -> str:
    """load_adaptive's steps as written, e.g. ``80%:0.05,60%:0.1,0.2``."""
    return ",".join(f"{t * 100:g}%:{r:g}" for t, r in steps) + f",{base:g}"


class Choice(str, enum.Enum):
    """A setting's value out of a fixed set: it prints, compares, hashes and serialises as its text.

    Its repr is its text's too, so a record reads the same whether it holds the member or the text a
    program gave it.
    """

    def __repr__(self) -> str:
        return str.__repr__(self)

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(self, spec)

    __hash__ = str.__hash__


class Mode(Choice):
    """What a measurement measures."""

    TIME = "time"
    INSTRUCTIONS = "instructions"


class InconclusivePolicy(Choice):
    """What an undecided budget does to the test."""

    FAIL = "fail"
    WARN = "warn"
    PASS = "pass"


class NoTelemetryPolicy(Choice):
    """What a measurement whose instrumented arm recorded no telemetry does to the test."""

    WARN = "warn"
    FAIL = "fail"
    IGNORE = "ignore"


class FailedExportsPolicy(Choice):
    """What a measurement in which every export failed (nothing reached the backend) does to the test."""

    FAIL = "fail"
    WARN = "warn"
    IGNORE = "ignore"


MODE = Mode.TIME
INCONCLUSIVE = InconclusivePolicy.WARN
NO_TELEMETRY = NoTelemetryPolicy.FAIL
FAILED_EXPORTS = FailedExportsPolicy.FAIL
