"""Span and metric exporters of the instrumented arm, built from :class:`PipelineSettings`.

``none`` discards, ``memory`` keeps spans in memory, ``otlp`` is the real OTLP/HTTP exporter sending
to the user's ``endpoint`` or to the embedded receiver, and ``module:factory`` calls the user's
factory. Metrics go to an OTLP metric exporter with ``otlp`` and are collected and discarded
otherwise, so collection is paid for whatever the span exporter.

The Python SDK's batch processor does not apply its export timeout (up to SDK 1.45 at least), so
``export_timeout`` is handed to the OTLP exporters: their deadline for one export, retries
included. That bounds how long a down, slow or failing backend can hold a flush; and
:func:`set_export_timeout` shortens it further when less of the measurement's time is left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pytest_otel_overhead.settings.pipeline import load_object
from pytest_otel_overhead.settings.records import PipelineSettings

__all__ = [
    "DiscardingExporter",
    "DiscardingMetricExporter",
    "Exporters",
    "build_exporters",
    "otlp_urls",
    "retry_bound",
    "sends_requests",
    "set_export_timeout",
]

LOCAL_EXPORTERS = ("none", "memory")


class DiscardingExporter(SpanExporter):
    """``exporter="none"``: spans go through the whole SDK pipeline and are then discarded."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class DiscardingMetricExporter(MetricExporter):
    """Metrics are collected (that cost is real) and then discarded."""

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


@dataclass(frozen=True)
class Exporters:
    spans: SpanExporter
    metrics: MetricExporter
    network: bool
    """Whether exporting costs a request per batch (OTLP, or an unknown user exporter)."""


def otlp_urls(endpoint: str) -> tuple[str, str]:
    """(traces URL, metrics URL) from a base URL or a traces URL ending in ``/v1/traces``."""
    base = endpoint.rstrip("/")
    if base.endswith("/v1/traces"):
        base = base[: -len("/v1/traces")]
    return base + "/v1/traces", base + "/v1/metrics"


def sends_requests(exporter: str) -> bool:
    """Whether the ``exporter`` setting names one that costs a request per batch (OTLP, or an unknown factory)."""
    return exporter not in LOCAL_EXPORTERS


def retry_bound(seconds: float) -> int:
    """The backoff bound of an OTLP exporter before 1.35 whose retries sleep at most ``seconds``.

    At least 2, so the export is tried once: with 1 it would give up before its first attempt.
    """
    bound = 2
    while 2 * bound - 1 <= seconds:
        bound *= 2
    return bound


def set_export_timeout(exporter: object, seconds: float) -> bool:
    """Give an OTLP exporter ``seconds`` for each export from now on, retries included.

    The OTLP exporters take their timeout when they are built and have no setter, but read it
    afresh at every export: from their client in recent SDKs (1.45), from themselves in older
    ones. Returns False, changing nothing, for any other exporter.
    """
    if not type(exporter).__module__.startswith("opentelemetry.exporter.otlp."):
        return False
    if isinstance(getattr(exporter, "_MAX_RETRY_TIMEOUT", None), int):
        # Before 1.35 the exporter retries with sleeps of 1, 2, 4... s until the delay reaches this
        # bound, whatever its timeout: the sleeps before giving up add up to the bound less 1 s.
        exporter._MAX_RETRY_TIMEOUT = retry_bound(seconds)  # type: ignore[attr-defined]
    for holder in (getattr(exporter, "_client", None), exporter):
        if isinstance(getattr(holder, "_timeout", None), (int, float)):
            holder._timeout = seconds  # type: ignore[union-attr]
            return True
    return False


def build_exporters(settings: PipelineSettings, endpoint: str | None, headers: Mapping[str, str]) -> Exporters:
    """The exporters for ``settings``; ``endpoint`` is where OTLP goes (the receiver's when embedded)."""
    if settings.exporter == "memory":
        return Exporters(InMemorySpanExporter(), DiscardingMetricExporter(), network=False)
    if settings.exporter == "none":
        return Exporters(DiscardingExporter(), DiscardingMetricExporter(), network=False)
    if settings.exporter == "otlp":
        assert endpoint is not None
        return _otlp(settings, endpoint, headers)
    factory = load_object(settings.exporter, f"exporter {settings.exporter!r}", "exporter factory")
    exporter = factory()
    if not isinstance(exporter, SpanExporter):
        raise TypeError(
            f"exporter factory {settings.exporter!r} returned {type(exporter).__qualname__}, not a SpanExporter"
        )
    return Exporters(exporter, DiscardingMetricExporter(), network=sends_requests(settings.exporter))


def _otlp(settings: PipelineSettings, endpoint: str, headers: Mapping[str, str]) -> Exporters:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    compression = {"none": Compression.NoCompression, "gzip": Compression.Gzip, "deflate": Compression.Deflate}[
        settings.compression
    ]
    traces, metrics = otlp_urls(endpoint)
    timeout = settings.export_timeout_ms / 1000
    return Exporters(
        OTLPSpanExporter(endpoint=traces, headers=dict(headers), timeout=timeout, compression=compression),
        OTLPMetricExporter(endpoint=metrics, headers=dict(headers), timeout=timeout, compression=compression),
        network=True,
    )
