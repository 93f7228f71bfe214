import pytest
from opentelemetry import trace

tracer = trace.get_tracer(__name__)


def busy(n):
    acc = 0
    for i in range(n):
        acc = (acc + i * i) % 1000003
    return acc


def telemetry_on():
    return not trace.get_tracer_provider().idle


@pytest.mark.otel_overhead(mode="instructions", no_telemetry="warn")
def test_aa_busy_loop():  # A/A: no telemetry, the arms run the same code
    busy(20000)


@pytest.mark.otel_overhead(mode="instructions")
def test_one_span_around_a_5ms_loop():  # the design notes' workload
    with tracer.start_as_current_span("work"):
        busy(20000)


@pytest.mark.otel_overhead(mode="instructions", no_telemetry="warn")
def test_injected_10_percent():  # 2000 more iterations while instrumented
    busy(22000 if telemetry_on() else 20000)


@pytest.mark.otel_overhead(mode="instructions", no_telemetry="warn")
def test_injected_2_percent_small_calls():  # 10 more iterations, small calls (21 per block)
    busy(510 if telemetry_on() else 500)
