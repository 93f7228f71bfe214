"""Attribution: the layers measured, what each adds, and the spans per call by name."""

from __future__ import annotations

import json
import math

import pytest

from pytest_otel_overhead.advice.explain import explain, explain_lines, layer_settings, noop_span_cost
from pytest_otel_overhead.otel.pipeline import build_pipeline
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.results import MetricResult, PipelineHealth, TestResult
from pytest_otel_overhead.settings.merge import with_overrides
from pytest_otel_overhead.settings.records import MeasureSettings, PipelineSettings
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import Budget

# Cumulative overhead by layer in the fake engine below.
COST = {"sdk": 0.02, "record": 0.10, "processor": 0.13, "exporter": 0.18}


def layer_of(pipeline: PipelineSettings) -> str:
    if pipeline.sampler == "always_off":
        return "sdk"
    if pipeline.processor == "none":
        return "record"
    return "processor" if pipeline.exporter == "none" else "exporter"


def fake_measure(measured: list[str]) -> object:
    def measure_at(settings: MeasureSettings, label: str) -> TestResult:
        layer = layer_of(settings.pipeline)
        measured.append(layer)
        overhead = COST[layer]
        cpu = MetricResult(
            "cpu", 1e-3, 1e-3 * (1 + overhead), overhead, overhead - 0.01, overhead + 0.01, "relative", 40, 0.02,
            0.95, Budget("relative", 0.05), Verdict.FAIL,
        )  # fmt: skip
        sampled = 0 if layer == "sdk" else 400
        health = PipelineHealth(
            calls=10, started=400 + 10, sampled=sampled, exported=0, export_calls=0,
            by_name=(("parse_item", 4000), ("import_feed", 10)),
        )  # fmt: skip
        return TestResult(label, settings, (cpu,), health, None, 40, 10, 2, 1.0, "decided", 1e3, 1e3)

    return measure_at


def test_layers_build_the_pipeline_up() -> None:
    settings = MeasureSettings(pipeline=PipelineSettings(sampler="parentbased_traceidratio", sample_rate=0.1))
    layers = layer_settings(settings)
    assert [key for key, _, _ in layers] == ["sdk", "record", "processor"]  # exporter none: nothing more
    sdk, record, processor = (s.pipeline for _, _, s in layers)
    assert sdk.sampler == "always_off" and sdk.processor == "batch"
    assert (record.sampler, record.sample_rate, record.processor) == ("parentbased_traceidratio", 0.1, "none")
    assert processor == settings.pipeline
    with_memory = layer_settings(with_overrides(settings, exporter="memory"))
    assert [key for key, _, _ in with_memory] == ["sdk", "record", "processor", "exporter"]
    assert with_memory[2][2].pipeline.exporter == "none" and with_memory[3][2].pipeline.exporter == "memory"


def test_the_no_processor_layer_records_spans_that_go_nowhere() -> None:
    pipeline = build_pipeline(PipelineSettings(processor="none"), observe=True)
    tracer = pipeline.provider.get_tracer("t")
    with tracer.start_as_current_span("op") as span:
        assert span.is_recording()
    pipeline.flush()
    pipeline.shutdown()
    assert pipeline.counts is not None and (pipeline.counts.sampled, pipeline.counts.exported) == (1, 0)
    assert PipelineSettings(processor="none").describe() == (
        "sampler parentbased_always_on, no processor, exporter none"
    )


def test_explain_measures_each_layer_once_and_reuses_the_full_measurement() -> None:
    settings = MeasureSettings(pipeline=PipelineSettings(exporter="memory"))
    measured: list[str] = []
    measure_at = fake_measure(measured)
    full = measure_at(settings, "t.py::test_x")  # type: ignore[operator]
    measured.clear()
    explanation = explain("t.py::test_x", settings, measure_at, full=full, api_span_cost=1e-6)  # type: ignore[arg-type]
    assert measured == ["sdk", "record", "processor"]
    assert [row.key for row in explanation.rows] == ["sdk", "record", "processor", "exporter"]
    assert [row.adds for row in explanation.rows] == pytest.approx([0.02, 0.08, 0.03, 0.05])
    assert explanation.rows[1].adds_per_call_s == pytest.approx(0.08e-3)
    assert explanation.rows[0].per_span_s == pytest.approx(0.02e-3 / 41)  # over every span started
    assert explanation.rows[1].per_span_s == pytest.approx(0.08e-3 / 40)  # over the sampled ones
    assert explanation.spans_by_name == (("parse_item", 400.0), ("import_feed", 1.0))
    assert explanation.api_estimate_s == pytest.approx(401e-6)


def test_explain_without_a_full_measurement_measures_every_layer() -> None:
    measured: list[str] = []
    explain("t.py::test_x", MeasureSettings(), fake_measure(measured))  # type: ignore[arg-type]
    assert measured == ["sdk", "record", "processor"]


def test_explain_lines_show_the_layers_and_spans_per_call_by_name() -> None:
    measured: list[str] = []
    explanation = explain(
        "t.py::test_x",
        MeasureSettings(),
        fake_measure(measured),
        api_span_cost=1e-6,  # type: ignore[arg-type]
    )
    lines = explain_lines(explanation)
    assert lines[0].startswith("t.py::test_x  overhead by layer (cpu; sampler parentbased_always_on")
    body = "\n".join(lines)
    assert "SDK, sampling off" in body and "spans recorded, not processed" in body and "batch processor" in body
    assert "+8.0 pts" in body and "≈401.0 µs (est.)" in body
    assert "+80.0 µs" in body and "+2.0 µs" in body  # what the spans layer adds per call and per span
    assert lines[-1] == "    spans per call: parse_item: 400, import_feed: 1"


def test_explanation_json() -> None:
    measured: list[str] = []
    explanation = explain("t.py::test_x", MeasureSettings(), fake_measure(measured))  # type: ignore[arg-type]
    data = json.loads(json.dumps(explanation.as_dict(), allow_nan=False))
    assert [layer["layer"] for layer in data["layers"]] == ["sdk", "record", "processor"]
    assert data["layers"][1]["adds"] == pytest.approx(0.08)
    assert data["spans_per_call_by_name"] == {"parse_item": 400.0, "import_feed": 1.0}
    assert data["api"]["estimated"] is True and data["api"]["noop_span_cost_s"] is None


def test_noop_span_cost_is_small_and_positive_through_an_idle_router() -> None:
    router = ArmRouter()
    cost = noop_span_cost(router, spans=2000, repeats=3)
    assert 0 < cost < 1e-3
    pipeline = build_pipeline(PipelineSettings())
    router.switch(pipeline.provider)
    try:
        assert math.isnan(noop_span_cost(router, spans=10, repeats=1))  # only in the baseline arm
    finally:
        router.switch(None)
        pipeline.shutdown()


HEAVY = """
import pytest
from opentelemetry import trace

tracer = trace.get_tracer("shop")


@pytest.mark.otel_overhead(budget="5%", exporter="memory")
def test_span_per_item():
    for _ in range(200):
        with tracer.start_as_current_span("step"):
            pass
"""


def test_explain_end_to_end(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_demo=HEAVY)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--otel-overhead-explain", "--otel-overhead-max-time=1",
        "--otel-overhead-inconclusive=fail", "--otel-overhead-json=out.json",
    )  # fmt: skip
    result.assert_outcomes(failed=1)  # explain keeps the gate: 200 spans around nothing cost far over 5%
    result.stdout.fnmatch_lines(
        [
            "*otel-overhead advice*",
            "test_demo.py::test_span_per_item  overhead by layer (cpu; *exporter memory)",
            "*API, no SDK (baseline *",
            "*SDK, sampling off*",
            "*spans recorded, not processed*",
            "*batch processor (spans discarded)*",
            "*exporter memory*",
            "    spans per call: step: 200",
        ]
    )
    data = json.loads((pytester.path / "out.json").read_text())
    (explained,) = data["explain"]
    assert [layer["layer"] for layer in explained["layers"]] == ["sdk", "record", "processor", "exporter"]
    assert explained["spans_per_call_by_name"] == {"step": 200.0}
    assert explained["layers"][1]["pipeline"]["processor"] == "none"
    assert len(data["tests"]) == 1  # the gate's own measurement, reused as the full pipeline
