"""Examples: overhead budgets on the order service's tests.

``pytest examples`` runs these as ordinary tests. ``pytest examples --otel-overhead`` also
measures the ones that carry an ``otel_overhead`` marker or use the ``otel_overhead`` fixture:
each measured workload runs in an uninstrumented and an instrumented arm, and a budget exceeded
fails the test.
"""

from __future__ import annotations

import json

import pytest
from orders import OrderError, import_orders, open_store, place_order, sample_batch, sample_order

FEED = sample_batch(200)  # 200 orders, 8 of them invalid
PAGE = sample_batch(50)  # 50 orders, 2 of them invalid
SMALL_PAGE = sample_batch(10)  # 10 valid orders
ORDER = json.dumps(sample_order(7))


@pytest.fixture
def store():
    conn = open_store()
    yield conn
    conn.close()


# Plain tests: no marker, no fixture, never measured.


def test_rejects_unknown_coupon(store):
    order = sample_order(1) | {"coupon": "FREEBIE"}
    with pytest.raises(OrderError, match="unknown coupon"):
        place_order(store, json.dumps(order))


def test_import_reports_invalid_orders(store):
    summary = import_orders(store, FEED)
    assert summary["accepted"] == 192
    assert len(summary["rejected"]) == 8


# Measured tests.


@pytest.mark.otel_overhead(budget="5%", sample_rate=0.1, batch_size=512)
def test_import_feed(store):
    # The marker measures the whole test body, with the sampling and batching production uses:
    # 10% of traces sampled, spans exported in batches of 512. One span around the import of 200
    # orders costs well under 1%. The body runs many times, so it must be repeatable: importing
    # the same feed again replaces the same rows.
    summary = import_orders(store, FEED)
    assert summary["accepted"] == 192


@pytest.mark.otel_overhead(budget="5%", sample_rate=0.1, batch_size=512)
@pytest.mark.xfail(reason="expected: span per item in a hot loop costs far more than 5%", strict=False)
def test_span_per_line_exceeds_budget(otel_overhead, store):
    # The same import with a span per order line: even with 9 traces in 10 dropped, the
    # telemetry costs a large part of the work. Expected to fail under --otel-overhead. Not
    # strict: without --otel-overhead nothing is measured and the test passes as an ordinary one.
    summary = otel_overhead(import_orders, store, PAGE, trace_lines=True)
    assert summary["accepted"] == 48


@pytest.mark.otel_overhead(cpu="500us", heap="2MiB", max_time="10s")
def test_place_order(otel_overhead, store):
    # Only the call passed to the fixture is measured; the assertions around it are not.
    # Absolute budgets suit a request handler: telemetry may add half a millisecond of CPU per
    # request and 2 MiB to the peak heap.
    receipt = json.loads(otel_overhead(place_order, store, ORDER))
    assert receipt["order"] == "ord-000007"
    assert receipt["total_cents"] == receipt["subtotal_cents"] - receipt["discount_cents"] + receipt["vat_cents"]


@pytest.mark.otel_overhead(budget="25%", latency_p95="25%", sample_rate=0.1)
def test_import_small_page(otel_overhead, store):
    # Around a millisecond of work, one span costs several percent even with 9 traces in 10
    # dropped: about 5% on a quiet 2-core machine, over 10% on the same machine under heavy load.
    # This interactive path has a budget to match. Latency percentiles are wall-clock: they
    # include time the machine gives to other processes.
    summary = otel_overhead(import_orders, store, SMALL_PAGE)
    assert summary["accepted"] == 10
