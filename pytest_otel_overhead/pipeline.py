"""The instrumented arm's OpenTelemetry SDK pipeline, built from :class:`PipelineSettings`.

:func:`build_pipeline` gives the pipeline the timed rounds use: exactly the user's telemetry.
:func:`build_pipeline` with ``observe=True`` gives the same pipeline with counters wrapped around the
sampler and the exporter, for the diagnostic round that reports spans started, sampled, exported
and dropped; those counters never run inside a timed round.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_OFF,
    DEFAULT_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)

from .settings import PipelineSettings

__all__ = ["Pipeline", "PipelineCounts", "build_pipeline", "build_sampler"]


class DiscardingExporter(SpanExporter):
    """``exporter="none"``: spans go through the whole SDK pipeline and are then discarded."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def build_sampler(settings: PipelineSettings) -> Sampler:
    rate = 1.0 if settings.sample_rate is None else settings.sample_rate
    samplers: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": TraceIdRatioBased(rate),
        "parentbased_always_on": DEFAULT_ON,
        "parentbased_always_off": DEFAULT_OFF,
        "parentbased_traceidratio": ParentBased(TraceIdRatioBased(rate)),
    }
    return samplers[settings.sampler]


def build_exporter(settings: PipelineSettings) -> SpanExporter:
    if settings.exporter == "memory":
        return InMemorySpanExporter()
    return DiscardingExporter()


@dataclass
class PipelineCounts:
    """What the diagnostic round saw; thread-safe because export may run on the worker thread."""

    started: int = 0
    sampled: int = 0
    exported: int = 0
    export_calls: int = 0
    by_name: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class _CountingSampler(Sampler):
    def __init__(self, inner: Sampler, counts: PipelineCounts) -> None:
        self._inner = inner
        self._counts = counts

    def should_sample(self, parent_context: Any, trace_id: int, name: str, *args: Any, **kwargs: Any) -> SamplingResult:
        result = self._inner.should_sample(parent_context, trace_id, name, *args, **kwargs)
        with self._counts.lock:
            self._counts.started += 1
            self._counts.by_name[name] += 1
            if result.decision is Decision.RECORD_AND_SAMPLE:
                self._counts.sampled += 1
        return result

    def get_description(self) -> str:
        return self._inner.get_description()


class _CountingExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, counts: PipelineCounts) -> None:
        self._inner = inner
        self._counts = counts

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self._inner.export(spans)
        with self._counts.lock:
            self._counts.export_calls += 1
            if result is SpanExportResult.SUCCESS:
                self._counts.exported += len(spans)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


@dataclass
class Pipeline:
    """A built SDK TracerProvider and what is needed to flush, reset and shut it down."""

    provider: TracerProvider
    exporter: SpanExporter
    counts: PipelineCounts | None = None

    def flush(self) -> None:
        self.provider.force_flush()

    def after_block(self) -> None:
        """Release what the exporter kept, outside the timed block, so memory stays flat."""
        if isinstance(self.exporter, InMemorySpanExporter):
            self.exporter.clear()

    def shutdown(self) -> None:
        self.provider.shutdown()


def build_pipeline(settings: PipelineSettings, *, observe: bool = False) -> Pipeline:
    """Build the instrumented arm's TracerProvider; ``observe`` adds the diagnostic counters."""
    sampler = build_sampler(settings)
    exporter = build_exporter(settings)
    counts = PipelineCounts() if observe else None
    if counts is not None:
        sampler = _CountingSampler(sampler, counts)
        chain_exporter: SpanExporter = _CountingExporter(exporter, counts)
    else:
        chain_exporter = exporter
    # shutdown_on_exit=False: every provider is shut down explicitly, so none lingers in atexit.
    provider = TracerProvider(
        sampler=sampler,
        resource=Resource.create({"service.name": "pytest-otel-overhead"}),
        shutdown_on_exit=False,
    )
    if settings.processor == "simple":
        provider.add_span_processor(SimpleSpanProcessor(chain_exporter))
    else:
        provider.add_span_processor(
            BatchSpanProcessor(
                chain_exporter,
                max_queue_size=settings.queue_size,
                schedule_delay_millis=settings.schedule_delay_ms,
                max_export_batch_size=settings.batch_size,
                export_timeout_millis=settings.export_timeout_ms,
            )
        )
    return Pipeline(provider=provider, exporter=exporter, counts=counts)
