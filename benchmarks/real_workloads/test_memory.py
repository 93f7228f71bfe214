"""Memory-heavy telemetry, for calibrating instructions mode's estimated cycles against time.

Spans allocate, and their attributes and the batch queue touch memory the application does not:
these workloads make that cost large, where ``test_real.py``'s make it small.

- ``attributes``: a handler whose one span carries 12 attributes, around ~0.5 ms of work.
- ``many_spans``: 40 small spans per call (one attribute each) around a little work.
- ``batch_queue``: 100 spans per call into a batch processor whose queue and export batch hold
  64 k spans, so every span of a block waits in the queue until the block's flush.
"""

from __future__ import annotations

from typing import Any

import pytest
from apps import MANUAL_LINES, price_lines
from opentelemetry import trace

tracer = trace.get_tracer(__name__)

SMALL_LINES = 20
LARGE_QUEUE = 65536


def handle_with_attributes(order_id: int) -> dict[str, Any]:
    with tracer.start_as_current_span("handle_order") as span:
        quote = price_lines(MANUAL_LINES)
        span.set_attributes(
            {
                "order.id": order_id,
                "order.channel": "web",
                "order.lines": quote["lines"],
                "order.total_cents": quote["total"],
                "order.digest": quote["digest"],
                "order.currency": "EUR",
                "customer.id": 4711,
                "customer.tier": "gold",
                "http.route": "/orders/{id}",
                "http.method": "POST",
                "net.peer.name": "checkout.internal",
                "retry": False,
            }
        )
    return quote


def handle_with_spans(spans: int) -> int:
    total = 0
    with tracer.start_as_current_span("handle"):
        for step in range(spans - 1):
            with tracer.start_as_current_span("step") as span:
                span.set_attribute("step", step)
                total += price_lines(SMALL_LINES // 4)["total"] if step % 8 == 0 else step
    return total


@pytest.mark.otel_overhead
def test_attributes(otel_overhead: Any) -> None:
    assert otel_overhead(lambda: handle_with_attributes(7))["lines"] > 0


@pytest.mark.otel_overhead
def test_many_spans(otel_overhead: Any) -> None:
    assert otel_overhead(lambda: handle_with_spans(40)) > 0


@pytest.mark.otel_overhead(queue_size=LARGE_QUEUE, batch_size=LARGE_QUEUE)
def test_batch_queue(otel_overhead: Any) -> None:
    assert otel_overhead(lambda: handle_with_spans(100)) > 0
