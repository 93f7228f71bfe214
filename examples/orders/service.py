"""Order intake: parse and validate, price against the catalogue, store, answer with a receipt."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

# Obtained once, at import time, like most instrumented code does: whatever provider is set later
# (or none) is the one this tracer uses.
tracer = trace.get_tracer(__name__)

_ORDER_ID = re.compile(r"^ord-\d{6}$")
_EMAIL = re.compile(r"^[a-z0-9._+-]+@[a-z0-9-]+(\.[a-z0-9-]+)+$")
_SKU = re.compile(r"^SKU-\d{5}$")
COUPONS = {"WELCOME10": 10, "LOYAL5": 5}
VAT_PERCENT = {"DE": 19, "FR": 20, "NL": 21, "US": 0}
MAX_LINES = 50


class OrderError(ValueError):
    """The order cannot be accepted; the message says why."""


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int


@dataclass(frozen=True)
class Order:
    id: str
    email: str
    country: str
    lines: tuple[Line, ...]
    coupon: str | None
    note: str


def parse_order(data: dict[str, Any]) -> Order:
    """Validate one decoded order; raise OrderError naming the first problem found."""
    order_id = data.get("id")
    if not isinstance(order_id, str) or not _ORDER_ID.match(order_id):
        raise OrderError(f"bad order id {order_id!r}")
    customer = data.get("customer") or {}
    email = str(customer.get("email", "")).strip().lower()
    if not _EMAIL.match(email):
        raise OrderError(f"{order_id}: bad e-mail address {email!r}")
    country = customer.get("country")
    if country not in VAT_PERCENT:
        raise OrderError(f"{order_id}: we do not ship to {country!r}")
    raw_lines = data.get("lines")
    if not isinstance(raw_lines, list) or not 1 <= len(raw_lines) <= MAX_LINES:
        raise OrderError(f"{order_id}: an order has 1 to {MAX_LINES} lines")
    lines = []
    seen = set()
    for raw in raw_lines:
        sku, quantity = raw.get("sku"), raw.get("quantity")
        if not isinstance(sku, str) or not _SKU.match(sku):
            raise OrderError(f"{order_id}: bad SKU {sku!r}")
        if not isinstance(quantity, int) or not 1 <= quantity <= 99:
            raise OrderError(f"{order_id}: bad quantity {quantity!r} for {sku}")
        if sku in seen:
            raise OrderError(f"{order_id}: {sku} appears twice")
        seen.add(sku)
        lines.append(Line(sku, quantity))
    coupon = data.get("coupon")
    if coupon is not None and coupon not in COUPONS:
        raise OrderError(f"{order_id}: unknown coupon {coupon!r}")
    return Order(order_id, email, country, tuple(lines), coupon, str(data.get("note", ""))[:200])


def _price_line(line: Line, catalogue: dict[str, tuple[str, int, int]]) -> dict[str, Any]:
    if line.sku not in catalogue:
        raise OrderError(f"unknown SKU {line.sku}")
    name, price, stock = catalogue[line.sku]
    if line.quantity > stock:
        raise OrderError(f"only {stock} of {line.sku} in stock")
    return {"sku": line.sku, "name": name, "quantity": line.quantity, "cents": price * line.quantity}


def _price(conn: sqlite3.Connection, order: Order, trace_lines: bool) -> dict[str, Any]:
    marks = ",".join("?" * len(order.lines))
    rows = conn.execute(
        f"SELECT sku, name, price_cents, stock FROM products WHERE sku IN ({marks})",
        [line.sku for line in order.lines],
    ).fetchall()
    catalogue = {sku: (name, price, stock) for sku, name, price, stock in rows}
    priced = []
    for line in order.lines:
        if trace_lines:
            # Debug-level detail: a span per line item, inside the hottest loop of the service.
            with tracer.start_as_current_span("orders.price_line") as span:
                span.set_attribute("order.line.sku", line.sku)
                span.set_attribute("order.line.quantity", line.quantity)
                priced.append(_price_line(line, catalogue))
        else:
            priced.append(_price_line(line, catalogue))
    subtotal = sum(p["cents"] for p in priced)
    discount = subtotal * COUPONS.get(order.coupon or "", 0) // 100
    vat = (subtotal - discount) * VAT_PERCENT[order.country] // 100
    return {
        "order": order.id,
        "customer": order.email,
        "lines": priced,
        "subtotal_cents": subtotal,
        "discount_cents": discount,
        "vat_cents": vat,
        "total_cents": subtotal - discount + vat,
    }


def _store(conn: sqlite3.Connection, order: Order, receipt: dict[str, Any]) -> None:
    # INSERT OR REPLACE: storing the same order again replaces it, so repeated calls leave the
    # database the size it was (which also keeps repeated measurements comparable).
    conn.execute(
        "INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?)",
        (order.id, order.email, receipt["total_cents"], json.dumps(receipt, separators=(",", ":"))),
    )
    conn.executemany(
        "INSERT OR REPLACE INTO order_lines VALUES (?, ?, ?, ?)",
        [(order.id, p["sku"], p["quantity"], p["cents"]) for p in receipt["lines"]],
    )


def place_order(conn: sqlite3.Connection, body: str) -> str:
    """Handle one ``POST /orders`` request body; return the receipt as JSON."""
    with tracer.start_as_current_span("orders.place") as span:
        try:
            order = parse_order(json.loads(body))
        except (OrderError, ValueError, AttributeError) as error:
            span.set_status(trace.StatusCode.ERROR, str(error))
            raise OrderError(str(error)) from error
        span.set_attribute("order.id", order.id)
        span.set_attribute("order.lines", len(order.lines))
        with tracer.start_as_current_span("orders.price") as price_span:
            receipt = _price(conn, order, trace_lines=False)
            price_span.set_attribute("order.total_cents", receipt["total_cents"])
        with tracer.start_as_current_span("orders.store"):
            _store(conn, order, receipt)
            conn.commit()
        return json.dumps(receipt)


def import_orders(conn: sqlite3.Connection, batch: str, *, trace_lines: bool = False) -> dict[str, Any]:
    """Import a JSON batch of orders in one transaction; invalid orders are reported, not stored.

    One span covers the whole batch and carries its counts as attributes. ``trace_lines`` adds a
    span per order line: detail that helps while debugging and costs dearly in a hot loop.
    """
    with tracer.start_as_current_span("orders.import") as span:
        payload = json.loads(batch)
        span.set_attribute("orders.source", payload.get("source", "unknown"))
        accepted = 0
        total = 0
        rejected: list[str] = []
        with conn:  # one transaction for the batch
            for data in payload["orders"]:
                try:
                    order = parse_order(data)
                    receipt = _price(conn, order, trace_lines)
                except OrderError as error:
                    rejected.append(str(error))
                    continue
                _store(conn, order, receipt)
                accepted += 1
                total += receipt["total_cents"]
        span.set_attribute("orders.accepted", accepted)
        span.set_attribute("orders.rejected", len(rejected))
        return {"accepted": accepted, "rejected": rejected, "total_cents": total}
