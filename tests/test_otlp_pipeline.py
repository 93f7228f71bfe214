"""The instrumented arm's pipeline with real exporters: OTLP to the embedded receiver or to a dead
endpoint, a user factory, and auto-instrumentation that follows the arm.

Private ArmRouters only; the embedded receiver is the session-wide one, stopped after this module.
"""

from __future__ import annotations

import importlib.util
import socket
import sqlite3
import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pytest_otel_overhead.otel.pipeline import Pipeline, build_pipeline
from pytest_otel_overhead.otel.receiver import shared_receiver, stop_shared_receiver
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.settings.records import PipelineSettings

SQLITE = "opentelemetry.instrumentation.sqlite3:SQLite3Instrumentor"


needs_batch_core = pytest.mark.skipif(
    importlib.util.find_spec("opentelemetry.sdk._shared_internal") is None,
    reason="exporting whole batches between blocks needs opentelemetry-sdk 1.34+ (its batch core)",
)


@pytest.fixture(scope="module", autouse=True)
def _receiver_stopped() -> Iterator[None]:
    yield
    stop_shared_receiver()


@pytest.fixture
def built() -> Iterator[list[Pipeline]]:
    pipelines: list[Pipeline] = []
    yield pipelines
    for pipeline in pipelines:
        pipeline.shutdown()


def make(built: list[Pipeline], **settings: object) -> Pipeline:
    pipeline = build_pipeline(PipelineSettings(**settings), observe=True)  # type: ignore[arg-type]
    built.append(pipeline)
    return pipeline


def spans(pipeline: Pipeline, count: int) -> None:
    tracer = pipeline.provider.get_tracer("shop")
    for i in range(count):
        with tracer.start_as_current_span("checkout", attributes={"order": i}):
            pass


def exported(pipeline: Pipeline) -> int:
    assert pipeline.counts is not None
    with pipeline.counts.lock:
        return pipeline.counts.exported


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@needs_batch_core
def test_otlp_blocks_keep_production_pace_whole_batches_now_partial_ones_per_delay(built: list[Pipeline]) -> None:
    pipeline = make(built, exporter="otlp", batch_size=100, schedule_delay_ms=60_000)
    assert pipeline.production_schedule
    spans(pipeline, 50)
    pipeline.flush(0.01)
    assert exported(pipeline) == 0  # half a batch waits, as in production
    spans(pipeline, 60)
    pipeline.flush(0.01)
    assert exported(pipeline) == 100  # one whole batch went; ten spans wait
    pipeline.flush(60.0)  # a schedule delay of instrumented time has passed
    assert exported(pipeline) == 110
    stats = pipeline.receiver_stats()
    assert stats is not None and stats.spans == 110 and stats.requests == 2


def test_local_exporters_export_everything_at_the_end_of_each_block(built: list[Pipeline]) -> None:
    pipeline = make(built, exporter="memory", schedule_delay_ms=60_000)
    assert not pipeline.production_schedule
    spans(pipeline, 5)
    pipeline.flush(0.001)
    assert isinstance(pipeline.exporter, InMemorySpanExporter)
    assert len(pipeline.exporter.get_finished_spans()) == 5


def test_a_flush_to_a_dead_backend_ends_within_the_export_timeout(built: list[Pipeline]) -> None:
    pipeline = make(built, exporter="otlp", endpoint=f"http://127.0.0.1:{closed_port()}", export_timeout_ms=1000)
    spans(pipeline, 2000)  # four batches; each alone may take the exporter's whole deadline
    started = time.monotonic()
    pipeline.flush()
    elapsed = time.monotonic() - started
    health = pipeline.health(2000)
    assert health.exported == 0
    assert health.dropped == 2000
    assert health.export_failures >= 1
    assert health.spans_failed + health.dropped_by_queue == 2000
    assert health.bytes_sent is None  # no embedded receiver: bytes are not known
    assert elapsed < 20  # the deadline is 1 s; four sequential deadlines would be far less than 20 s too


def test_retries_against_a_failing_backend_deliver_the_spans(built: list[Pipeline]) -> None:
    pipeline = make(built, exporter="otlp", backend_error_rate=0.5)
    spans(pipeline, 10)
    pipeline.flush()  # the first request is answered 503, the retry (after about a second) 200
    health = pipeline.health(10)
    assert (health.exported, health.dropped) == (10, 0)
    assert (health.backend_requests, health.backend_rejected) == (2, 1)
    assert health.export_latency_p50 is not None and health.export_latency_p50 >= 0.5


@needs_batch_core
def test_a_user_factory_builds_the_exporter(built: list[Pipeline]) -> None:
    pipeline = make(built, exporter="opentelemetry.sdk.trace.export.in_memory_span_exporter:InMemorySpanExporter")
    assert isinstance(pipeline.exporter, InMemorySpanExporter)
    assert pipeline.production_schedule  # an unknown exporter may send requests: paced as production
    spans(pipeline, 3)
    pipeline.flush()
    assert len(pipeline.exporter.get_finished_spans()) == 3


def test_a_factory_that_returns_no_exporter_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match=r"^exporter factory 'builtins:object' returned object, not a SpanExporter$"):
        build_pipeline(PipelineSettings(exporter="builtins:object"))


def test_shutdown_releases_the_pipeline_in_the_receiver() -> None:
    pipeline = build_pipeline(PipelineSettings(exporter="otlp"))
    assert pipeline.tag is not None
    spans(pipeline, 1)
    pipeline.flush()
    assert shared_receiver().stats(pipeline.tag)["traces"].spans == 1
    pipeline.shutdown()
    assert shared_receiver().stats(pipeline.tag) == {}


def _query() -> list[tuple[int]]:
    connection = sqlite3.connect(":memory:")
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT 1")
        return cursor.fetchall()
    finally:
        connection.close()


def test_instrumentors_are_applied_in_the_instrumented_arm_only(built: list[Pipeline]) -> None:
    instrumentation = pytest.importorskip("opentelemetry.instrumentation.sqlite3")
    instrumentor = instrumentation.SQLite3Instrumentor()
    router = ArmRouter()
    pipeline = make(built, instrument=(SQLITE,))
    assert not instrumentor.is_instrumented_by_opentelemetry
    try:
        router.switch(pipeline.provider)
        assert instrumentor.is_instrumented_by_opentelemetry
        assert _query() == [(1,)]
        router.switch(None)
        assert not instrumentor.is_instrumented_by_opentelemetry
        assert _query() == [(1,)]  # the baseline runs the library as it is
    finally:
        router.switch(None)
    pipeline.flush()
    assert pipeline.counts is not None
    assert pipeline.counts.by_name == {"SELECT": 1}
    assert not instrumentor.is_instrumented_by_opentelemetry


def test_a_library_instrumented_elsewhere_cannot_be_measured_against_a_clean_baseline() -> None:
    instrumentation = pytest.importorskip("opentelemetry.instrumentation.sqlite3")
    instrumentor = instrumentation.SQLite3Instrumentor()
    instrumentor.instrument(skip_dep_check=True)
    try:
        with pytest.raises(RuntimeError, match="already instrumented outside the measurement"):
            build_pipeline(PipelineSettings(instrument=(SQLITE,)))
    finally:
        instrumentor.uninstrument()
