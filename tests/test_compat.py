"""Feature checks across the supported versions: pytest's verbosity, the OpenTelemetry API's optional
arguments, and the SDK and pytest-benchmark internals that degrade with a one-line warning.

These tests run on the newest releases and on the floors (constraints/floor.txt): each checks what
the installed version gives, and the degraded paths are reached with stand-ins that hide internals.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pytest_otel_overhead import compat
from pytest_otel_overhead.compat import OverheadCompatWarning
from pytest_otel_overhead.otel.pipeline import build_pipeline
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.settings.layers import Layer
from pytest_otel_overhead.settings.merge import resolve
from pytest_otel_overhead.settings.records import PipelineSettings

EXPORTED: list[InMemorySpanExporter] = []


def memory_exporter() -> SpanExporter:
    """An exporter factory (``exporter="test_compat:memory_exporter"``): counts as a network exporter."""
    exporter = InMemorySpanExporter()
    EXPORTED.append(exporter)
    return exporter


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Each degradation is said once per process; every test here starts with none said.
    monkeypatch.setattr("pytest_otel_overhead.compat._said", set())
    EXPORTED.clear()
    yield
    EXPORTED.clear()


def pipeline_settings(**values: object) -> PipelineSettings:
    return resolve([Layer.parse(values, lambda key: "marker on tests/test_compat.py")]).pipeline


# -- pytest ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [(), ("-v",), ("-vv",), ("-q",)])
def test_verbosity_is_the_count_of_v_flags(pytester: pytest.Pytester, flags: tuple[str, ...]) -> None:
    config = pytester.parseconfig(*flags)
    expected = {(): 0, ("-v",): 1, ("-vv",): 2, ("-q",): -1}[flags]
    assert compat.verbosity(config) == expected


def test_verbosity_without_get_verbosity_reads_the_option() -> None:
    class OldConfig:  # pytest 7: no get_verbosity
        def getoption(self, name: str) -> int:
            assert name == "verbose"
            return 3

    assert compat.verbosity(OldConfig()) == 3  # type: ignore[arg-type]


# -- OpenTelemetry API -------------------------------------------------------------------------------


def test_accepts_tells_parameters_and_keyword_catch_alls() -> None:
    def named(name: str, attributes: object = None) -> None: ...
    def without(name: str) -> None: ...
    def catch_all(name: str, **kwargs: object) -> None: ...

    assert compat.accepts(named, "attributes")
    assert not compat.accepts(without, "attributes")
    assert compat.accepts(catch_all, "attributes")


def test_the_attribute_checks_agree_with_the_api_entry_points() -> None:
    # trace.get_tracer / metrics.get_meter gained `attributes` together with the providers' methods.
    assert compat.tracer_takes_attributes() == ("attributes" in inspect.signature(trace.get_tracer).parameters)
    assert compat.meter_takes_attributes() == ("attributes" in inspect.signature(metrics.get_meter).parameters)
    scope = ("lib", "1.0", None, {"k": "v"})
    assert compat.tracer_args(scope) == (scope if compat.tracer_takes_attributes() else scope[:3])


def test_routed_tracers_and_meters_resolve_in_every_provider_of_this_api() -> None:
    router = ArmRouter()
    tracer = router.get_tracer("lib", "1.0", None, None)
    histogram = router.meters.get_meter("lib", "1.0").create_histogram("latency", "ms")
    gauge = router.meters.get_meter("lib").create_gauge("depth")
    provider = TracerProvider(shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    try:
        for target in (None, provider, None):
            with router.routed_to(target), tracer.start_as_current_span("work"):
                histogram.record(1.5)
                gauge.set(3)
        provider.force_flush()
        assert [span.name for span in exporter.get_finished_spans()] == ["work"]
    finally:
        provider.shutdown()
    assert isinstance(gauge, compat.gauge_base())


def test_the_placeholder_meter_provider_is_told_from_a_set_one() -> None:
    script = textwrap.dedent(
        """
        from opentelemetry import metrics
        from pytest_otel_overhead.compat import is_placeholder_meter_provider as placeholder

        before = placeholder(metrics.get_meter_provider())
        metrics.set_meter_provider(metrics.NoOpMeterProvider())
        print(before, placeholder(metrics.get_meter_provider()))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]


# -- instrumentation ---------------------------------------------------------------------------------


class _Instrumentor:
    """Just what the dependency check reads of an instrumentor."""

    def __init__(self, dependencies: Sequence[str]) -> None:
        self.dependencies = tuple(dependencies)

    def instrumentation_dependencies(self) -> Sequence[str]:
        return self.dependencies


def test_a_dependency_conflict_is_described_by_the_public_check() -> None:
    assert compat.dependency_conflict(_Instrumentor(["pytest>=1"])) is None
    message = compat.dependency_conflict(_Instrumentor(["no-such-library-for-otel-overhead>=1"]))
    assert message is not None and "no-such-library-for-otel-overhead" in message
    assert "\n" not in message


def test_an_instrumentors_own_check_is_preferred() -> None:
    class Strict(_Instrumentor):
        def _check_dependency_conflicts(self) -> str:
            return "Strict only instruments nothing"

    assert compat.dependency_conflict(Strict(["pytest>=1"])) == "Strict only instruments nothing"


# -- SDK internals -----------------------------------------------------------------------------------


class _OpaqueBatchProcessor(SpanProcessor):
    """A batch processor whose internals cannot be seen, as a future SDK's may not be."""

    def __init__(self, exporter: SpanExporter, **options: Any) -> None:
        self.inner = BatchSpanProcessor(exporter, **options)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self.inner.on_end(span)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _spans(router: ArmRouter, provider: trace.TracerProvider, count: int) -> None:
    tracer = router.get_tracer("shop")
    with router.routed_to(provider):
        for _ in range(count):
            with tracer.start_as_current_span("request"):
                pass


def test_without_the_batch_queue_health_still_counts_drops_and_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("pytest_otel_overhead.otel.pipeline.BatchSpanProcessor", _OpaqueBatchProcessor)
    with pytest.warns(
        OverheadCompatWarning, match=r"^pipeline health: peak queue use needs opentelemetry-sdk's"
    ) as seen:
        pipeline = build_pipeline(pipeline_settings(exporter="memory"), observe=True)
    assert len(seen) == 1 and "\n" not in str(seen[0].message)
    assert "the queue peak is not reported (drops still are)" in str(seen[0].message)
    try:
        _spans(ArmRouter(), pipeline.provider, 40)
        pipeline.flush()
        health = pipeline.health(40)
    finally:
        pipeline.shutdown()
    assert health.queue_peak is None
    assert health.ended == health.sampled == health.exported == 40
    assert health.dropped == 0


def test_with_the_sdks_batch_queue_the_peak_is_reported_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", OverheadCompatWarning)
        pipeline = build_pipeline(pipeline_settings(exporter="memory", queue_size=4096), observe=True)
    try:
        _spans(ArmRouter(), pipeline.provider, 40)
        pipeline.flush()
        health = pipeline.health(40)
    finally:
        pipeline.shutdown()
    assert health.queue_peak is not None and 1 <= health.queue_peak <= 40


def test_without_the_batch_core_each_block_exports_everything_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pytest_otel_overhead.otel.pipeline.BatchSpanProcessor", _OpaqueBatchProcessor)
    # A long schedule delay: with the SDK's core, a block this short would leave its spans queued.
    settings = pipeline_settings(exporter="test_compat:memory_exporter", schedule_delay="10min")
    with pytest.warns(OverheadCompatWarning, match=r"^pipeline schedule: .* each block exports all its spans"):
        pipeline = build_pipeline(settings)
    try:
        assert not pipeline.production_schedule
        _spans(ArmRouter(), pipeline.provider, 5)
        pipeline.flush(busy_s=0.001)
        assert len(EXPORTED[-1].get_finished_spans()) == 5
    finally:
        pipeline.shutdown()


def test_with_the_sdks_batch_core_network_exporters_keep_the_production_schedule() -> None:
    pytest.importorskip("opentelemetry.sdk._shared_internal", reason="the batch core is in opentelemetry-sdk 1.34+")
    settings = pipeline_settings(exporter="test_compat:memory_exporter", schedule_delay="10min")
    with warnings.catch_warnings():
        warnings.simplefilter("error", OverheadCompatWarning)
        pipeline = build_pipeline(settings)
    try:
        assert pipeline.production_schedule
        _spans(ArmRouter(), pipeline.provider, 5)
        pipeline.flush(busy_s=0.001)
        assert EXPORTED[-1].get_finished_spans() == ()  # a partial batch waits for the schedule delay
    finally:
        pipeline.shutdown()


def test_a_degradation_is_said_once() -> None:
    with pytest.warns(OverheadCompatWarning, match="^feature x: lost$"):
        compat.degraded("feature x: lost")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compat.degraded("feature x: lost")


# -- pytest-benchmark --------------------------------------------------------------------------------


def test_a_benchmark_fixture_that_cannot_be_taken_over_is_left_to_pytest_benchmark(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("pytest_benchmark")
    pytester.makeconftest(
        """
        import pytest
        from pytest_benchmark.fixture import BenchmarkFixture


        class StandIn(BenchmarkFixture):  # a fixture class of its own, which the takeover does not know
            def __init__(self):
                self.kind = "stand-in"


        @pytest.fixture
        def benchmark():
            return StandIn()
        """
    )
    pytester.makepyfile(
        """
        def test_uses_benchmark(benchmark):
            assert benchmark.kind == "stand-in"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:xdist", "--otel-overhead", "-W", "default")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        ["*OverheadCompatWarning: benchmark: measuring the `benchmark` fixture needs pytest-benchmark's*"]
    )
