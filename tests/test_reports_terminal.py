"""The terminal's verdict sentences: the overhead and its interval in the budget's own form."""

from __future__ import annotations

import math
from collections.abc import Callable

from pytest_otel_overhead.reports.terminal import metric_sentence
from pytest_otel_overhead.results import MetricResult
from pytest_otel_overhead.units import Budget
from pytest_otel_overhead.verdict import Verdict


def test_a_relative_overhead_reads_in_percent_with_an_unbounded_end(make_metric: Callable[..., MetricResult]) -> None:
    metric = make_metric(
        "cpu", overhead=0.073, ci_low=0.061, ci_high=math.inf, budget=Budget("relative", 0.05), verdict=Verdict.FAIL
    )
    assert metric_sentence(metric) == "CPU overhead 7.3% (95% CI 6.1%–∞) exceeds budget 5.0%"


def test_an_absolute_overhead_reads_as_a_signed_duration(make_metric: Callable[..., MetricResult]) -> None:
    metric = make_metric(
        "cpu", overhead=2e-5, ci_low=-1e-6, ci_high=4e-5, budget=Budget("absolute", 50e-6), verdict=Verdict.PASS
    )
    assert metric_sentence(metric) == "CPU overhead +20.0 µs per call (95% CI -1.0 µs…+40.0 µs) within budget +50.0 µs"
