"""The auto-tuner's search, driven by a fake verdict engine so every probe's verdict is known."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pytest

from pytest_otel_overhead.advice.tuner import MIN_RATE, nice_rate, queue_for, tune, tuning_lines
from pytest_otel_overhead.results import MetricResult, PipelineHealth, StopReason, TestResult
from pytest_otel_overhead.settings.records import MeasureSettings, PipelineSettings
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import Budget

BUDGET = Budget("relative", 0.05)


def fake_result(
    settings: MeasureSettings,
    overhead: float,
    verdict: Verdict,
    *,
    spans: float = 10.0,
    calls_per_s: float = 1000.0,
    by_name: tuple[tuple[str, int], ...] = (("parse_item", 1000),),
) -> TestResult:
    rate = settings.pipeline.sample_rate if settings.pipeline.sample_rate is not None else 1.0
    calls = 100
    cpu = MetricResult(
        metric="cpu",
        baseline=1e-3,
        instrumented=1e-3 * (1 + overhead),
        overhead=overhead,
        ci_low=overhead - 0.01,
        ci_high=overhead + 0.01,
        kind="relative",
        n=50,
        spread=0.02,
        confidence=0.95,
        budget=BUDGET,
        verdict=verdict,
    )
    return TestResult(
        nodeid="t.py::test_x",
        settings=settings,
        metrics=(cpu,),
        health=PipelineHealth(
            calls=calls,
            started=int(spans * calls),
            sampled=int(spans * calls * rate),
            exported=int(spans * calls * rate),
            export_calls=1,
            by_name=by_name,
        ),
        process=None,
        pairs=50,
        calls_per_block=10,
        looks=2,
        duration_s=1.0,
        stop_reason=StopReason.DECIDED,
        throughput_baseline=calls_per_s,
        throughput_instrumented=calls_per_s,
    )


def engine(cost_per_rate: float, floor: float = 0.0, undecided_band: float = 0.0) -> Callable[..., TestResult]:
    """Overhead = floor + cost × rate; PASS below the budget, FAIL above, INCONCLUSIVE near it."""
    calls: list[float] = []

    def measure_at(settings: MeasureSettings, label: str) -> TestResult:
        rate = settings.pipeline.sample_rate if settings.pipeline.sample_rate is not None else 1.0
        calls.append(rate)
        overhead = floor + cost_per_rate * rate
        if abs(overhead - BUDGET.value) <= undecided_band:
            verdict = Verdict.INCONCLUSIVE
        else:
            verdict = Verdict.PASS if overhead < BUDGET.value else Verdict.FAIL
        return fake_result(settings, overhead, verdict)

    measure_at.calls = calls  # type: ignore[attr-defined]
    return measure_at


def test_nice_rate_rounds_down_to_a_deployable_value() -> None:
    assert [nice_rate(r) for r in (1.0, 0.0316, 0.0999, 0.0015, 0.00725, 0.2)] == [
        1.0,
        0.03,
        0.07,
        0.0015,
        0.007,
        0.2,
    ]


def test_queue_follows_the_guides_sizing_rule() -> None:
    assert queue_for(10_000, 5000, 2048) == 131072  # 10k spans/s × 5 s × 2 = 100k → next power of two
    assert queue_for(10, 5000, 2048) == 2048  # never below what was configured
    assert queue_for(math.nan, 5000, 512) == 512


def test_everything_sampled_fits() -> None:
    measure_at = engine(cost_per_rate=0.02)
    tuning = tune("t.py::test_x", MeasureSettings(), measure_at)
    assert tuning.outcome == "all" and measure_at.calls == [1.0]  # type: ignore[attr-defined]
    assert dict(tuning.env())["OTEL_TRACES_SAMPLER"] == "parentbased_always_on"


def test_bisection_finds_the_highest_rate_shown_to_fit() -> None:
    measure_at = engine(cost_per_rate=1.0)  # overhead = rate: fits below 0.05
    tuning = tune("t.py::test_x", MeasureSettings(), measure_at)
    assert tuning.outcome == "fits"
    rates = measure_at.calls  # type: ignore[attr-defined]
    assert rates[:2] == [1.0, MIN_RATE]
    assert len(rates) <= 8  # a search, not a grid
    assert tuning.recommended is not None
    rate = tuning.recommended.sample_rate
    assert rate is not None and 0.05 / 1.6 / 1.5 <= rate < 0.05
    passed = [p for p in tuning.probes if p.verdict is Verdict.PASS]
    assert rate <= max(p.rate for p in passed)  # only a rate at or below one that passed
    env = dict(tuning.env())
    assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert env["OTEL_TRACES_SAMPLER_ARG"] == f"{rate:g}"
    assert {"OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"} <= set(env)


def test_inconclusive_probes_count_as_not_shown_to_fit() -> None:
    measure_at = engine(cost_per_rate=1.0, undecided_band=0.03)  # 0.02..0.08 undecided
    tuning = tune("t.py::test_x", MeasureSettings(), measure_at)
    assert tuning.recommended is not None and tuning.recommended.sample_rate is not None
    assert tuning.recommended.sample_rate < 0.02


def test_no_rate_fits_when_unsampled_spans_already_cost_too_much() -> None:
    measure_at = engine(cost_per_rate=1.0, floor=0.2)
    tuning = tune("t.py::test_x", MeasureSettings(), measure_at)
    assert tuning.outcome == "none" and tuning.recommended is None and tuning.env() == []
    assert "span design must change" in tuning.message and "parse_item 10" in tuning.message
    assert len(tuning.probes) == 2


def test_undecided_when_even_the_lowest_rate_is_inconclusive() -> None:
    measure_at = engine(cost_per_rate=0.0, floor=0.05, undecided_band=0.01)
    tuning = tune("t.py::test_x", MeasureSettings(), measure_at)
    assert tuning.outcome == "undecided" and "more max_time" in tuning.message


def test_the_time_cap_bounds_the_search_and_each_probe() -> None:
    now = [0.0]
    max_times: list[float] = []

    def measure_at(settings: MeasureSettings, label: str) -> TestResult:
        max_times.append(settings.max_time)
        now[0] += settings.max_time
        rate = settings.pipeline.sample_rate if settings.pipeline.sample_rate is not None else 1.0
        return fake_result(settings, rate, Verdict.PASS if rate < 0.05 else Verdict.FAIL)

    tuning = tune("t.py::test_x", MeasureSettings(max_time=10.0), measure_at, time_cap=25.0, clock=lambda: now[0])
    assert max_times == [10.0, 10.0, 5.0]  # the last probe gets only what is left
    assert "time cap" in tuning.message and tuning.outcome == "fits"
    assert tuning.recommended is not None and tuning.recommended.sample_rate is not None


def test_a_queue_too_small_for_the_span_rate_is_raised_and_checked() -> None:
    measure_at = engine(cost_per_rate=1.0)
    settings = MeasureSettings(pipeline=PipelineSettings(queue_size=64, batch_size=64))
    # 10 spans per call at 1000 calls/s: at ~0.03 that is ~300 sampled spans/s, × 5 s × 2 = ~3000.
    tuning = tune("t.py::test_x", settings, measure_at)
    assert tuning.recommended is not None
    assert tuning.recommended.queue_size == 4096 and tuning.recommended.batch_size == 64
    assert tuning.probes[-1].purpose == "queue"


def test_tuning_lines_and_json() -> None:
    tuning = tune("t.py::test_x", MeasureSettings(), engine(cost_per_rate=1.0))
    lines = tuning_lines(tuning)
    assert lines[0].startswith("t.py::test_x  tune: highest rate shown to fit:")
    assert any(line.strip().startswith("OTEL_TRACES_SAMPLER_ARG=") for line in lines)
    data = tuning.as_dict()
    assert data["outcome"] == "fits" and data["env"]["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"  # type: ignore[index]
    assert [p["verdict"] for p in data["probes"]][:2] == ["FAIL", "PASS"]  # type: ignore[attr-defined, index]


@pytest.mark.parametrize("processor", ["simple"])
def test_no_batch_variables_without_a_batch_processor(processor: str) -> None:
    settings = MeasureSettings(pipeline=PipelineSettings(processor=processor))
    tuning = tune("t.py::test_x", settings, engine(cost_per_rate=1.0))
    assert not any(name.startswith("OTEL_BSP_") for name, _ in tuning.env())


LIGHT = """
import pytest
from opentelemetry import trace

tracer = trace.get_tracer("shop")


def spin(n):
    total = 0
    for i in range(n):
        total += i
    return total


@pytest.mark.otel_overhead(budget="50%")
def test_one_span_around_much_work():
    with tracer.start_as_current_span("handle"):
        spin(200_000)
"""


def test_tune_end_to_end(pytester: pytest.Pytester) -> None:
    # Which rate the search settles on depends on the machine's noise (the search itself is tested
    # above with a fake engine); here the plugin must run it, report it and never gate the test.
    pytester.makepyfile(test_demo=LIGHT)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--otel-overhead-tune", "--otel-overhead-tune-time=3",
        "--otel-overhead-max-time=1.5", "--otel-overhead-json=out.json",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*otel-overhead tuning:",
            "test_demo.py::test_one_span_around_much_work  tune: *",
            "    probe rate 1 *",
        ]
    )
    (tuning,) = json.loads((pytester.path / "out.json").read_text())["tuning"]
    assert tuning["outcome"] in ("all", "fits", "none", "undecided", "time")
    assert tuning["probes"][0]["rate"] == 1.0
    if tuning["outcome"] in ("all", "fits"):
        assert tuning["env"]["OTEL_TRACES_SAMPLER"] in ("parentbased_always_on", "parentbased_traceidratio")
        result.stdout.fnmatch_lines(
            ["    recommended:", "      OTEL_TRACES_SAMPLER=*", "      OTEL_BSP_MAX_QUEUE_SIZE=*"]
        )
    else:
        assert tuning["env"] == {}
