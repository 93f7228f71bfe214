"""The instrumented code the real-workload harness measures, and how each workload is opened.

Six workloads, each a callable making one request or operation, as a service would:

- ``flask``: a Flask app instrumented with ``FlaskInstrumentor().instrument_app(app)`` at import,
  driven by ``app.test_client()``; the endpoint opens one span of its own around a few ms of work,
  so a request makes two spans.
- ``fastapi``: the same endpoint in FastAPI, ``FastAPIInstrumentor.instrument_app(app)`` at import,
  driven by Starlette's ``TestClient`` (the ASGI instrumentation adds spans for send and receive).
- ``requests``: ``requests`` against a local ``http.server`` on 127.0.0.1 in a thread, instrumented
  only in the instrumented arm by ``RequestsInstrumentor`` (the plugin's ``instrument=`` setting).
- ``sqlite3``: a connection and 20 queries per call, instrumented in the instrumented arm only by
  ``SQLite3Instrumentor`` (``instrument=``); the connection is opened in the call, as the
  instrumentor wraps ``sqlite3.connect``.
- ``manual``: a handler with one manual span, 3 attributes and an event around ~500 µs of work.
- ``checkout``: an order handler doing real work (parse and validate a JSON order, price it with
  decimal tax rounding, format a receipt) around two manual spans with a few attributes, sized so
  that its overhead lies near 5% by itself: the regime where a CI gate lives.

The regression variant: ``$REAL_EXTRA_SPANS``, a JSON object of counts by workload
(``{"manual": 3}``), makes the ``flask``, ``fastapi``, ``manual`` and ``checkout`` code trace its
order lines in that many batches, each in a child span of its own, as a developer adding tracing
would: the same work, more spans per call (``batches``).

Tracers and meters come from the global API (``trace.get_tracer``, ``metrics.get_meter``), so
whatever provider a measuring process installs (the plugin's, or the switching providers of
``arms.py``) decides which arm runs. Importing this module instruments the Flask and FastAPI apps
with the global providers, which is what a service does at start-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import flask
import requests
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.flask import FlaskInstrumentor

with warnings.catch_warnings():
    # Starlette's test client asks for httpx2 in newer releases; httpx still works and is what it documents.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
    from starlette.testclient import TestClient

__all__ = [
    "EXTRA_SPANS",
    "REQUESTS",
    "SQLITE3",
    "WORKLOADS",
    "Workload",
    "batches",
    "checkout",
    "order_payload",
    "price_lines",
]

REQUESTS = "opentelemetry.instrumentation.requests:RequestsInstrumentor"
SQLITE3 = "opentelemetry.instrumentation.sqlite3:SQLite3Instrumentor"

# Sizes of the work, in order lines priced per request: about 3 ms for the web apps and 0.5 ms for
# the manual handler on a 2-core VM (the exact figure does not matter: both arms run the same).
WEB_LINES = 2400
MANUAL_LINES = 450
SQLITE_ROWS = 2000
BASKET = [f"SKU-{i:05d}" for i in range(0, SQLITE_ROWS, SQLITE_ROWS // 20)]

EXTRA_SPANS: dict[str, int] = json.loads(os.environ.get("REAL_EXTRA_SPANS") or "{}")
"""The regression variant: child spans added per call, by workload (none unless the harness asks)."""

tracer = trace.get_tracer(__name__)
Call = Callable[[], Any]
Item = TypeVar("Item")


def batches(items: Sequence[Item], workload: str | None) -> Iterator[Sequence[Item]]:
    """The items in one batch; in the regression variant, in ``EXTRA_SPANS[workload]`` batches, each
    handled inside a child span of its own (the work is the same, the spans are added)."""
    spans = EXTRA_SPANS.get(workload, 0) if workload is not None else 0
    if spans <= 0:
        yield items
        return
    for k in range(spans):
        part = items[k * len(items) // spans : (k + 1) * len(items) // spans]
        with tracer.start_as_current_span("order.batch") as span:
            span.set_attribute("batch.lines", len(part))
            yield part


def price_lines(count: int, workload: str | None = None) -> dict[str, Any]:
    """Application work: build, price and digest an order of ``count`` lines (allocation-heavy, like JSON APIs).

    ``workload`` names the caller, for the child spans of its regression variant (``batches``)."""
    rows: list[tuple[str, int, int]] = []
    for part in batches(range(count), workload):
        rows += [(f"SKU-{i:05d}", i % 7 + 1, 100 + (i * 37) % 900) for i in part]
    total = sum(qty * price for _, qty, price in rows)
    lines = [{"sku": sku, "qty": qty, "price_cents": price} for sku, qty, price in rows]
    encoded = json.dumps(lines, sort_keys=True).encode()
    return {"lines": len(lines), "total": total, "digest": hashlib.sha256(encoded).hexdigest()[:16]}


# --------------------------------------------------------------------------------------- flask

flask_app = flask.Flask("real_workloads")


@flask_app.get("/quote")
def flask_quote() -> flask.Response:
    with tracer.start_as_current_span("price") as span:
        quote = price_lines(WEB_LINES, "flask")
        span.set_attribute("order.lines", quote["lines"])
    return flask.jsonify(quote)


FlaskInstrumentor().instrument_app(flask_app)  # type: ignore[no-untyped-call]


@contextmanager
def open_flask() -> Iterator[Call]:
    client = flask_app.test_client()

    def call() -> Any:
        response = client.get("/quote")
        assert response.status_code == 200, response.status_code
        return response.get_json()

    yield call


# ------------------------------------------------------------------------------------- fastapi

fastapi_app = FastAPI()


@fastapi_app.get("/quote")
def fastapi_quote() -> dict[str, Any]:
    with tracer.start_as_current_span("price") as span:
        quote = price_lines(WEB_LINES, "fastapi")
        span.set_attribute("order.lines", quote["lines"])
    return quote


FastAPIInstrumentor.instrument_app(fastapi_app)


@contextmanager
def open_fastapi() -> Iterator[Call]:
    # As a context manager the client keeps one event loop thread for all requests.
    with TestClient(fastapi_app) as client:

        def call() -> Any:
            response = client.get("/quote")
            assert response.status_code == 200, response.status_code
            return response.json()

        yield call


# ------------------------------------------------------------------------------------ requests


class QuoteHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection for all calls, no port churn
    disable_nagle_algorithm = True  # headers and body leave at once, not 40 ms apart (delayed ACK)

    def do_GET(self) -> None:
        body = json.dumps(price_lines(4)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no line on stderr per request


@contextmanager
def open_requests() -> Iterator[Call]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), QuoteHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="quote-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/quote"
    session = requests.Session()
    try:

        def call() -> Any:
            response = session.get(url, timeout=10)
            response.raise_for_status()
            return response.json()

        yield call
    finally:
        session.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# ------------------------------------------------------------------------------------- sqlite3


def quote_basket(path: str, skus: list[str]) -> int:
    """Price a basket: a connection per request and a query per line, as small services do."""
    connection = sqlite3.connect(path)
    try:
        cursor = connection.cursor()
        total = 0
        for sku in skus:
            cursor.execute("SELECT price_cents FROM products WHERE sku = ?", (sku,))
            row = cursor.fetchone()
            if row is None:
                raise KeyError(sku)
            total += row[0]
        return total
    finally:
        connection.close()


@contextmanager
def open_sqlite3() -> Iterator[Call]:
    with tempfile.TemporaryDirectory(prefix="real-sqlite-") as directory:
        path = str(Path(directory) / "catalogue.db")
        connection = sqlite3.connect(path)
        with connection:
            connection.execute("CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT, price_cents INTEGER)")
            connection.executemany(
                "INSERT INTO products VALUES (?, ?, ?)",
                [(f"SKU-{i:05d}", f"Product {i}", 100 + i) for i in range(SQLITE_ROWS)],
            )
        connection.close()
        yield lambda: quote_basket(path, BASKET)


# -------------------------------------------------------------------------------------- manual


def handle_order(order_id: int) -> dict[str, Any]:
    """A handler instrumented by hand: one span, three attributes and an event."""
    with tracer.start_as_current_span("handle_order") as span:
        span.set_attribute("order.id", order_id)
        span.set_attribute("order.channel", "web")
        quote = price_lines(MANUAL_LINES, "manual")
        span.set_attribute("order.total_cents", quote["total"])
        span.add_event("priced", {"lines": quote["lines"]})
    return quote


@contextmanager
def open_manual() -> Iterator[Call]:
    yield lambda: handle_order(7)


# ------------------------------------------------------------------------------------ checkout

# Lines per order: about 1.5 ms of work around the two spans, so that the overhead reads about 5%
# (tuned with reference.py on a 2-core VM: 450 lines read +7%, 600 lines +4.5%; the exact figure
# does not matter, the harness measures it).
CHECKOUT_LINES = 540
SKU = re.compile(r"SKU-\d{5}")
CATALOGUE = {
    f"SKU-{i:05d}": (Decimal(100 + (i * 37) % 900) / 100, Decimal("0.2") if i % 3 else Decimal("0.055"))
    for i in range(500)
}
CENT = Decimal("0.01")


def order_payload(order_id: int, lines: int) -> bytes:
    """The request body a client sends: an order of ``lines`` lines as JSON."""
    order = {
        "id": order_id,
        "currency": "EUR",
        "customer": {"id": 4711, "email": "buyer@example.org", "country": "FR"},
        "coupon": "WINTER10",
        "lines": [{"sku": f"SKU-{(i * 7) % 500:05d}", "qty": i % 4 + 1} for i in range(lines)],
    }
    return json.dumps(order).encode()


def validated(body: bytes) -> dict[str, Any]:
    """The order parsed and checked field by field, as an API does before touching anything."""
    order = json.loads(body)
    if not isinstance(order.get("id"), int) or order.get("currency") != "EUR":
        raise ValueError("bad order header")
    if "@" not in order["customer"].get("email", ""):
        raise ValueError("bad customer")
    for line in order["lines"]:
        if not SKU.fullmatch(line["sku"]) or line["sku"] not in CATALOGUE:
            raise ValueError(f"unknown sku {line['sku']!r}")
        if not isinstance(line["qty"], int) or not 0 < line["qty"] <= 99:
            raise ValueError(f"bad quantity {line['qty']!r}")
    return order  # type: ignore[no-any-return]


def priced(order: dict[str, Any]) -> tuple[Decimal, Decimal, list[str]]:
    """Subtotal and tax in decimal money (rounded per line, as invoices are) and the receipt's lines."""
    subtotal, tax, receipt = Decimal(0), Decimal(0), []
    discount = Decimal("0.9") if order.get("coupon") == "WINTER10" else Decimal(1)
    for part in batches(order["lines"], "checkout"):
        for line in part:
            price, rate = CATALOGUE[line["sku"]]
            amount = (price * line["qty"] * discount).quantize(CENT, ROUND_HALF_EVEN)
            subtotal += amount
            tax += (amount * rate).quantize(CENT, ROUND_HALF_EVEN)
            receipt.append(f"{line['sku']:<10} {line['qty']:>3} x {price:>8} = {amount:>10} (VAT {rate * 100:.1f}%)")
    return subtotal, tax, receipt


def checkout(body: bytes) -> dict[str, Any]:
    """An order handler instrumented by hand: a span for the request, one for pricing, a few attributes."""
    with tracer.start_as_current_span("checkout") as span:
        order = validated(body)
        span.set_attribute("order.id", order["id"])
        span.set_attribute("order.lines", len(order["lines"]))
        with tracer.start_as_current_span("price") as price_span:
            subtotal, tax, receipt = priced(order)
            price_span.set_attribute("order.currency", order["currency"])
        total = subtotal + tax
        text = "\n".join(
            [*receipt, f"{'subtotal':<26} {subtotal:>10}", f"{'VAT':<26} {tax:>10}", f"{'total':<26} {total:>10}"]
        )
        span.set_attribute("order.total", str(total))
    return {"lines": len(receipt), "total": str(total), "digest": hashlib.sha256(text.encode()).hexdigest()[:16]}


@contextmanager
def open_checkout() -> Iterator[Call]:
    body = order_payload(7, CHECKOUT_LINES)
    yield lambda: checkout(body)


# ------------------------------------------------------------------------------------ registry


@dataclass(frozen=True)
class Workload:
    """One workload: its name, the instrumentors applied in the instrumented arm only, how to open it."""

    name: str
    instrument: tuple[str, ...]
    open: Callable[[], AbstractContextManager[Call]]


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("flask", (), open_flask),
        Workload("fastapi", (), open_fastapi),
        Workload("requests", (REQUESTS,), open_requests),
        Workload("sqlite3", (SQLITE3,), open_sqlite3),
        Workload("manual", (), open_manual),
        Workload("checkout", (), open_checkout),
    )
}
