"""Pipeline health from the diagnostic round: spans per call, drops counted for real, exports, bytes,
queue use, threads; the max_dropped budget; how it reads in the JSON and the summary.

The diagnostic round runs in process with a private ArmRouter against the embedded receiver (the
session-wide one, stopped after this module). Effects are far from any threshold: a queue of 16
under thousands of spans, gzip on repetitive spans, a backend that refuses everything.
"""

from __future__ import annotations

import importlib.metadata
import json
import time
from collections.abc import Callable, Iterator

import pytest

from pytest_otel_overhead.engine import diagnostic
from pytest_otel_overhead.otel.receiver import stop_shared_receiver
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.reports.terminal import health_line, result_message, summary_lines
from pytest_otel_overhead.results import PipelineHealth, TestResult
from pytest_otel_overhead.settings.layers import Layer
from pytest_otel_overhead.settings.merge import resolve
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.verdict import Verdict


@pytest.fixture(scope="module", autouse=True)
def _receiver_stopped() -> Iterator[None]:
    yield
    stop_shared_receiver()


def settings_for(**values: object) -> MeasureSettings:
    return resolve([Layer.parse(values, lambda key: "marker on tests/test_pipeline_health.py")])


def workload(router: ArmRouter, spans_per_call: int) -> Callable[[], None]:
    tracer = router.get_tracer("shop")

    def handle() -> None:
        with tracer.start_as_current_span("request"):
            for i in range(spans_per_call - 1):
                with tracer.start_as_current_span("line", attributes={"line": i, "shop.region": "eu-central"}):
                    pass

    return handle


def diagnose(spans_per_call: int = 3, calls: int = 200, **values: object) -> PipelineHealth:
    router = ArmRouter()
    # per_call chosen so the round makes at least ``calls`` calls (more if they take under DIAGNOSTIC_S)
    health = diagnostic.diagnostic_round(
        workload(router, spans_per_call), settings_for(**values), router, calls, diagnostic.DIAGNOSTIC_S / calls
    )
    assert router.idle
    assert health.calls >= calls
    return health


def test_otlp_health_counts_every_span_and_the_bytes_on_the_wire() -> None:
    # The round runs for DIAGNOSTIC_S however fast the calls are, so thousands of spans may queue up
    # faster than a busy machine exports them: a queue far larger than that keeps drops out of this test.
    queue = 1_000_000
    plain = diagnose(exporter="otlp", queue_size=queue)
    assert plain.per_call(plain.started) == plain.per_call(plain.exported) == 3
    assert plain.ended == plain.sampled == plain.exported == 3 * plain.calls
    assert plain.dropped == plain.export_failures == 0
    assert plain.export_calls >= 2  # 600 spans in batches of at most 512
    assert plain.export_latency_p50 is not None and plain.export_latency_p95 is not None
    assert plain.export_latency_p95 >= plain.export_latency_p50 > 0
    assert plain.export_cpu_s is not None and plain.export_cpu_s > 0  # encoding and HTTP, on whichever thread
    assert plain.queue_capacity == queue and plain.queue_peak is not None and 1 <= plain.queue_peak <= queue
    assert plain.bytes_sent is not None and plain.bytes_sent == plain.bytes_uncompressed
    assert plain.per_call(plain.bytes_sent) > 3 * 20
    assert plain.backend_requests == plain.export_calls and plain.backend_rejected == 0
    assert plain.extra_threads is not None and plain.extra_threads >= 1  # the batch worker, at least

    gzip = diagnose(exporter="otlp", compression="gzip", queue_size=queue)
    assert gzip.exported == 3 * gzip.calls
    assert gzip.bytes_sent is not None and plain.bytes_sent is not None
    assert gzip.per_call(gzip.bytes_sent) < 0.7 * plain.per_call(plain.bytes_sent)
    assert gzip.compression_ratio is not None and gzip.compression_ratio > 1.4
    assert plain.compression_ratio == 1.0


def test_a_queue_too_small_for_the_load_reports_real_drops() -> None:
    # 50 spans per call into a queue of 16 that a 20 ms backend drains 16 at a time.
    health = diagnose(
        spans_per_call=50,
        calls=100,
        exporter="otlp",
        queue_size=16,
        batch_size=16,
        backend_latency="20ms",
        max_dropped=0,
    )
    assert health.ended == 50 * health.calls
    assert health.dropped > 1000
    assert health.dropped == health.ended - health.exported
    assert health.dropped_by_queue == health.dropped  # pushed out of the queue, not failed exports
    assert health.queue_peak == health.queue_capacity == 16
    assert health.over_budget


def _exporter_bounds_its_retries() -> bool:
    """The OTLP/HTTP exporter gives up within its timeout from 1.35 on; before, it retried for about 63 s."""
    version = importlib.metadata.version("opentelemetry-exporter-otlp-proto-http")
    return tuple(int(part) for part in version.split(".")[:2]) >= (1, 35)


@pytest.mark.skipif(
    not _exporter_bounds_its_retries(),
    reason="opentelemetry-exporter-otlp-proto-http before 1.35 retries a failing backend for ~63 s, past any timeout",
)
def test_a_failing_backend_loses_spans_in_failed_exports_within_the_timeout() -> None:
    started = time.monotonic()
    health = diagnose(exporter="otlp", backend_error_rate=1.0, export_timeout="3s", schedule_delay="60s")
    assert time.monotonic() - started < 60  # each export gives up within about 3 s
    assert health.exported == 0
    assert health.dropped == health.ended == 3 * health.calls
    assert health.export_failures >= 1 and health.spans_failed > 0
    # While the worker waits out its retries, a fast machine may also overflow the queue.
    assert health.spans_failed + health.dropped_by_queue == health.dropped
    assert health.backend_rejected == health.backend_requests and health.backend_requests is not None
    assert health.backend_requests >= 2  # the first try and at least one retry


def test_local_exporters_report_no_bytes_and_the_simple_processor_no_queue() -> None:
    health = diagnose(exporter="memory", processor="simple")
    assert health.exported == 3 * health.calls
    assert health.bytes_sent is None and health.compression_ratio is None
    assert health.queue_peak is None and health.queue_capacity is None


def _result(make_result: Callable[..., TestResult], health: PipelineHealth) -> TestResult:
    base = make_result()
    return TestResult(**{**base.__dict__, "health": health})


LOSSY = PipelineHealth(
    calls=100,
    started=5000,
    sampled=5000,
    exported=3800,
    export_calls=240,
    by_name=(("line", 4900), ("request", 100)),
    ended=5000,
    export_failures=2,
    spans_failed=32,
    export_latency_p50=0.021,
    export_latency_p95=0.034,
    export_cpu_s=0.005,
    queue_peak=16,
    queue_capacity=16,
    bytes_sent=80_000,
    bytes_uncompressed=400_000,
    backend_requests=242,
    backend_rejected=2,
    metric_points=3,
    extra_threads=1,
    max_dropped=0,
)


def test_the_dropped_budget_fails_the_test_and_says_why(make_result: Callable[..., TestResult]) -> None:
    result = _result(make_result, LOSSY)
    assert all(m.verdict is not Verdict.FAIL for m in result.metrics)  # every time budget passed
    assert result.verdict is Verdict.FAIL
    message = result_message(result, Verdict.FAIL)
    assert "lost 1200 spans in 100 calls (queue full: 1168, failed exports: 32), budget max_dropped=0" in message
    report_only = _result(make_result, PipelineHealth(**{**LOSSY.__dict__, "max_dropped": None}))
    assert report_only.verdict is Verdict.PASS


def test_health_in_the_json(make_result: Callable[..., TestResult]) -> None:
    data = json.loads(json.dumps(_result(make_result, LOSSY).as_dict()))["pipeline"]
    assert data["spans_dropped"] == 1200
    assert data["spans_dropped_queue_full"] == 1168
    assert data["spans_dropped_failed_export"] == 32
    assert data["dropped_verdict"] == "FAIL" and data["max_dropped"] == 0
    assert data["export_latency_p95_s"] == 0.034
    assert data["export_cpu_per_call_s"] == pytest.approx(50e-6)
    assert data["bytes_sent_per_call"] == 800.0
    assert data["compression_ratio"] == 5.0
    assert (data["queue_peak"], data["queue_capacity"]) == (16, 16)
    assert data["extra_threads"] == 1
    assert data["backend_rejected"] == 2


def test_health_line_in_the_summary(make_result: Callable[..., TestResult]) -> None:
    result = _result(make_result, LOSSY)
    line = health_line(result)
    assert line == (
        "pipeline: spans/call 50 started, 50 sampled, 38 exported, 1200 dropped of 100 calls "
        "(queue full 1168, failed exports 32); 240 exports, 2 failed, p50 21.00 ms p95 34.00 ms, 50.0 µs CPU/call; "
        "backend answered 503 to 2 of 242 requests; 800 B/call sent (compressed ×5.0); queue peak 16/16; "
        "3 metric points; +1 threads; max_dropped 0: FAIL"
    )
    assert "    " + line in summary_lines([result], width=1000)  # on one line where the width allows
    quiet = PipelineHealth(calls=10, started=10, sampled=10, exported=10, export_calls=1)
    assert health_line(_result(make_result, quiet)) == (
        "pipeline: spans/call 1 started, 1 sampled, 1 exported, 0 dropped of 10 calls; 1 exports"
    )
