"""How tables and sentences show a measured metric: its label, its figures, the marks beside them."""

from __future__ import annotations

import math
from collections.abc import Callable

from pytest_otel_overhead.formatting import (
    NO_FIGURE,
    format_bytes,
    format_count,
    format_seconds,
    interval,
    signed,
    signed_percent,
    unbounded,
)

__all__ = [
    "AGAINST_ARMS_MARK",
    "AGAINST_ARMS_NOTE",
    "HEAP_BYTES_BELOW",
    "METRIC_LABELS",
    "format_interval",
    "format_overhead",
    "format_value",
    "metric_label",
]

METRIC_LABELS = {
    "cpu": "CPU",
    "wall": "wall time",
    "latency_p50": "latency p50",
    "latency_p95": "latency p95",
    "latency_p99": "latency p99",
    "heap": "peak heap",
    "instructions": "instructions",
    "cycles": "estimated cycles",
}
AGAINST_ARMS_MARK = "*"
AGAINST_ARMS_NOTE = (
    "* the estimate, from paired blocks, points the other way from the two arms' own figures: "
    "the difference is within noise"
)
HEAP_BYTES_BELOW = 64 * 1024
"""Below this peak-heap baseline, a heap row without a budget shows its change in bytes: on a few KiB,
the pipeline's own buffers read as ``+40000%``, a figure that says nothing about the application."""


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def format_value(metric: str, value: float) -> str:
    """A per-call figure of ``metric``: a count of instructions or cycles, bytes of heap, else a time."""
    if metric in ("instructions", "cycles"):
        return format_count(value)
    return format_bytes(value) if metric == "heap" else format_seconds(value)


def format_overhead(metric: str, kind: str, value: float) -> str:
    """``+7.3%`` for a relative figure, ``+20.0 µs`` or ``+1.5 KiB`` for an absolute one."""
    if math.isnan(value):
        return NO_FIGURE
    if not math.isfinite(value):
        return unbounded(value)
    if kind == "relative":
        return signed_percent(value)
    return signed(value, lambda amount: format_value(metric, amount))


def format_interval(kind: str, low: float, high: float, show: Callable[[float], str]) -> str:
    """``[+6.1%, +8.4%]``; ``NO_FIGURE`` when no end is bounded (-100% is no bound on a ratio)."""
    floor = -1.0 if kind == "relative" else -math.inf
    if low <= floor and high == math.inf:
        return NO_FIGURE
    return interval(low, high, show)
