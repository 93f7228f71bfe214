"""Settings of the export side of the pipeline: exporter, endpoint, compression, backend behaviour,
metrics, auto-instrumentation and the dropped-spans budget.

Parsers follow :mod:`units`: each takes the raw value and its source and raises a one-line
:class:`SettingsError` naming that source. :func:`export_fields` checks the values that must agree
and gives the matching :class:`PipelineSettings` fields.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from pytest_otel_overhead.settings.defaults import COMPRESSIONS
from pytest_otel_overhead.settings.origin import Source, SourceKind
from pytest_otel_overhead.settings.records import PipelineSettings
from pytest_otel_overhead.units import SettingsError, parse_count, parse_duration_ms, parse_fraction

__all__ = [
    "COMPRESSIONS",
    "EXPORTER_NAMES",
    "OTLP_EXTRA_HINT",
    "check_exporter",
    "check_instrumentors",
    "check_object_spec",
    "export_fields",
    "load_object",
    "parse_backend_error_rate",
    "parse_backend_latency",
    "parse_compression",
    "parse_endpoint",
    "parse_exporter",
    "parse_instrumentors",
    "parse_max_dropped",
    "parse_metric_interval",
    "require_otlp",
]

EXPORTER_NAMES = ("none", "memory", "otlp")
EXPORTER_ALIASES = {"otlp-http": "otlp", "otlp_http": "otlp", "otlp/http": "otlp"}
OTLP_EXTRA_HINT = "pip install 'pytest-otel-overhead[otlp]'"
_OBJECT_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_ZERO = re.compile(r"^\s*0*(?:\.0*)?\s*(?:ns|us|µs|ms|s|min|m)?\s*$")


def check_object_spec(spec: str, source: str, what: str) -> None:
    """``module:attribute`` written as such, without importing anything."""
    if not _OBJECT_SPEC.match(spec):
        raise SettingsError(f"{source}: {what} {spec!r} is not written as module:name")


def load_object(spec: str, source: str, what: str) -> Any:
    """Import ``module:attribute`` (the attribute may be dotted); errors name the source."""
    check_object_spec(spec, source, what)
    module_name, attribute = spec.split(":", 1)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise SettingsError(f"{source}: cannot import {module_name!r} for {what} {spec!r}: {error}") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise SettingsError(f"{source}: {module_name!r} has no {attribute!r} ({what} {spec!r})") from None
    return target


def parse_exporter(value: object, source: str) -> str:
    """``none``, ``memory``, ``otlp`` (``otlp-http``), or a factory ``module:function``."""
    return _exporter(value, source, load=True)


def check_exporter(value: object, source: str) -> str:
    """:func:`parse_exporter` short of importing a factory: the check of a session that does not measure."""
    return _exporter(value, source, load=False)


def _exporter(value: object, source: str, *, load: bool) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"{source}: {value!r} is not an exporter; use none, memory, otlp or module:factory")
    text = value.strip()
    name = EXPORTER_ALIASES.get(text.lower(), text.lower())
    if name in EXPORTER_NAMES:
        return name
    if name in ("otlp-grpc", "otlp_grpc", "grpc"):
        raise SettingsError(
            f"{source}: exporter {value!r} is not supported; use 'otlp' (OTLP/HTTP, the same protobuf "
            "payloads), or the gRPC exporter as a factory to your own collector: "
            "exporter='opentelemetry.exporter.otlp.proto.grpc.trace_exporter:OTLPSpanExporter'"
        )
    if ":" in text and not load:
        check_object_spec(text, source, "exporter factory")
        return text
    if ":" in text:
        factory = load_object(text, source, "exporter factory")
        if not callable(factory):
            raise SettingsError(f"{source}: exporter factory {text!r} is not callable")
        return text
    raise SettingsError(f"{source}: {value!r} is not an exporter; use none, memory, otlp or module:factory")


def parse_endpoint(value: object, source: str) -> str:
    """An OTLP/HTTP URL: a base (``http://host:4318``) or the traces URL (``…/v1/traces``)."""
    text = value.strip() if isinstance(value, str) else ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(
            f"{source}: {value!r} is not an OTLP/HTTP endpoint; use a URL such as http://localhost:4318"
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise SettingsError(f"{source}: {value!r} has a port that is not a number") from None
    return text.rstrip("/")


def parse_compression(value: object, source: str) -> str:
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in COMPRESSIONS:
        raise SettingsError(f"{source}: {value!r} is not a compression; use none, gzip or deflate")
    return text


def parse_backend_latency(value: object, source: str) -> float:
    """A delay in milliseconds, zero allowed: ``"50ms"``, ``0.05s``; bare numbers are ms."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
        return 0.0
    if isinstance(value, str) and _ZERO.match(value) and any(ch.isdigit() for ch in value):
        return 0.0
    return parse_duration_ms(value, source)


def parse_backend_error_rate(value: object, source: str) -> float:
    return parse_fraction(value, source, what="a share of requests")


def parse_metric_interval(value: object, source: str) -> float:
    return parse_duration_ms(value, source)


def parse_max_dropped(value: object, source: str) -> int:
    return parse_count(value, source, minimum=0)


def parse_instrumentors(value: object, source: str) -> tuple[str, ...]:
    """``module:Instrumentor`` names, as a list or comma-separated; each is imported and checked."""
    items = _instrumentor_names(value, source)
    try:
        base: type = importlib.import_module("opentelemetry.instrumentation.instrumentor").BaseInstrumentor
    except (ImportError, AttributeError):
        raise SettingsError(
            f"{source}: instrumenting libraries needs opentelemetry-instrumentation and the instrumentation "
            "packages named; install them, e.g. pip install opentelemetry-instrumentation-sqlite3"
        ) from None
    for item in items:
        target = load_object(item, source, "instrumentor")
        if not (isinstance(target, type) and issubclass(target, base)):
            raise SettingsError(f"{source}: {item!r} is not an OpenTelemetry instrumentor (a BaseInstrumentor class)")
    return tuple(dict.fromkeys(items))


def check_instrumentors(value: object, source: str) -> tuple[str, ...]:
    """:func:`parse_instrumentors` short of importing them: the check of a session that does not measure."""
    items = _instrumentor_names(value, source)
    for item in items:
        check_object_spec(item, source, "instrumentor")
    return tuple(dict.fromkeys(items))


def _instrumentor_names(value: object, source: str) -> list[str]:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value]
    raise SettingsError(
        f"{source}: {value!r} is not a list of instrumentors; "
        "use e.g. ['opentelemetry.instrumentation.sqlite3:SQLite3Instrumentor']"
    )


def require_otlp(source: str) -> None:
    """The ``otlp`` extra must be installed; the error says how to install it."""
    try:
        for module in (
            "opentelemetry.exporter.otlp.proto.http.trace_exporter",
            "opentelemetry.exporter.otlp.proto.http.metric_exporter",
            "opentelemetry.proto.collector.trace.v1.trace_service_pb2",
        ):
            importlib.import_module(module)
    except ImportError as error:
        missing = error.name or str(error)
        raise SettingsError(
            f"{source}: exporter 'otlp' needs the OTLP/HTTP exporter ({missing} is missing); "
            f"install it with {OTLP_EXTRA_HINT}"
        ) from None


def export_fields(value: Callable[[str, Any], Any], source: Callable[[str], Source]) -> dict[str, Any]:
    """:class:`PipelineSettings` fields of the export side, checked against each other.

    An ``endpoint`` alone selects exporter ``otlp``. Settings that only the OTLP exporter (or only
    the embedded receiver) uses are an error with any other exporter, except a compression from
    ``$OTEL_EXPORTER_OTLP_COMPRESSION``, which a machine may set for other programs.
    """
    endpoint = value("endpoint", None)
    exporter = value("exporter", None)
    if exporter is None:
        exporter = "otlp" if endpoint is not None else PipelineSettings.exporter
    if endpoint is not None and exporter != "otlp":
        raise SettingsError(
            f"{source('endpoint')}: endpoint applies to exporter 'otlp', not {exporter!r} ({source('exporter')})"
        )
    compression = value("compression", None)
    if compression is not None and exporter != "otlp":
        if source("compression").kind is not SourceKind.ENVIRONMENT:
            raise SettingsError(
                f"{source('compression')}: compression applies to exporter 'otlp', not {exporter!r} "
                f"({source('exporter')})"
            )
        compression = None
    for key in ("backend_latency", "backend_error_rate"):
        if value(key, None) is not None and (exporter != "otlp" or endpoint is not None):
            where = f"endpoint {endpoint}" if endpoint is not None else f"exporter {exporter!r}"
            raise SettingsError(
                f"{source(key)}: {key} shapes the embedded OTLP receiver, so it needs exporter='otlp' "
                f"without an endpoint (here: {where})"
            )
    if exporter == "otlp":
        require_otlp(source("exporter") if value("exporter", None) is not None else source("endpoint"))
    defaults = PipelineSettings
    return {
        "exporter": exporter,
        "endpoint": endpoint,
        "compression": compression or defaults.compression,
        "backend_latency_ms": value("backend_latency", defaults.backend_latency_ms),
        "backend_error_rate": value("backend_error_rate", defaults.backend_error_rate),
        "metric_interval_ms": value("metric_interval", defaults.metric_interval_ms),
        "instrument": value("instrument", defaults.instrument),
        "max_dropped": value("max_dropped", defaults.max_dropped),
    }
