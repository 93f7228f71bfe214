"""The terminal's verdict sentences and summary table: figures in the budget's own form, read at a glance."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable

import pytest

from pytest_otel_overhead.reports.terminal import metric_sentence, summary_lines, verdict_label
from pytest_otel_overhead.results import AGAINST_ARMS_NOTE, HEAP_BYTES_BELOW, MetricResult, PipelineHealth, TestResult
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import Budget


def test_a_relative_overhead_reads_in_percent_with_an_unbounded_end(make_metric: Callable[..., MetricResult]) -> None:
    metric = make_metric(
        "cpu", overhead=0.073, ci_low=0.061, ci_high=math.inf, budget=Budget("relative", 0.05), verdict=Verdict.FAIL
    )
    assert metric_sentence(metric) == "CPU overhead +7.3% (95% CI [+6.1%, ∞]) exceeds budget 5.0%"


def test_an_absolute_overhead_reads_as_a_signed_duration(make_metric: Callable[..., MetricResult]) -> None:
    metric = make_metric(
        "cpu", overhead=2e-5, ci_low=-1e-6, ci_high=4e-5, budget=Budget("absolute", 50e-6), verdict=Verdict.PASS
    )
    assert metric_sentence(metric) == (
        "CPU overhead +20.0 µs per call (95% CI [-1.0 µs, +40.0 µs]) within budget +50.0 µs"
    )


# --- the summary table --------------------------------------------------------------------------

RELATIVE = Budget("relative", 0.05)


def _cells(line: str) -> list[str]:
    """A table row split on its column gaps (two spaces or more)."""
    return re.split(r" {2,}", line.strip())


def _table_rows(lines: list[str]) -> dict[str, list[str]]:
    """Each metric's row of the summary table, by label, with the header it stands under."""
    rows: dict[str, list[str]] = {}
    header: list[str] = []
    for line in lines:
        cells = _cells(line)
        if cells[0] == "metric":
            header = cells
        elif header and line.startswith("    ") and len(cells) == len(header):
            rows[cells[0]] = [f"{h}={c}" for h, c in zip(header, cells, strict=True)]
    return rows


def _settings(*budgets: tuple[str, Budget, str]) -> MeasureSettings:
    return MeasureSettings(
        budgets=tuple((name, budget) for name, budget, _ in budgets),
        sources=tuple((name, source) for name, _, source in budgets if source != "default"),
    )


def test_intervals_read_in_brackets_and_a_missing_figure_is_one_mark(
    make_result: Callable[..., TestResult], make_metric: Callable[..., MetricResult]
) -> None:
    result = make_result(
        metrics=(
            make_metric("cpu", overhead=0.08, ci_low=0.06, ci_high=0.1, budget=RELATIVE, verdict=Verdict.FAIL),
            make_metric("wall", overhead=0.07, ci_low=-math.inf, ci_high=math.inf),
            make_metric("latency_p99", overhead=math.nan, ci_low=-1.0, ci_high=math.inf),
        )
    )
    rows = _table_rows(summary_lines([result], verbose=True))
    assert rows["CPU"][3:5] == ["overhead %=+8.0%", "95% CI=[+6.0%, +10.0%]"]
    assert rows["wall time"][4:] == ["95% CI=—", "budget=—", "verdict=—"]
    assert rows["latency p99"][3:5] == ["overhead %=—", "95% CI=—"]  # -100% is no bound on a ratio
    table = "\n".join(summary_lines([result], verbose=True))
    assert "n/a" not in table and "…" not in table and " - " not in table


def test_relative_and_per_call_overheads_never_share_a_column(
    make_result: Callable[..., TestResult], make_metric: Callable[..., MetricResult]
) -> None:
    absolute = Budget("absolute", 500e-6)
    result = make_result(
        metrics=(
            make_metric("cpu", overhead=60e-6, ci_low=55e-6, ci_high=70e-6, budget=absolute, verdict=Verdict.PASS),
            make_metric("wall", overhead=0.84, ci_low=0.79, ci_high=0.91),
        )
    )
    lines = summary_lines([result])
    headers = [_cells(line) for line in lines if _cells(line)[0] == "metric"]
    assert [h[3] for h in headers] == ["overhead/call", "overhead %"]
    rows = _table_rows(lines)
    assert rows["CPU"][3:6] == ["overhead/call=+60.0 µs", "95% CI=[+55.0 µs, +70.0 µs]", "budget=+500.0 µs"]
    assert rows["wall time"][3:5] == ["overhead %=+84.0%", "95% CI=[+79.0%, +91.0%]"]


def test_a_fail_that_is_not_the_gate_metric_is_named_next_to_the_verdict(
    make_result: Callable[..., TestResult], make_metric: Callable[..., MetricResult]
) -> None:
    cpu_pass = make_metric("cpu", overhead=0.01, budget=RELATIVE, verdict=Verdict.PASS)
    lossy = PipelineHealth(calls=100, started=300, sampled=300, exported=0, export_calls=1, max_dropped=0)
    dropped = dataclasses.replace(make_result(metrics=(cpu_pass,)), health=lossy)
    assert verdict_label(dropped) == "FAIL (max_dropped 0)"
    assert summary_lines([dropped])[0] == "tests/test_x.py::test_y  FAIL (max_dropped 0)  budget CPU 5.0% (default)"

    latency_fail = make_metric(
        "latency_p95", overhead=0.4, ci_low=0.3, ci_high=0.5, budget=RELATIVE, verdict=Verdict.FAIL
    )
    slow = make_result(metrics=(cpu_pass, latency_fail))
    assert verdict_label(slow) == "FAIL (latency p95)"
    cpu_fail = make_metric("cpu", overhead=0.4, ci_low=0.3, ci_high=0.5, budget=RELATIVE, verdict=Verdict.FAIL)
    assert verdict_label(make_result(metrics=(cpu_fail,))) == "FAIL"  # the gate metric needs no saying
    assert verdict_label(make_result(metrics=(cpu_pass,))) == "PASS"
    counted = make_metric("instructions", overhead=0.4, ci_low=0.3, ci_high=0.5, budget=RELATIVE, verdict=Verdict.FAIL)
    in_instructions_mode = dataclasses.replace(make_result(metrics=(counted,)), mode="instructions")
    assert verdict_label(in_instructions_mode) == "FAIL"  # the count carries the CPU budget there


@pytest.mark.parametrize(
    ("source", "origin"),
    [
        ("default", "default"),
        ("--otel-overhead-budget", "--otel-overhead-budget"),
        ("ini otel_overhead_budget in tox.ini", "ini otel_overhead_budget in tox.ini"),
        ("marker on tests/test_x.py::test_y", "marker"),
    ],
)
def test_the_summary_line_says_which_budget_applied_and_where_it_came_from(
    make_result: Callable[..., TestResult], source: str, origin: str
) -> None:
    result = make_result(settings=_settings(("cpu", RELATIVE, source)))
    assert summary_lines([result])[0] == f"tests/test_x.py::test_y  PASS  budget CPU 5.0% ({origin})"


def test_several_budgets_are_listed_each_with_its_origin(make_result: Callable[..., TestResult]) -> None:
    settings = _settings(
        ("cpu", Budget("absolute", 500e-6), "marker on t.py::t"), ("heap", Budget("absolute", 2 * 1024**2), "default")
    )
    phrase = summary_lines([make_result(settings=settings)])[0].split("  PASS  ")[1]
    assert phrase == "budgets CPU +500.0 µs (marker), peak heap +2.0 MiB (default)"


def test_a_heap_row_on_a_tiny_baseline_reads_in_bytes(
    make_result: Callable[..., TestResult], make_metric: Callable[..., MetricResult]
) -> None:
    tiny = make_metric("heap", baseline=2.5 * 1024, overhead=409.0, ci_low=-1.0, ci_high=math.inf)
    assert tiny.baseline < HEAP_BYTES_BELOW
    rows = _table_rows(summary_lines([make_result(metrics=(tiny,))], verbose=True))
    assert rows["peak heap"][1:4] == ["baseline/call=2.5 KiB", "instrumented/call=1.0 MiB", "overhead/call=+1022.5 KiB"]
    assert not any("%" in cell.split("=", 1)[1] for cell in rows["peak heap"])
    large = make_metric("heap", baseline=2 * HEAP_BYTES_BELOW, overhead=0.5)
    assert _table_rows(summary_lines([make_result(metrics=(large,))], verbose=True))["peak heap"][3] == (
        "overhead %=+50.0%"
    )


def test_a_heap_row_never_reads_up_when_the_instrumented_peak_is_lower(
    make_result: Callable[..., TestResult], make_metric: Callable[..., MetricResult]
) -> None:
    # The paired estimate (median of three pairs' ratios) can point up while the arms' medians point down.
    heap = dataclasses.replace(
        make_metric("heap", baseline=140 * 1024, overhead=0.072, ci_low=-1.0, ci_high=math.inf),
        instrumented=130 * 1024,
    )
    rows = _table_rows(summary_lines([make_result(metrics=(heap,))], verbose=True))
    assert rows["peak heap"][3] == "overhead %=-7.1%"


def test_an_estimate_against_the_arms_figures_is_marked_and_explained(
    make_result: Callable[..., TestResult], make_metric: Callable[..., MetricResult]
) -> None:
    # A latency percentile pooled over all calls can move the other way from the paired estimate.
    p95 = dataclasses.replace(
        make_metric("latency_p95", baseline=569e-6, overhead=0.012, ci_low=-0.21, ci_high=0.085, budget=RELATIVE,
                    verdict=Verdict.PASS),
        instrumented=564.8e-6,
    )  # fmt: skip
    lines = summary_lines([make_result(metrics=(p95,))], width=1000)  # the note on one line
    assert _table_rows(lines)["latency p95"][3] == "overhead %=+1.2%*"
    assert f"    {AGAINST_ARMS_NOTE}" in lines
    agreeing = make_metric("latency_p95", baseline=569e-6, overhead=0.012, budget=RELATIVE, verdict=Verdict.PASS)
    assert AGAINST_ARMS_NOTE not in "\n".join(summary_lines([make_result(metrics=(agreeing,))]))


def test_lines_of_single_spaces_wrap_as_textwrap_wraps_them() -> None:
    import random
    import textwrap

    from pytest_otel_overhead.reports.terminal import wrap

    rng = random.Random(7)
    for _ in range(3000):
        sizes = [rng.choice([1, 2, 3, 5, 8, 13, 30, 60, 130]) for _ in range(rng.randint(1, 40))]
        words = ["".join(rng.choice("abcdefghij0123456789µ.%-/") for _ in range(size)) for size in sizes]
        figures = [f"{rng.randint(0, 99)} {rng.choice(['ms', 'µs', 'KiB', 'x'])}" for _ in words]
        words = [figure if rng.random() < 0.2 else word for word, figure in zip(words, figures, strict=True)]
        line, width, indent = " ".join(words), rng.choice([10, 60, 80, 120, 200]), rng.choice(["", "    "])
        kept = re.sub(r"(?<=\d) (?=(?:ms|µs|KiB)\b)", "\u00a0", line)  # a figure stays with its unit
        expected = textwrap.wrap(
            kept, max(width, 40), initial_indent=indent, subsequent_indent=indent + "  ", break_long_words=False,
            break_on_hyphens=False,
        )  # fmt: skip
        assert wrap(line, width, indent) == [piece.replace("\u00a0", " ") for piece in expected], (line, width)
