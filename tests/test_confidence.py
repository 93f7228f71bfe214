"""The ``confidence`` setting: every interval and verdict of a test at the level it asks for, said in every output."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from statistics import NormalDist

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_otel_overhead.engine import runner
from pytest_otel_overhead.engine.combined import child_plan, combined_metrics, process_estimates
from pytest_otel_overhead.formatting import interval_heading
from pytest_otel_overhead.history.store import RunRecord
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.reports.markdown import markdown_report
from pytest_otel_overhead.reports.terminal import metric_sentence, summary_lines
from pytest_otel_overhead.results import MetricResult, StopReason, TestResult
from pytest_otel_overhead.settings.layers import Layer
from pytest_otel_overhead.settings.merge import resolve
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.verdict import Verdict, decide, from_statistic, to_statistic
from pytest_otel_overhead.units import Budget, SettingsError

FIVE = Budget("relative", 0.05)
MARKER = "marker on tests/test_shop.py::test_checkout"


def settings_from(source: str = MARKER, **values: object) -> MeasureSettings:
    return resolve([Layer.parse(values, lambda key: source)])


# --- the setting -------------------------------------------------------------------------------


@pytest.mark.parametrize(("given_", "level"), [("99%", 0.99), (0.9, 0.9), ("0.995", 0.995), ("99.9%", 0.999)])
def test_a_confidence_is_read_as_a_fraction_or_a_percentage(given_: object, level: float) -> None:
    settings = settings_from(confidence=given_)
    assert settings.confidence == pytest.approx(level)
    assert settings.source("confidence") == MARKER


def test_the_default_is_95_percent() -> None:
    assert resolve([Layer({})]).confidence == 0.95 == MeasureSettings().confidence


@pytest.mark.parametrize("bad", ["50%", 1, 0.9999, "sure", True, -0.95, "95"])
def test_a_confidence_out_of_range_is_one_line_naming_where_it_came_from(bad: object) -> None:
    with pytest.raises(SettingsError) as refused:
        settings_from("ini otel_overhead_confidence in tox.ini", confidence=bad)
    message = str(refused.value)
    assert message.startswith(f"ini otel_overhead_confidence in tox.ini: {bad!r} is not a confidence from 80%")
    assert "\n" not in message


# --- processes pooled at the test's confidence ---------------------------------------------------


def child_metric(overhead: float, se: float, confidence: float) -> MetricResult:
    """A process's CPU metric recorded at ``confidence``: its interval at that plan's per-look level."""
    half = se * NormalDist().inv_cdf(1 - (1 - child_plan(confidence).per_look_confidence) / 2)
    y = math.log1p(overhead)
    return MetricResult(
        metric="cpu", baseline=1e-3, instrumented=1e-3 * (1 + overhead), overhead=overhead,
        ci_low=from_statistic(y - half, "relative"), ci_high=from_statistic(y + half, "relative"), kind="relative",
        n=40, spread=0.02, confidence=confidence, budget=FIVE, verdict=decide(y - half, y + half, to_statistic(FIVE)),
    )  # fmt: skip


def child_result(metric: MetricResult, settings: MeasureSettings) -> TestResult:
    return TestResult(
        nodeid="t.py::t", settings=settings, metrics=(metric,), health=None, process=None, pairs=40,
        calls_per_block=10, looks=2, duration_s=1.0, stop_reason=StopReason.DECIDED,
        throughput_baseline=1000.0, throughput_instrumented=950.0,
    )  # fmt: skip


@given(st.floats(-0.05, 0.3), st.floats(1e-4, 0.05), st.sampled_from([0.9, 0.95, 0.99, 0.999]))
def test_a_process_s_standard_error_is_read_at_the_confidence_it_was_recorded_at(
    overhead: float, se: float, confidence: float
) -> None:
    estimates, errors = process_estimates([child_metric(overhead, se, confidence)])
    assert estimates == [pytest.approx(math.log1p(overhead))]
    assert errors == [pytest.approx(se, rel=1e-6)]


@given(
    st.lists(st.tuples(st.floats(-0.02, 0.15), st.floats(1e-3, 0.03)), min_size=2, max_size=6),
    st.sampled_from([(0.9, 0.95), (0.95, 0.99), (0.95, 0.999), (0.99, 0.999)]),
)
def test_a_higher_confidence_widens_the_pooled_interval_and_never_turns_a_verdict(
    processes: list[tuple[float, float]], levels: tuple[float, float]
) -> None:
    def pooled(level: float) -> MetricResult:
        settings = MeasureSettings(confidence=level)
        results = [child_result(child_metric(x, se, level), settings) for x, se in processes]
        (cpu,) = combined_metrics(settings, results, level, level)
        return cpu

    lower, higher = pooled(levels[0]), pooled(levels[1])
    assert (higher.confidence, lower.confidence) == (levels[1], levels[0])
    assert higher.ci_low <= lower.ci_low + 1e-12 and higher.ci_high >= lower.ci_high - 1e-12
    if higher.verdict is not Verdict.INCONCLUSIVE:
        assert lower.verdict is higher.verdict  # what the surer level decides, the less sure decides the same


# --- a measurement, and what it says -------------------------------------------------------------


def test_a_measurement_at_99_percent_records_and_prints_that_level_everywhere() -> None:
    router = ArmRouter()
    tracer = router.get_tracer("workload")

    def workload() -> None:
        with tracer.start_as_current_span("request"):
            sum(i * i for i in range(200))

    settings = settings_from(budget="1000%", max_time=2, confidence="99%")
    result = runner.measure(workload, settings, router, nodeid="t::surer")
    assert {m.metric: m.confidence for m in result.metrics} == {m.metric: 0.99 for m in result.metrics}
    assert result.verdict is Verdict.PASS  # ten times the work would be needed to reach the budget
    lines = summary_lines([result], verbose=True, width=120)
    header = next(line for line in lines if line.lstrip().startswith("metric"))
    assert re.search(r"overhead %\s+99% CI\s+budget", header)
    cpu = result.metric("cpu")
    assert cpu is not None and "(99% CI [" in metric_sentence(cpu)
    page = markdown_report(RunRecord(results=(result,), environment={}, created="now"))
    assert "Overhead % (99% CI)" in page and "95% CI" not in page


def test_a_table_of_tests_at_several_levels_says_each_interval_s_own() -> None:
    def result(nodeid: str, level: float) -> TestResult:
        metric = child_metric(0.01, 0.005, level)
        return dataclasses.replace(child_result(metric, MeasureSettings(confidence=level)), nodeid=nodeid)

    run = RunRecord(results=(result("t.py::a", 0.95), result("t.py::b", 0.99)), environment={}, created="now")
    page = markdown_report(run)
    assert "Overhead % (CI)" in page
    assert re.search(r"\| t\.py::a \|.*\] at 95% \|", page) and re.search(r"\| t\.py::b \|.*\] at 99% \|", page)
    assert interval_heading([0.99, 0.99]) == "99% CI" and interval_heading([0.95, 0.99]) == "CI"


def test_the_marker_s_confidence_reaches_the_json_report_and_the_summary(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_sure="""
        import pytest
        from opentelemetry import trace

        tracer = trace.get_tracer("shop")


        @pytest.mark.otel_overhead(budget="1000%", max_time=2, confidence="99.5%")
        def test_checkout():
            with tracer.start_as_current_span("checkout"):
                sum(i * i for i in range(300))
        """
    )
    outcome = pytester.runpytest_subprocess(
        "--otel-overhead", "--otel-overhead-json=out.json", "-p", "no:cacheprovider"
    )
    outcome.assert_outcomes(passed=1)
    [test] = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))["tests"]
    assert test["settings"]["confidence"] == 0.995
    assert test["settings"]["sources"]["confidence"] == "marker on test_sure.py::test_checkout"
    assert {metric["confidence"] for metric in test["metrics"].values()} == {0.995}
    assert re.search(r"overhead %\s+99\.5% CI\s+budget", outcome.stdout.str())


def test_instructions_mode_decides_at_the_confidence_its_eight_layouts_reach_and_says_where_they_stop() -> None:
    from pytest_otel_overhead.instructions.counts import Layout, instruction_metrics
    from pytest_otel_overhead.instructions.cycles import Counts

    found = [
        Layout(layout=i, calls=10, baseline=Counts(1e6), instrumented=Counts(1.5e6 * (1 + 1e-4 * (i - 4))))
        for i in range(8)
    ]

    def cycles(level: str) -> MetricResult:
        settings = settings_from(mode="instructions", confidence=level)
        return {m.metric: m for m in instruction_metrics(settings, found)}["cycles"]

    surest = cycles("99%")
    assert (surest.verdict, surest.confidence) == (Verdict.FAIL, 0.99)
    beyond = cycles("99.5%")
    assert beyond.verdict is Verdict.INCONCLUSIVE
    assert beyond.note == (
        "8 memory layouts cannot bound a 99.5% interval (at most 99.22%); lower the confidence or use mode='time'"
    )
