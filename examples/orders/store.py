"""The catalogue and order tables, in an in-memory SQLite database, plus sample payloads."""

from __future__ import annotations

import json
import random
import sqlite3

SCHEMA = """
CREATE TABLE products (
    sku TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    stock INTEGER NOT NULL
);
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    customer TEXT NOT NULL,
    total_cents INTEGER NOT NULL,
    receipt TEXT NOT NULL
);
CREATE TABLE order_lines (
    order_id TEXT NOT NULL REFERENCES orders(id),
    sku TEXT NOT NULL REFERENCES products(sku),
    quantity INTEGER NOT NULL,
    line_cents INTEGER NOT NULL,
    PRIMARY KEY (order_id, sku)
);
"""

PRODUCTS = 2000


def sku(number: int) -> str:
    return f"SKU-{number:05d}"


def open_store(products: int = PRODUCTS) -> sqlite3.Connection:
    """A fresh in-memory database with a seeded catalogue."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    conn.executemany(
        "INSERT INTO products VALUES (?, ?, ?, ?)",
        ((sku(i), f"Product {i}", 199 + (i * 7919) % 9800, 10_000) for i in range(products)),
    )
    conn.commit()
    return conn


def sample_order(number: int, lines: int = 6, seed: int = 0) -> dict[str, object]:
    """A valid order; the same arguments always give the same order."""
    rng = random.Random(seed * 1_000_003 + number)
    skus = rng.sample(range(PRODUCTS), lines)
    return {
        "id": f"ord-{number:06d}",
        "customer": {"email": f"customer{number % 97}@example.com", "country": rng.choice(["DE", "FR", "NL", "US"])},
        "lines": [{"sku": sku(s), "quantity": rng.randint(1, 5)} for s in skus],
        "coupon": "WELCOME10" if number % 5 == 0 else None,
        "note": "leave at the door" if number % 3 == 0 else "",
    }


def sample_batch(orders: int, lines: int = 6, invalid_every: int = 25) -> str:
    """A JSON batch as an upstream system would send it, with an invalid order now and then."""
    items = []
    for n in range(orders):
        order = sample_order(n, lines)
        if invalid_every and n % invalid_every == invalid_every - 1:
            order["lines"] = [{"sku": "SKU-??", "quantity": 0}]
        items.append(order)
    return json.dumps({"source": "partner-feed", "orders": items})
