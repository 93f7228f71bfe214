"""Meters and instruments that follow the arm, as tracers do; metrics exported over OTLP at the reader's pace.

In process, with private routers only: the global MeterProvider of this process is never set here
(the global install runs in the plugin's subprocess tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from pytest_otel_overhead.otel.metrics_routing import MeterRouter
from pytest_otel_overhead.otel.pipeline import build_pipeline
from pytest_otel_overhead.otel.receiver import stop_shared_receiver
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.settings.records import PipelineSettings


@pytest.fixture(autouse=True)
def _global_meter_provider_untouched() -> Iterator[None]:
    before = metrics.get_meter_provider()
    yield
    assert metrics.get_meter_provider() is before


@pytest.fixture(scope="module", autouse=True)
def _receiver_stopped() -> Iterator[None]:
    yield
    stop_shared_receiver()


class Arm:
    """An SDK MeterProvider whose points can be read back."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader], shutdown_on_exit=False)

    def points(self) -> dict[str, list[float]]:
        data = self.reader.get_metrics_data()
        found: dict[str, list[float]] = {}
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    values = found.setdefault(metric.name, [])
                    for point in metric.data.data_points:
                        values.append(getattr(point, "value", None) or getattr(point, "sum", 0.0))
        return found


@pytest.fixture
def arm() -> Iterator[Arm]:
    made = Arm()
    yield made
    made.provider.shutdown()


def test_instruments_made_before_any_arm_record_only_in_the_instrumented_one(arm: Arm) -> None:
    router = MeterRouter()
    meter = router.get_meter("shop", "1.0")
    orders = meter.create_counter("orders")
    latency = meter.create_histogram("latency", unit="s", explicit_bucket_boundaries_advisory=[0.1, 1.0])
    stock = meter.create_up_down_counter("stock")
    temperature = meter.create_gauge("temperature")

    orders.add(100)  # idle: no-op
    router.switch(arm.provider)
    orders.add(3, {"region": "eu"})
    latency.record(0.5)
    stock.add(-2)
    temperature.set(21.5)
    router.switch(None)
    orders.add(1000)  # baseline: no-op
    router.switch(arm.provider)
    orders.add(4, {"region": "eu"})
    router.switch(None)

    points = arm.points()
    assert points["orders"] == [7]
    assert points["latency"] == [0.5]
    assert points["stock"] == [-2]
    assert points["temperature"] == [21.5]


def test_switching_back_reuses_the_instruments_made_in_a_provider(arm: Arm, caplog: pytest.LogCaptureFixture) -> None:
    router = MeterRouter()
    counter = router.get_meter("shop").create_counter("orders")
    for _ in range(5):
        router.switch(arm.provider)
        counter.add(1)
        router.switch(None)
    assert arm.points()["orders"] == [5]
    assert "created already" not in caplog.text


def test_observable_callbacks_run_only_when_the_instrumented_arm_collects(arm: Arm) -> None:
    calls: list[int] = []

    def queue_depth(options: CallbackOptions) -> Iterable[Observation]:
        calls.append(1)
        return [Observation(42)]

    router = MeterRouter()
    router.get_meter("shop").create_observable_gauge("queue.depth", [queue_depth])
    idle_reader_arm = Arm()
    idle_reader_arm.reader.collect()
    assert calls == []  # never registered with a provider the router did not switch to
    router.switch(arm.provider)
    router.switch(None)
    assert arm.points()["queue.depth"] == [42]
    assert calls == [1]
    # Observables made while an arm runs go into that arm at once.
    router.switch(arm.provider)
    router.get_meter("shop").create_observable_counter("handled", [lambda options: [Observation(9)]])
    router.switch(None)
    assert arm.points()["handled"] == [9]
    idle_reader_arm.provider.shutdown()


def test_a_new_provider_gets_every_observable_registered_so_far() -> None:
    router = MeterRouter()
    router.get_meter("shop").create_observable_up_down_counter("open", [lambda options: [Observation(3)]])
    for _ in range(2):
        fresh = Arm()
        router.switch(fresh.provider)
        router.switch(None)
        assert fresh.points()["open"] == [3]
        fresh.provider.shutdown()


def test_the_arm_router_moves_meters_with_tracers() -> None:
    router = ArmRouter()
    pipeline = build_pipeline(PipelineSettings())
    try:
        assert router.meters.idle
        router.switch(pipeline.provider)
        assert router.meters.active is pipeline.meter_provider
        router.switch(None)
        assert router.meters.idle
    finally:
        pipeline.shutdown()


def _metric_requests(pipeline_tag: str | None) -> int:
    from pytest_otel_overhead.otel.receiver import shared_receiver

    assert pipeline_tag is not None
    stats = shared_receiver().stats(pipeline_tag)
    return stats["metrics"].requests if "metrics" in stats else 0


def test_metrics_go_over_otlp_once_per_interval_of_instrumented_time() -> None:
    router = ArmRouter()
    counter = router.meters.get_meter("shop").create_counter("orders")
    pipeline = build_pipeline(PipelineSettings(exporter="otlp", metric_interval_ms=1000))
    try:
        for _ in range(2):
            router.switch(pipeline.provider)
            counter.add(1)
            router.switch(None)
            pipeline.flush(0.4)  # 0.4 s, then 0.8 s of instrumented time: not yet an interval
        assert _metric_requests(pipeline.tag) == 0
        pipeline.flush(0.4)
        assert _metric_requests(pipeline.tag) == 1
        pipeline.flush()  # a full flush exports metrics whatever the pace
        assert _metric_requests(pipeline.tag) == 2
        stats = pipeline.receiver_stats("metrics")
        assert stats is not None and stats.metric_points >= 2
    finally:
        pipeline.shutdown()
