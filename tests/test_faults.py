"""The time cap holds whatever the exporter does: a dead, silent, refusing or slow backend.

End to end, each backend fault gets one measurement with ``exporter="otlp"`` and a short
``max_time``. Before the cap reached the pipeline, such runs took 21–36 s at ``max_time=10s``:
every flush waited out the exporter's 30 s default deadline. Now the measurement must end within
``max_time + CAP_MARGIN_S`` (the stated margin), plus an allowance for a loaded machine that still
keeps far below those figures, and the result must say what the cap cut short.

The rest checks the parts without timing: what the cap does to exports and the shutdown, the
diagnostic round's deadline on a virtual clock, and how cut exports read in the results.

Private ArmRouters only; the embedded receiver is the session-wide one, stopped after this module.
"""

from __future__ import annotations

import importlib.metadata
import json
import socket
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Sequence

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pytest_otel_overhead.engine import diagnostic, heap, runner
from pytest_otel_overhead.engine.deadlines import CAP_MARGIN_S
from pytest_otel_overhead.otel.exporters import retry_bound, set_export_timeout
from pytest_otel_overhead.otel.pipeline import Pipeline, build_pipeline
from pytest_otel_overhead.otel.receiver import shared_receiver, stop_shared_receiver
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.results import PipelineHealth
from pytest_otel_overhead.settings.layers import Layer
from pytest_otel_overhead.settings.merge import resolve
from pytest_otel_overhead.settings.records import MeasureSettings, PipelineSettings

MAX_TIME = 3.0
LOADED_MACHINE_S = 3.0
"""Allowance beyond the stated margin for threads that wake late on a busy runner; the runs this
module guards against took ten times longer."""


@pytest.fixture(scope="module", autouse=True)
def _receiver() -> Iterator[None]:
    shared_receiver()  # started here, so that its start-up is not part of any measurement
    yield
    stop_shared_receiver()


def settings_for(**values: object) -> MeasureSettings:
    return resolve([Layer.parse(values, lambda key: "marker on tests/test_faults.py")])


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """Accepts connections (the kernel completes them) and never reads a request nor answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def backend(name: str, silent_endpoint: str) -> dict[str, object]:
    return {
        "dead": {"endpoint": f"http://127.0.0.1:{closed_port()}"},
        "silent": {"endpoint": silent_endpoint},
        "refusing": {"backend_error_rate": 1.0},
        "slow": {"backend_latency": "10s"},
    }[name]


def busy_workload(router: ArmRouter) -> Callable[[], None]:
    """20 spans per call: batches fill within each block, so exports happen throughout the timed pairs."""
    tracer = router.get_tracer("shop")

    def handle() -> None:
        with tracer.start_as_current_span("request"):
            for line in range(20):
                with tracer.start_as_current_span("line", attributes={"line": line}):
                    pass

    return handle


def quick_heap_plan(settings: MeasureSettings, calls: int, wall_per_call: float) -> heap.HeapPlan:
    # Heap rounds a 3 s max_time could not otherwise afford (its tenth is under one pair's estimate),
    # started whenever their time has not run out: what is checked is that they still get it.
    return heap.HeapPlan(pairs=2, pair_s=0.0, reserve_s=heap.heap_reserve_limit(settings))


def _release(distribution: str) -> tuple[int, ...]:
    return tuple(int(part) for part in importlib.metadata.version(distribution).split(".")[:2])


BOUNDED_EXPORTS = _release("opentelemetry-exporter-otlp-proto-http") >= (1, 35)
"""From 1.35 an OTLP export that cannot reach its backend fails within its timeout; before, a refused
connection raises out of ``export`` and a failing backend is retried (bounded by ``retry_bound``)."""
BATCHING_CORE = _release("opentelemetry-sdk") >= (1, 34)
"""From 1.34 the batch processor's worker can be left to finish by itself; before, shutdown joins it."""


@pytest.mark.parametrize("fault", ["dead", "silent", "refusing", "slow"])
def test_max_time_holds_whatever_the_backend_does_and_the_loss_is_reported(
    fault: str, silent_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "plan_heap_rounds", quick_heap_plan)
    router = ArmRouter()
    threads = threading.active_count()
    settings = settings_for(exporter="otlp", budget="100000%", max_time=MAX_TIME, **backend(fault, silent_endpoint))

    started = time.monotonic()
    result = runner.measure(busy_workload(router), settings, router, nodeid=fault)
    elapsed = time.monotonic() - started

    assert elapsed <= MAX_TIME + CAP_MARGIN_S + LOADED_MACHINE_S
    assert result.duration_s <= elapsed
    assert router.idle
    health = result.health
    assert health is not None
    assert health.exported == 0
    assert health.dropped >= 1  # the loss is reported
    # Exports the cap ended return within moments; nothing the pipeline started outlives the test.
    assert wait_for(lambda: threading.active_count() == threads)
    if not BOUNDED_EXPORTS:
        return  # before 1.35 exports fail or raise instead of timing out, and retries eat the heap rounds' time
    assert health.every_export_failed and result.failed_exports is not None
    if fault in ("dead", "refusing"):
        # Refused or answered with an error before the cap: failures, not exports the cap cut. Once the
        # exporter's retries have used up the time, the exports still queued are refused by the cap.
        reason = "refuses connections" if fault == "dead" else "the backend answered with errors"
        assert reason in result.failed_exports
        return
    assert "the backend did not answer" in result.failed_exports
    assert 1 <= health.exports_timed_out <= health.export_failures
    assert 1 <= health.spans_timed_out <= health.spans_failed
    assert health.rounds_exports_timed_out >= 1 and health.rounds_spans_timed_out >= 1
    pipeline = json.loads(json.dumps(result.as_dict()))["pipeline"]
    assert pipeline["exports_timed_out"] == health.exports_timed_out
    assert pipeline["time_cap_note"].startswith(f"max_time ended {health.exports_timed_out} export")
    assert "of the diagnostic round early" in pipeline["time_cap_note"]
    heap_metric = result.metric("heap")
    assert heap_metric is not None and heap_metric.n >= 1  # the heap rounds kept their time


class HangingExporter(SpanExporter):
    """An exporter of the user's that blocks in ``export`` until released, ignoring every deadline."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(60)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


@pytest.fixture
def factory(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """A module of exporter factories, importable as ``fault_exporters`` for the length of a test."""
    module = types.ModuleType("fault_exporters")
    module.made = []  # type: ignore[attr-defined]

    def hanging() -> HangingExporter:
        exporter = HangingExporter()
        module.made.append(exporter)  # type: ignore[attr-defined]
        return exporter

    module.hanging = hanging  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fault_exporters", module)
    yield module
    for exporter in module.made:  # type: ignore[attr-defined]
        exporter.release.set()


def spans(pipeline: Pipeline, count: int) -> None:
    tracer = pipeline.provider.get_tracer("shop")
    for i in range(count):
        with tracer.start_as_current_span("checkout", attributes={"order": i}):
            pass


@pytest.mark.skipif(
    not BATCHING_CORE, reason="before opentelemetry-sdk 1.34 the batch processor's shutdown joins an export in progress"
)
def test_the_shutdown_does_not_wait_for_an_export_that_never_ends(factory: types.ModuleType) -> None:
    threads = threading.active_count()
    pipeline = build_pipeline(PipelineSettings(exporter="fault_exporters:hanging", batch_size=1))
    spans(pipeline, 1)  # a whole batch: the worker thread exports it and hangs there
    (exporter,) = factory.made
    assert exporter.entered.wait(30)
    pipeline.cap(0.2)
    started = time.monotonic()
    pipeline.shutdown()
    assert time.monotonic() - started < 10  # the SDK alone waits 30 s for the worker
    assert pipeline.capped.running == 1  # reported as left running
    exporter.release.set()
    assert wait_for(lambda: pipeline.capped.running == 0 and threading.active_count() == threads)


def test_past_the_cap_exports_fail_at_once_and_are_counted_apart() -> None:
    pipeline = build_pipeline(
        PipelineSettings(exporter="opentelemetry.sdk.trace.export.in_memory_span_exporter:InMemorySpanExporter"),
        observe=True,
    )
    try:
        assert isinstance(pipeline.exporter, InMemorySpanExporter)
        pipeline.cap(3600)
        spans(pipeline, 3)
        pipeline.flush()
        assert len(pipeline.exporter.get_finished_spans()) == 3  # before the cap, exports go through
        pipeline.cap(0)
        spans(pipeline, 5)
        pipeline.flush()
        assert len(pipeline.exporter.get_finished_spans()) == 3
        health = pipeline.health(8)
        assert (health.exports_timed_out, health.spans_timed_out) == (1, 5)
        assert (health.export_failures, health.spans_failed, health.dropped) == (1, 5, 5)
        assert pipeline.wait_limit() == 0
    finally:
        pipeline.shutdown()


def test_local_exporters_never_wait_so_the_cap_leaves_them_alone() -> None:
    pipeline = build_pipeline(PipelineSettings(exporter="memory"), observe=True)
    try:
        pipeline.cap(0)
        spans(pipeline, 4)
        pipeline.flush()
        assert isinstance(pipeline.exporter, InMemorySpanExporter)
        assert len(pipeline.exporter.get_finished_spans()) == 4
        assert pipeline.capped.exports == 0
        assert pipeline.wait_limit() == pipeline.settings.export_timeout_ms / 1e3
    finally:
        pipeline.shutdown()


@pytest.mark.skipif(not BOUNDED_EXPORTS, reason="before 1.35 a refused connection raises out of export")
def test_the_otlp_exporters_take_a_new_deadline_and_other_exporters_are_left_alone() -> None:
    spans_exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{closed_port()}/v1/traces", timeout=30)
    metrics_exporter = OTLPMetricExporter(endpoint=f"http://127.0.0.1:{closed_port()}/v1/metrics", timeout=30)
    try:
        assert set_export_timeout(spans_exporter, 0.5)
        assert set_export_timeout(metrics_exporter, 0.5)
        started = time.monotonic()
        assert spans_exporter.export([]) is SpanExportResult.FAILURE
        # The port is closed: with its 30 s, the exporter would retry for 15 s (after 1, 2, 4 and 8 s).
        assert time.monotonic() - started < 10
    finally:
        spans_exporter.shutdown()
        metrics_exporter.shutdown()
    assert not set_export_timeout(InMemorySpanExporter(), 0.5)


class VirtualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def read(self) -> float:
        return self.now


def test_the_diagnostic_round_stops_its_calls_in_time_for_its_flush_and_shutdown() -> None:
    clock = VirtualClock()
    router = ArmRouter()
    tracer = router.get_tracer("shop")

    def workload() -> None:
        with tracer.start_as_current_span("request"):
            clock.now += 0.01

    settings = settings_for(exporter="otlp")
    # 20 s on the virtual clock, and as long in real time for the pipeline's exports: far more than
    # the flush of what the calls leave needs, so nothing is cut on a loaded machine either.
    deadline = clock.now + 20.0
    health = diagnostic.diagnostic_round(
        workload, settings, router, calls=diagnostic.MAX_CALLS, per_call=0.01, clock=clock.read, deadline=deadline
    )
    # The calls asked for would take 1000 s; they stop where the flush's and the shutdown's time begins.
    room = deadline - diagnostic.DIAGNOSTIC_FLUSH_S - diagnostic.DIAGNOSTIC_WIND_DOWN_S - 100.0
    assert health.calls == pytest.approx(room / 0.01, abs=1)
    assert health.exported == health.calls
    assert health.exports_timed_out == 0
    assert router.idle


def test_a_local_exporter_keeps_no_time_for_a_flush() -> None:
    assert diagnostic.diagnostic_reserve(settings_for(exporter="memory")) == diagnostic.DIAGNOSTIC_S
    assert diagnostic.diagnostic_reserve(settings_for(exporter="otlp")) == pytest.approx(
        diagnostic.DIAGNOSTIC_S + diagnostic.DIAGNOSTIC_FLUSH_S + diagnostic.DIAGNOSTIC_WIND_DOWN_S
    )


CUT = PipelineHealth(
    calls=100,
    started=3000,
    sampled=3000,
    exported=1000,
    export_calls=6,
    ended=3000,
    export_failures=4,
    spans_failed=1500,
    exports_timed_out=3,
    spans_timed_out=1200,
    rounds_exports_timed_out=7,
    rounds_spans_timed_out=3584,
    max_dropped=800,
)


def test_spans_the_cap_cut_do_not_count_against_max_dropped() -> None:
    assert CUT.dropped == 2000
    assert CUT.dropped_by_queue == 500
    assert not CUT.over_budget  # 800 lost for sure: 500 in the queue and 300 in a failed export
    assert PipelineHealth(**{**CUT.__dict__, "max_dropped": 799}).over_budget
    assert PipelineHealth(**{**CUT.__dict__, "max_dropped": 799}).budget_sentence() == (
        "lost 800 spans in 100 calls (queue full: 500, failed exports: 300), 1200 more cut by max_time, "
        "budget max_dropped=799"
    )


def test_what_the_cap_cut_reads_in_a_note_and_in_the_json() -> None:
    assert CUT.time_cap_note() == (
        "max_time ended 3 exports of the diagnostic round early (1200 spans, dropped but not counted against "
        "max_dropped) and "
        "7 exports of the timed and heap rounds early (3584 spans): the time left ran out first (a backend that "
        "does not answer holds an export until then, and so do an exporter's retries after failed exports; a longer "
        "max_time gives them more; an export_timeout well below max_time tells a down backend from a slow one)"
    )
    left = PipelineHealth(calls=1, started=1, sampled=1, exported=1, export_calls=1, export_left_running=True)
    note = left.time_cap_note()
    assert note is not None and note.startswith("max_time was reached; an export was still running at shutdown")
    data = json.loads(json.dumps(CUT.as_dict()))
    assert (data["exports_timed_out"], data["spans_timed_out"]) == (3, 1200)
    assert (data["rounds_exports_timed_out"], data["rounds_spans_timed_out"]) == (7, 3584)
    assert data["export_left_running"] is False
    assert data["time_cap_note"] == CUT.time_cap_note()
    healthy = PipelineHealth(calls=1, started=1, sampled=1, exported=1, export_calls=1)
    assert healthy.time_cap_note() is None and healthy.as_dict()["time_cap_note"] is None


def test_retries_of_exporters_before_1_35_sleep_no_longer_than_the_time_left() -> None:
    for seconds in (0.0, 0.5, 1.0, 2.9, 3.0, 7.0, 30.0, 100.0):
        bound = retry_bound(seconds)
        assert bound >= 2  # one attempt at least: a bound of 1 gives up before trying
        assert bound == 2 or bound - 1 <= seconds  # the sleeps before giving up: 1 + 2 + ... + bound/2
        assert 2 * bound - 1 > seconds  # the largest such bound
