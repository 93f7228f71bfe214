"""No telemetry, no green: a measurement whose instrumented arm recorded nothing says so, with its causes.

Counting metric measurements and foreign spans is checked on its own, in process, with a private
router that is never installed globally; the engine is then run on workloads whose spans go
through their own provider, through the router, or that record only metrics. Every SDK class or
logger a probe patches is checked to be as it was afterwards.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import Tracer, TracerProvider

from pytest_otel_overhead.engine import runner
from pytest_otel_overhead.engine.telemetry import no_telemetry_reason, with_telemetry_outcome
from pytest_otel_overhead.history.store import RunRecord, result_from_dict
from pytest_otel_overhead.otel import foreign
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.reports.html import html_report
from pytest_otel_overhead.reports.markdown import markdown_report
from pytest_otel_overhead.reports.terminal import summary_lines
from pytest_otel_overhead.results import NO_TELEMETRY, PipelineHealth, TestResult
from pytest_otel_overhead.session import record_properties
from pytest_otel_overhead.settings.keys import KEYS
from pytest_otel_overhead.settings.layers import Layer, env_layer
from pytest_otel_overhead.settings.merge import resolve
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.units import SettingsError
from pytest_otel_overhead.wire.transport import from_json, to_json

HERE = os.path.basename(__file__)


def settings_for(**values: object) -> MeasureSettings:
    return resolve([Layer.parse(values, lambda key: "marker on tests/test_no_telemetry.py")])


def health(**fields: object) -> PipelineHealth:
    values: dict[str, object] = {"calls": 100, "started": 0, "sampled": 0, "exported": 0, "export_calls": 0}
    values.update(fields)
    return PipelineHealth(**values)  # type: ignore[arg-type]


@pytest.fixture
def router() -> ArmRouter:
    return ArmRouter()


@pytest.fixture
def origins_tracked() -> Iterator[None]:
    """Provider origins tracked for the test, then as before (the plugin may have started tracking already)."""
    started = foreign.track_provider_origins()
    yield
    if started:
        foreign.stop_tracking_provider_origins()


def own_provider() -> TracerProvider:
    return TracerProvider(shutdown_on_exit=False)


# --- the rule --------------------------------------------------------------------------------------


@given(
    calls=st.integers(0, 5),
    started=st.integers(0, 3),
    points=st.one_of(st.none(), st.integers(0, 3)),
    measurements=st.one_of(st.none(), st.integers(0, 3)),
)
def test_nothing_recorded_means_calls_made_and_no_span_no_point_no_measurement_counted(
    calls: int, started: int, points: int | None, measurements: int | None
) -> None:
    h = health(calls=calls, started=started, metric_points=points, metric_measurements=measurements)
    expected = calls > 0 and started == 0 and not points and measurements == 0
    assert h.recorded_nothing is expected
    reason = no_telemetry_reason(h, MeasureSettings())
    assert (reason is not None) is expected


def test_uncounted_metrics_are_unknown_not_nothing() -> None:
    assert not health(metric_measurements=None).recorded_nothing
    assert no_telemetry_reason(None, MeasureSettings()) is None


def test_the_reason_names_foreign_tracers_and_where_their_provider_was_made() -> None:
    origins = ("20 spans/call from tracer 'bench' started at bench.py:9, its TracerProvider created at bench.py:3",)
    reason = no_telemetry_reason(
        health(metric_measurements=0, foreign_spans=2000, foreign_origins=origins), MeasureSettings()
    )
    assert reason is not None
    assert "tracer 'bench' started at bench.py:9" in reason
    assert "created at bench.py:3" in reason
    assert "tracer_provider=..." in reason and "trace.get_tracer" in reason


def test_the_reason_names_instrumentors_whose_targets_existed_before_the_arm() -> None:
    settings = settings_for(instrument="opentelemetry.instrumentation.sqlite3:SQLite3Instrumentor")
    reason = no_telemetry_reason(health(metric_measurements=0), settings)
    assert reason is not None
    assert "SQLite3Instrumentor" in reason and "objects made before it" in reason
    assert "started no span" not in reason


def test_without_any_lead_the_reason_asks_whether_the_code_is_instrumented() -> None:
    reason = no_telemetry_reason(health(metric_measurements=0, foreign_spans=0), MeasureSettings())
    assert reason is not None and "is it instrumented" in reason


def test_with_telemetry_outcome_sets_and_clears_the_reason(make_result: Callable[..., TestResult]) -> None:
    silent = dataclasses.replace(make_result(), health=health(metric_measurements=0))
    judged = with_telemetry_outcome(silent)
    assert judged.outcome == NO_TELEMETRY and judged.no_telemetry is not None
    spoke = dataclasses.replace(judged, health=health(started=300, metric_measurements=0))
    assert with_telemetry_outcome(spoke).no_telemetry is None
    assert with_telemetry_outcome(spoke).outcome == "PASS"


# --- the setting -------------------------------------------------------------------------------------


def test_the_no_telemetry_policy_is_a_setting_from_every_source() -> None:
    assert MeasureSettings().no_telemetry == "fail"  # a budget that measured nothing is no PASS
    assert settings_for(no_telemetry="FAIL").no_telemetry == "fail"
    env = env_layer({"OTEL_OVERHEAD_NO_TELEMETRY": "ignore"})
    settings = resolve([env])
    assert settings.no_telemetry == "ignore"
    assert settings.source("no_telemetry") == "$OTEL_OVERHEAD_NO_TELEMETRY"
    assert KEYS["no_telemetry"].env == ("OTEL_OVERHEAD_NO_TELEMETRY",)
    with pytest.raises(SettingsError, match=r"^--otel-overhead-no-telemetry: 'loud' is not one of warn, fail, ignore$"):
        Layer.parse({"no_telemetry": "loud"}, lambda key: "--otel-overhead-no-telemetry")


# --- counting metric measurements -------------------------------------------------------------------


def test_metric_measurements_are_counted_only_while_counting_and_routed_to_an_sdk_provider(router: ArmRouter) -> None:
    counter = router.meters.get_meter("shop").create_counter("orders")
    histogram = router.meters.get_meter("shop").create_histogram("latency")
    sdk = MeterProvider(shutdown_on_exit=False)
    try:
        with router.meters.counting() as count:
            counter.add(1)  # idle: not counted
            router.meters.switch(sdk)
            counter.add(1)
            counter.add(2)
            histogram.record(0.5)
            router.meters.switch(None)
            counter.add(1)  # idle again
        assert count.measurements == 3
        router.meters.switch(sdk)
        counter.add(1)  # after counting: the delegate is the plain SDK instrument again
        router.meters.switch(None)
        assert count.measurements == 3
    finally:
        sdk.shutdown()


# --- foreign spans and provider origins -----------------------------------------------------------


def test_provider_origins_name_the_line_that_made_the_provider(origins_tracked: None) -> None:
    provider = own_provider()
    line = own_provider.__code__.co_firstlineno + 1
    tracer = provider.get_tracer("bench")
    origin = foreign.provider_origin(tracer)
    assert origin is not None and origin.endswith(f"{HERE}:{line}")
    assert foreign.provider_origin(object()) is None


def test_stopping_origin_tracking_restores_the_sdk_class() -> None:
    before = TracerProvider.__init__
    started = foreign.track_provider_origins()
    try:
        assert foreign.track_provider_origins() is False  # idempotent
        assert (TracerProvider.__init__ is not before) is started
    finally:
        if started:
            foreign.stop_tracking_provider_origins()
    assert TracerProvider.__init__ is before or not started


def test_foreign_spans_are_counted_per_tracer_and_the_arms_own_are_not(origins_tracked: None) -> None:
    ours, theirs = own_provider(), own_provider()
    original = Tracer.start_span
    try:
        with foreign.counting_foreign_spans(ours) as found:
            for _ in range(3):
                theirs.get_tracer("bench").start_span("s").end()
            ours.get_tracer("routed").start_span("s").end()
        assert Tracer.start_span is original
        assert found.total == 3
        (tracer,) = found.tracers
        assert tracer.scope == "bench" and tracer.spans == 3
        assert tracer.started_at is not None and tracer.started_at.split(":")[0].endswith(HERE)
        assert tracer.provider_at is not None and HERE in tracer.provider_at
        (text,) = found.describe(calls=3)
        assert text.startswith("1 spans/call from tracer 'bench' started at ")
        assert "its TracerProvider created at" in text
    finally:
        ours.shutdown()
        theirs.shutdown()


def test_a_foreign_span_start_that_raises_still_restores_the_sdk() -> None:
    ours = own_provider()
    original = Tracer.start_span
    try:
        with pytest.raises(RuntimeError), foreign.counting_foreign_spans(ours):
            raise RuntimeError("boom")
        assert Tracer.start_span is original
    finally:
        ours.shutdown()


# --- the engine --------------------------------------------------------------------------------------


def test_the_engine_says_no_telemetry_when_spans_go_through_a_provider_of_their_own(
    router: ArmRouter, origins_tracked: None
) -> None:
    provider = own_provider()
    tracer = provider.get_tracer("micro")

    def workload() -> None:
        for _ in range(5):
            tracer.start_span("s").end()

    try:
        result = runner.measure(workload, settings_for(budget="100000%", max_time=1), router)
    finally:
        provider.shutdown()
    assert result.health is not None
    assert result.health.started == 0 and result.health.metric_measurements == 0
    assert result.health.foreign_spans == 5 * result.health.calls
    assert result.outcome == NO_TELEMETRY
    assert result.no_telemetry is not None
    assert "5 spans/call from tracer 'micro'" in result.no_telemetry
    assert f"{HERE}:" in result.no_telemetry
    assert router.idle


def test_the_engine_sees_telemetry_through_the_router_spans_or_metrics(router: ArmRouter) -> None:
    tracer = router.get_tracer("shop")
    counter = router.meters.get_meter("shop").create_counter("orders")
    settings = settings_for(budget="100000%", max_time=1)
    spans = runner.measure(lambda: tracer.start_span("s").end(), settings, router)
    assert spans.no_telemetry is None and spans.outcome != NO_TELEMETRY
    assert spans.health is not None and spans.health.foreign_spans == 0
    metrics = runner.measure(lambda: counter.add(1), settings, router)
    assert metrics.health is not None and metrics.health.started == 0
    assert metrics.health.metric_measurements == metrics.health.calls
    assert metrics.no_telemetry is None


# --- where the outcome shows -----------------------------------------------------------------------


def silent_result(make_result: Callable[..., TestResult], nodeid: str = "tests/t.py::test_micro") -> TestResult:
    origins = ("3 spans/call from tracer 'micro', its TracerProvider created at tests/t.py:4",)
    result = dataclasses.replace(
        make_result(nodeid),
        health=health(metric_measurements=0, foreign_spans=300, foreign_origins=origins),
        notes=("sys.settrace is active (coverage): timings include its cost in both arms; the ratio is diluted",),
    )
    return with_telemetry_outcome(result)


def test_json_and_the_wire_keep_the_outcome(make_result: Callable[..., TestResult]) -> None:
    result = silent_result(make_result)
    data = json.loads(json.dumps(result.as_dict(), allow_nan=False))
    assert data["outcome"] == "NO_TELEMETRY" and data["verdict"] == "PASS"
    assert data["no_telemetry"] == result.no_telemetry
    assert data["notes"] == list(result.notes)
    assert data["pipeline"]["foreign_spans"] == 300 and data["pipeline"]["foreign_spans_per_call"] == 3
    assert data["pipeline"]["metric_measurements"] == 0
    assert data["settings"]["no_telemetry"] == "fail"  # the default
    for back in (result_from_dict(data), from_json(TestResult, to_json(result))):
        assert back.no_telemetry == result.no_telemetry and back.notes == result.notes
        assert back.outcome == NO_TELEMETRY
        assert back.health is not None and back.health.foreign_origins == result.health.foreign_origins  # type: ignore[union-attr]


def test_the_terminal_summary_shows_the_outcome_its_reason_and_the_notes(
    make_result: Callable[..., TestResult],
) -> None:
    lines = summary_lines([silent_result(make_result), make_result("tests/t.py::test_fine")])
    assert re.match(r"tests/t\.py::test_micro  NO TELEMETRY  (budget|no budget)", lines[0])
    assert any(line.startswith("    no telemetry measured: the instrumented arm recorded no spans") for line in lines)
    assert any(line.startswith("    note: sys.settrace is active (coverage)") for line in lines)
    assert lines[-1] == "2 measured: 1 PASS, 0 FAIL, 0 INCONCLUSIVE, 1 NO TELEMETRY"
    assert summary_lines([make_result()])[-1] == "1 measured: 1 PASS, 0 FAIL, 0 INCONCLUSIVE"


def test_markdown_and_html_show_the_outcome(make_result: Callable[..., TestResult]) -> None:
    run = RunRecord(results=(silent_result(make_result),), environment={}, created="2025-01-01T00:00:00+00:00")
    markdown = markdown_report(run)
    assert "🚫 NO TELEMETRY" in markdown and "1 NO TELEMETRY**" in markdown
    assert "no telemetry measured: the instrumented arm recorded no spans" in markdown
    assert "sys.settrace is active" in markdown
    page = html_report(run, charts=False)
    assert "NO TELEMETRY</span></h3>" in page
    assert "no telemetry measured: the instrumented arm recorded no spans" in page
    assert "sys.settrace is active" in page


class FakeItem:
    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.user_properties: list[tuple[str, object]] = []


def test_junit_properties_carry_the_outcome_reason_and_notes(make_result: Callable[..., TestResult]) -> None:
    result = silent_result(make_result)
    item = FakeItem(result.nodeid)
    record_properties(item, result)  # type: ignore[arg-type]
    props = dict(item.user_properties)
    assert props["otel_overhead.outcome"] == "NO_TELEMETRY"
    assert props["otel_overhead.verdict"] == "PASS"
    assert props["otel_overhead.no_telemetry"] == result.no_telemetry
    assert props["otel_overhead.note"] == result.notes[0]
    fine = FakeItem("tests/test_x.py::test_y")
    record_properties(fine, make_result())  # type: ignore[arg-type]
    assert dict(fine.user_properties)["otel_overhead.outcome"] == "PASS"
    assert "otel_overhead.no_telemetry" not in dict(fine.user_properties)
    assert "otel_overhead.note" not in dict(fine.user_properties)
