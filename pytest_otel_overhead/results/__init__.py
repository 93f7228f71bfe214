"""The results of one measurement: small immutable records that reports and history read.

The records (``results.records``) serialise and parse themselves through ``wire.document``; how
tables show them is in ``results.display``; the pipeline's health record comes from ``otel.health``.
"""

from pytest_otel_overhead.otel.health import PipelineHealth
from pytest_otel_overhead.results.display import AGAINST_ARMS_MARK, AGAINST_ARMS_NOTE, HEAP_BYTES_BELOW, METRIC_LABELS
from pytest_otel_overhead.results.records import (
    FAILED_EXPORTS,
    NO_TELEMETRY,
    OTHER_OUTCOMES,
    CacheLevel,
    CycleModel,
    MetricResult,
    ProcessProbe,
    Replica,
    StopReason,
    TestResult,
)

__all__ = [
    "AGAINST_ARMS_MARK",
    "AGAINST_ARMS_NOTE",
    "FAILED_EXPORTS",
    "HEAP_BYTES_BELOW",
    "METRIC_LABELS",
    "NO_TELEMETRY",
    "OTHER_OUTCOMES",
    "CacheLevel",
    "CycleModel",
    "MetricResult",
    "PipelineHealth",
    "ProcessProbe",
    "Replica",
    "StopReason",
    "TestResult",
]
