"""A small order-intake service, instrumented with OpenTelemetry, used by the examples.

The service parses orders sent as JSON, validates them, prices them against a product catalogue
in SQLite and stores them. Its tracer is obtained at import time, as in most real code, so the
service never knows whether telemetry is on, off, or being measured.
"""

from .service import OrderError, import_orders, parse_order, place_order
from .store import open_store, sample_batch, sample_order

__all__ = ["OrderError", "import_orders", "open_store", "parse_order", "place_order", "sample_batch", "sample_order"]
