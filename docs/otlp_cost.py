"""Figures behind docs/pipelines.md: what OTLP export, a slow or failing collector, and the pacing of
exports in timed blocks cost. Uses the embedded receiver; run in a process of its own:

    bytes      bytes per span on the wire and uncompressed, for none / gzip / deflate
    cpu        CPU per span created and exported; CPU of one request; of one metric export
    backends   the engine on one workload with exporter none, otlp, a 50 ms and a 10%-failing backend
    pacing     production pacing vs flushing every block, against long alternating runs

Run: python docs/otlp_cost.py [bytes cpu backends pacing]   (default: all)
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from opentelemetry import trace

from pytest_otel_overhead.engine import diagnostic, runner
from pytest_otel_overhead.otel import pipeline as pipeline_module
from pytest_otel_overhead.otel.pipeline import Pipeline, build_pipeline
from pytest_otel_overhead.otel.receiver import stop_shared_receiver
from pytest_otel_overhead.otel.routing import ArmRouter, install_router
from pytest_otel_overhead.reports.terminal import health_line
from pytest_otel_overhead.settings.layers import Layer
from pytest_otel_overhead.settings.merge import resolve
from pytest_otel_overhead.settings.records import MeasureSettings, PipelineSettings

ENGINE_BUILDERS = (runner, diagnostic)
"""The engine's modules that build pipelines: the timed arms' (runner) and the diagnostic round's."""

ATTRIBUTES: dict[str, str | int] = {
    "http.request.method": "POST",
    "url.path": "/api/v1/orders",
    "http.response.status_code": 201,
}


def make_spans(pipeline: Pipeline, count: int) -> None:
    tracer = pipeline.provider.get_tracer("shop")
    for i in range(count):
        with tracer.start_as_current_span("POST /api/v1/orders", attributes=ATTRIBUTES) as span:
            span.set_attribute("order.id", f"ord-{i:06d}")


def bytes_per_span() -> None:
    print("bytes per span (2048 spans, 4 attributes, batches of 512)")
    for compression in ("none", "gzip", "deflate"):
        pipeline = build_pipeline(PipelineSettings(exporter="otlp", compression=compression, schedule_delay_ms=6e5))
        make_spans(pipeline, 2048)
        pipeline.flush()
        stats = pipeline.receiver_stats()
        assert stats is not None
        print(
            f"  {compression:8s} {stats.bytes_wire / stats.spans:6.1f} B/span on the wire, "
            f"{stats.bytes_raw / stats.spans:6.1f} uncompressed, ratio {stats.bytes_raw / stats.bytes_wire:.2f}"
        )
        pipeline.shutdown()


def cpu_costs() -> None:
    print("CPU per span, created and exported in full batches (median of 5 x 2048 spans)")
    for exporter, compression in (("none", "none"), ("otlp", "none"), ("otlp", "gzip")):
        pipeline = build_pipeline(PipelineSettings(exporter=exporter, compression=compression, schedule_delay_ms=6e5))
        runs = []
        for _ in range(5):
            started = time.process_time()
            make_spans(pipeline, 2048)
            pipeline.flush()
            runs.append((time.process_time() - started) / 2048)
        print(f"  {exporter}/{compression:5s} {statistics.median(runs) * 1e6:6.1f} µs/span")
        pipeline.shutdown()
    print("CPU of a span and a request of its own (median of 5 x 40)")
    for exporter in ("none", "otlp"):
        pipeline = build_pipeline(PipelineSettings(exporter=exporter, schedule_delay_ms=6e5))
        runs = []
        for _ in range(5):
            started = time.process_time()
            for _ in range(40):
                make_spans(pipeline, 1)
                pipeline.flush()
            runs.append((time.process_time() - started) / 40)
        print(f"  {exporter:5s} {statistics.median(runs) * 1e3:6.3f} ms")
        pipeline.shutdown()
    router = ArmRouter()
    meter = router.meters.get_meter("shop")
    counter, histogram = meter.create_counter("orders"), meter.create_histogram("latency", unit="s")
    gauge = meter.create_up_down_counter("open")
    pipeline = build_pipeline(PipelineSettings(exporter="otlp"))
    router.switch(pipeline.provider)
    for i in range(10):
        counter.add(1, {"k": i})
        histogram.record(0.01, {"k": i})
        gauge.add(1, {"k": i})
    router.switch(None)
    assert pipeline.meter_provider is not None
    runs = []
    for _ in range(5):
        started = time.process_time()
        for _ in range(20):
            pipeline.meter_provider.force_flush()
        runs.append((time.process_time() - started) / 20)
    print(f"CPU of one metric collection and OTLP export (30 points): {statistics.median(runs) * 1e3:.3f} ms")
    pipeline.shutdown()


def settings_of(**values: object) -> MeasureSettings:
    return resolve([Layer.parse(values, lambda key: "docs/otlp_cost.py")])


def ten_spans(router: trace.TracerProvider) -> Callable[[], None]:
    tracer = router.get_tracer("shop")

    def handle() -> None:
        with tracer.start_as_current_span("request"):
            for i in range(9):
                with tracer.start_as_current_span("step", attributes={"i": i}):
                    sum(range(2000))

    return handle


def one_span(router: trace.TracerProvider) -> Callable[[], None]:
    tracer = router.get_tracer("shop")

    def handle() -> None:
        with tracer.start_as_current_span("request"):
            sum(range(100_000))

    return handle


def backends(router: ArmRouter) -> None:
    work = ten_spans(router)
    for label, extra in (
        ("exporter none", {"exporter": "none"}),
        ("otlp", {}),
        ("otlp, backend 50ms", {"backend_latency": "50ms"}),
        ("otlp, 10% answered 503", {"backend_error_rate": 0.1}),
    ):
        settings = settings_of(**{"exporter": "otlp", "max_time": "20s", "budget": "1000%", **extra})
        result = runner.measure(work, settings, router, nodeid=label)
        cpu, wall = result.metric("cpu"), result.metric("wall")
        assert cpu is not None and wall is not None
        print(
            f"{label}: CPU {cpu.overhead * 100:+.1f}% (CI {cpu.ci_low * 100:+.1f}..{cpu.ci_high * 100:+.1f}), "
            f"wall {wall.overhead * 100:+.1f}%, {result.pairs} pairs"
        )
        print("   ", health_line(result))


def long_run_overhead(work: Callable[[], None], settings: MeasureSettings, router: ArmRouter) -> float:
    """CPU per call in long alternating runs, each export amortized over many calls."""
    pipeline = build_pipeline(settings.pipeline)
    per_call: dict[bool, list[float]] = {False: [], True: []}
    try:
        for _ in range(4):
            for instrumented in (False, True):
                router.switch(pipeline.provider if instrumented else None)
                started, wall, calls = time.process_time(), time.perf_counter(), 0
                while time.perf_counter() - wall < 1.5:
                    work()
                    calls += 1
                if instrumented:
                    pipeline.flush()
                per_call[instrumented].append((time.process_time() - started) / calls)
                router.switch(None)
    finally:
        pipeline.shutdown()
    return statistics.median(per_call[True]) / statistics.median(per_call[False]) - 1


def pacing(router: ArmRouter) -> None:
    def flushed_every_block(settings: PipelineSettings, *, observe: bool = False) -> Pipeline:
        built = build_pipeline(settings, observe=observe)
        built.production_schedule = False
        return built

    settings = settings_of(exporter="otlp", max_time="20s", budget="1000%")
    for name, work in (("10 spans per call", ten_spans(router)), ("1 span per 2 ms call", one_span(router))):
        print(f"{name}: long-run mean {long_run_overhead(work, settings, router) * 100:+.1f}%")
        for label, builder in (("production pace", build_pipeline), ("flush every block", flushed_every_block)):
            for module in ENGINE_BUILDERS:
                vars(module)["build_pipeline"] = builder
            try:
                result = runner.measure(work, settings, router, nodeid=name)
            finally:
                for module in ENGINE_BUILDERS:
                    vars(module)["build_pipeline"] = pipeline_module.build_pipeline
            cpu = result.metric("cpu")
            assert cpu is not None
            print(
                f"   {label}: CPU {cpu.overhead * 100:+.1f}% (CI {cpu.ci_low * 100:+.1f}..{cpu.ci_high * 100:+.1f}), "
                f"{result.calls_per_block} calls/block; {health_line(result)}"
            )


def main(sections: list[str]) -> None:
    chosen = sections or ["bytes", "cpu", "backends", "pacing"]
    try:
        if "bytes" in chosen:
            bytes_per_span()
        if "cpu" in chosen:
            cpu_costs()
        if "backends" in chosen or "pacing" in chosen:
            router = install_router()
            if "backends" in chosen:
                backends(router)
            if "pacing" in chosen:
                pacing(router)
    finally:
        stop_shared_receiver()


if __name__ == "__main__":
    main(sys.argv[1:])
