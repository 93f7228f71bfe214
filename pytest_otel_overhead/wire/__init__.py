"""Records in and out of JSON: between processes (``transport``) and as documents that files keep (``document``)."""

from pytest_otel_overhead.wire.transport import from_json, to_json

__all__ = ["from_json", "to_json"]
