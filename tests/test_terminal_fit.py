"""What a person reads in the terminal: lines that fit, a gate that never looks green on nothing, the
failure's figure on the line ``-r`` shows, and a word when marked tests ran without measuring."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import pytest

from pytest_otel_overhead.reports.terminal import (
    PAIRED_NOTE,
    adds_up,
    headline,
    result_message,
    summary_lines,
    wrap,
)
from pytest_otel_overhead.results import MetricResult, TestResult
from pytest_otel_overhead.settings.records import MeasureSettings, NoTelemetryPolicy
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import Budget

FIVE = Budget("relative", 0.05)
LONG_ID = "tests/service/test_checkout_flow.py::test_a_basket_with_many_lines_is_priced_with_every_discount"


def _failing(make_result: Callable[..., TestResult], make_metric: Callable[..., MetricResult]) -> TestResult:
    cpu = make_metric("cpu", overhead=0.392, ci_low=0.35, ci_high=0.44, budget=FIVE, verdict=Verdict.FAIL)
    return make_result(LONG_ID, metrics=(cpu, make_metric("wall", overhead=0.41)))


# --- the line -r shows -----------------------------------------------------------------------------


def test_the_first_line_of_a_failure_names_the_budget_and_the_figure(
    make_result: Callable[..., TestResult], make_metric: Callable[..., MetricResult]
) -> None:
    result = _failing(make_result, make_metric)
    assert headline(result, Verdict.FAIL) == "CPU +39.2% > budget 5.0%"
    first, rest = result_message(result, Verdict.FAIL).split("\n", 1)
    assert first == "CPU +39.2% > budget 5.0%"
    assert rest.startswith("CPU overhead +39.2% (95% CI [+35.0%, +44.0%]) exceeds budget 5.0% — ")


def test_an_absolute_budget_and_an_undecided_one_read_in_their_own_form(
    make_result: Callable[..., TestResult], make_metric: Callable[..., MetricResult]
) -> None:
    per_call = Budget("absolute", 50e-6)
    cpu = make_metric("cpu", overhead=8e-5, ci_low=7e-5, ci_high=9e-5, budget=per_call, verdict=Verdict.FAIL)
    p95 = make_metric("latency_p95", overhead=0.04, ci_low=-0.1, ci_high=0.2, budget=FIVE, verdict=Verdict.INCONCLUSIVE)
    result = make_result(metrics=(cpu, p95))
    assert headline(result, Verdict.FAIL) == "CPU +80.0 µs > budget +50.0 µs"
    assert headline(result, Verdict.INCONCLUSIVE) == "latency p95 +4.0% undecided vs budget 5.0%"


# --- no PASS on nothing ----------------------------------------------------------------------------


def test_a_budget_that_measured_no_telemetry_shows_no_pass(
    make_result: Callable[..., TestResult], make_metric: Callable[..., MetricResult]
) -> None:
    cpu = make_metric("cpu", overhead=0.001, ci_low=-0.01, ci_high=0.01, budget=FIVE, verdict=Verdict.PASS)
    result = dataclasses.replace(make_result(metrics=(cpu,)), no_telemetry="the instrumented arm recorded nothing")
    assert result.verdict is Verdict.PASS  # the JSON keeps the verdict the figures gave
    lines = summary_lines([result])
    assert lines[0].startswith("tests/test_x.py::test_y  NO TELEMETRY  budget CPU 5.0%")
    (row,) = [line for line in lines if line.strip().startswith("CPU ")]
    assert row.rstrip().endswith("NO TELEMETRY") and "PASS" not in row
    assert lines[-1] == "1 measured: 0 PASS, 0 FAIL, 0 INCONCLUSIVE, 1 NO TELEMETRY"


def test_no_telemetry_fails_by_default_and_warn_and_ignore_remain() -> None:
    assert MeasureSettings().no_telemetry == NoTelemetryPolicy.FAIL
    assert {str(p) for p in NoTelemetryPolicy} == {"fail", "warn", "ignore"}


# --- width -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [80, 100, 120])
def test_every_summary_line_fits_the_width_but_a_test_id_longer_than_it(
    make_result: Callable[..., TestResult], make_metric: Callable[..., MetricResult], width: int
) -> None:
    result = dataclasses.replace(
        _failing(make_result, make_metric),
        notes=("the machine was busy while measuring: other processes used 80% of its 2 CPUs; " * 2,),
    )
    lines = summary_lines([result], verbose=True, width=width)
    too_wide = [line for line in lines if len(line) > width and LONG_ID not in line]
    assert not too_wide
    assert any("CPU" in line and "FAIL" in line and "+39.2%" in line for line in lines)


def test_a_narrow_terminal_drops_the_arms_figures_first_and_says_so(
    make_result: Callable[..., TestResult], make_metric: Callable[..., MetricResult]
) -> None:
    result = _failing(make_result, make_metric)
    wide = "\n".join(summary_lines([result], width=200))
    assert "instrumented/call" in wide and "left out" not in wide
    narrow = summary_lines([result], width=60)
    header = next(line for line in narrow if line.strip().startswith("metric"))
    assert "instrumented/call" not in header and "verdict" in header and "budget" in header
    said = [line for line in narrow if line.strip().startswith("(instrumented/call")]
    assert said and "left out to fit 60 columns" in said[0]


def test_wrapping_keeps_a_figure_with_its_unit_and_a_test_id_whole() -> None:
    line = "baseline 99.8 µs/call, instrumented 122.9 µs/call; " * 3 + LONG_ID
    wrapped = wrap(line, 50)
    assert all(len(w) <= 50 or LONG_ID in w for w in wrapped)
    assert not any(w.rstrip().endswith(("99.8", "122.9")) for w in wrapped)
    assert any(w.strip() == LONG_ID for w in wrapped)
    assert [w.startswith("      ") for w in wrapped[1:]] == [True] * (len(wrapped) - 1)


# --- figures that add up, or say why not --------------------------------------------------------


def test_an_estimate_far_from_the_arms_difference_is_marked_and_explained(
    make_result: Callable[..., TestResult], make_metric: Callable[..., MetricResult]
) -> None:
    per_call = Budget("absolute", 5e-3)
    # Arms' medians 164.9 µs and 922.4 µs (757.5 µs apart), the paired estimate +1.13 ms.
    cpu = dataclasses.replace(
        make_metric("cpu", overhead=1.13e-3, ci_low=0.9e-3, ci_high=1.4e-3, budget=per_call, verdict=Verdict.PASS),
        baseline=164.9e-6,
        instrumented=922.4e-6,
    )
    assert not adds_up(cpu)
    lines = summary_lines([make_result(metrics=(cpu,))])
    assert any("+1.13 ms†" in line for line in lines)
    assert PAIRED_NOTE.split(";")[0] in "\n".join(lines)
    near = dataclasses.replace(cpu, instrumented=164.9e-6 + 1.1e-3)
    assert adds_up(near)
    assert "†" not in "\n".join(summary_lines([make_result(metrics=(near,))]))


def test_a_near_zero_overhead_is_not_marked_for_a_small_difference(make_metric: Callable[..., MetricResult]) -> None:
    small = dataclasses.replace(make_metric("cpu", overhead=0.003), baseline=1e-3, instrumented=1.006e-3)
    assert adds_up(small)
    assert adds_up(dataclasses.replace(small, baseline=math.nan))
