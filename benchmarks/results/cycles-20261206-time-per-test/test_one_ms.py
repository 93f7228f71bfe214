import json

import pytest
from opentelemetry import trace

tracer = trace.get_tracer(__name__)


def work(n):
    rows = [{"sku": f"SKU-{i:05d}", "qty": i % 7 + 1} for i in range(n)]
    return len(json.dumps(rows))


@pytest.mark.otel_overhead(mode="instructions", budget="5%")
def test_one_ms():
    with tracer.start_as_current_span("work") as span:
        span.set_attribute("n", 1)
        work(700)
