"""The instrumented arm's OpenTelemetry SDK pipeline, built from :class:`PipelineSettings`.

:func:`build_pipeline` gives the pipeline the timed rounds use: exactly the user's telemetry, a
TracerProvider and a MeterProvider (with a PeriodicExportingMetricReader), plus the instrumentors
to apply while the arm runs. :func:`build_pipeline` with ``observe=True`` gives the same pipeline
with counters around the sampler and the exporter and a probe on the batch queue, for the
diagnostic round that reports spans started, sampled, exported and dropped, export latency, peak
queue use and bytes sent; those counters never run inside a timed round.

How a timed block ends (:meth:`Pipeline.flush` with the block's length) follows what production
would pay for the work done in that block:

* local exporters (``none``, ``memory``) export everything at the end of each block: a request
  costs next to nothing, so each block pays exactly for its own spans;
* exporters that send requests (``otlp``, user factories) export as the batch processor does in
  production: whole batches at once, a partial batch only once per ``schedule_delay`` of
  instrumented time. Flushing every ~10 ms block instead would charge one request per block (1.5 to
  2.5 ms of CPU on a small runner) where production pays one per batch, and the warm-up, seeing
  every block pay that, would calibrate blocks of a single call (docs/pipelines.md has figures);
* metrics are collected and exported once per ``metric_interval`` of instrumented time, as the
  periodic reader does; their cost is per interval, not per call.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
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

from pytest_otel_overhead.compat import degraded, dependency_conflict, distribution_version
from pytest_otel_overhead.otel.exporters import DiscardingExporter, build_exporters
from pytest_otel_overhead.otel.receiver import PIPELINE_HEADER, Receiver, ReceiverError, ReceiverStats, shared_receiver
from pytest_otel_overhead.otel.routing import ArmRouter, attach_extras
from pytest_otel_overhead.results import PipelineHealth
from pytest_otel_overhead.samplers import STRATEGY_SAMPLERS, strategy_sampler
from pytest_otel_overhead.settings.layers import PipelineSettings
from pytest_otel_overhead.settings.pipeline import load_object
from pytest_otel_overhead.stats import quantile

__all__ = ["DiscardingExporter", "Pipeline", "PipelineCounts", "build_pipeline", "build_sampler"]


def build_sampler(settings: PipelineSettings) -> Sampler:
    if settings.sampler in STRATEGY_SAMPLERS:
        return strategy_sampler(
            settings.sampler,
            strategies=settings.strategies,
            max_traces_per_second=settings.max_traces_per_second,
            load_thresholds=settings.load_thresholds,
            load_refresh_ms=settings.load_refresh_ms,
        )
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


@dataclass
class PipelineCounts:
    """What the diagnostic round saw; thread-safe because export may run on the worker thread."""

    started: int = 0
    sampled: int = 0
    ended: int = 0
    exported: int = 0
    export_calls: int = 0
    export_failures: int = 0
    spans_failed: int = 0
    export_seconds: list[float] = field(default_factory=list)
    export_cpu_seconds: float = 0.0
    queue_peak: int | None = None
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
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            result = self._inner.export(spans)
        except Exception:
            result = SpanExportResult.FAILURE
            raise
        finally:
            elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
            with self._counts.lock:
                self._counts.export_calls += 1
                self._counts.export_seconds.append(elapsed)
                self._counts.export_cpu_seconds += cpu
                if result is SpanExportResult.SUCCESS:
                    self._counts.exported += len(spans)
                else:
                    self._counts.export_failures += 1
                    self._counts.spans_failed += len(spans)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class _FlushDeadline(SpanExporter):
    """Lets a flush end within ``export_timeout``, as the spec asks of ForceFlush.

    The Python SDK's batch processor ignores the flush timeout, and a flush exports batch after
    batch, each allowed the exporter's whole deadline: with a backend down, a flush of n batches
    would wait n times that. Past the deadline of the flush in progress, further batches fail at
    once (and count as dropped). Exports outside a flush, by the worker thread, are untouched.
    """

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner
        self.deadline: float | None = None
        self._flusher: threading.Thread | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        deadline = self.deadline
        if deadline is not None and threading.current_thread() is self._flusher and time.monotonic() >= deadline:
            return SpanExportResult.FAILURE
        return self._inner.export(spans)

    @contextlib.contextmanager
    def flushing(self, timeout_s: float) -> Iterator[None]:
        self._flusher = threading.current_thread()
        self.deadline = time.monotonic() + timeout_s
        try:
            yield
        finally:
            self.deadline = None

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def _batch_core(processor: BatchSpanProcessor) -> Any:
    """The SDK's shared batching core (SDK 1.34+), or ``None`` on SDKs built otherwise.

    Private to the SDK: used only where its shape is as expected, to export whole batches between
    blocks (:meth:`Pipeline.flush`) and to read the queue length.
    """
    core = getattr(processor, "_batch_processor", None)
    if core is None or not hasattr(core, "_queue") or not callable(getattr(core, "_export", None)):
        return None
    return core


def _span_queue(processor: BatchSpanProcessor, core: Any) -> Any:
    """The batch processor's queue of sampled spans (a ``deque``), or ``None`` where it is not found.

    SDK 1.34+ keeps it in the batching core; older SDKs kept it on the processor as ``queue``.
    """
    queue = getattr(core, "_queue", None) if core is not None else getattr(processor, "queue", None)
    if queue is None or not callable(getattr(queue, "__len__", None)):
        degraded(
            "pipeline health: peak queue use needs opentelemetry-sdk's BatchSpanProcessor queue, not found in "
            f"{distribution_version('opentelemetry-sdk')}; the queue peak is not reported (drops still are)"
        )
        return None
    return queue


def _whole_batch_schedule(core: Any) -> bool:
    """Whether network exporters can export whole batches between blocks, as in production."""
    if core is not None and _EXPORT_WHOLE_BATCHES is not None:
        return True
    degraded(
        "pipeline schedule: exporting whole batches between blocks needs opentelemetry-sdk's batch core "
        f"(1.34+), not found in {distribution_version('opentelemetry-sdk')}; each block exports all its "
        "spans, so network exporters pay one request per block"
    )
    return False


class _QueueProbe(SpanProcessor):
    """Added after the batch processor: counts sampled spans ended and the queue length just after each."""

    def __init__(self, counts: PipelineCounts, queue: Any) -> None:
        self._counts = counts
        self._queue = queue

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is None or not span.context.trace_flags.sampled:
            return
        length = len(self._queue) if self._queue is not None else None
        with self._counts.lock:
            self._counts.ended += 1
            if length is not None:
                self._counts.queue_peak = max(self._counts.queue_peak or 0, length)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _ArmExtras:
    """Meters and library instrumentation that follow the arm (see :func:`routing.attach_extras`)."""

    def __init__(self, meter_provider: MeterProvider, instrumentors: Sequence[Any]) -> None:
        self._meter_provider = meter_provider
        self._instrumentors = tuple(instrumentors)

    @property
    def meter_provider(self) -> MeterProvider:
        return self._meter_provider

    def enter(self, router: ArmRouter) -> None:
        # The router's providers: spans and metrics of the instrumented library follow the arm too.
        for instrumentor in self._instrumentors:
            instrumentor.instrument(tracer_provider=router, meter_provider=router.meters, skip_dep_check=True)

    def leave(self, router: ArmRouter) -> None:
        for instrumentor in reversed(self._instrumentors):
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()


def _instrumentors(specs: Sequence[str]) -> list[Any]:
    found = []
    for spec in specs:
        instrumentor = load_object(spec, f"instrument {spec!r}", "instrumentor")()
        if instrumentor.is_instrumented_by_opentelemetry:
            raise RuntimeError(
                f"{spec} is already instrumented outside the measurement (e.g. in conftest.py), so the "
                "baseline could not run without it; instrument it only when --otel-overhead is off"
            )
        conflict = dependency_conflict(instrumentor)
        if conflict is not None:
            raise RuntimeError(f"{spec}: {conflict}")
        found.append(instrumentor)
    return found


@dataclass
class Pipeline:
    """A built SDK TracerProvider and MeterProvider, and what is needed to flush, reset and shut them down."""

    provider: TracerProvider
    exporter: SpanExporter
    counts: PipelineCounts | None = None
    meter_provider: MeterProvider | None = None
    settings: PipelineSettings = field(default_factory=PipelineSettings)
    receiver: Receiver | None = None
    tag: str | None = None
    batch_core: Any = None
    production_schedule: bool = False
    flush_guard: _FlushDeadline | None = None
    _span_clock: float = 0.0
    _metric_clock: float = 0.0

    def flush(self, busy_s: float | None = None) -> None:
        """Export what the pipeline holds; with ``busy_s``, as production would after that much work.

        Without ``busy_s`` everything is exported (spans and metrics). With it (the length of the
        block just run) local exporters still export everything, network exporters export whole
        batches and a partial one once per schedule delay, and metrics go once per interval; both
        delays are counted in instrumented time.
        """
        if busy_s is None:
            with self._bounded():
                self.provider.force_flush()
            self._flush_metrics()
            self._span_clock = self._metric_clock = 0.0
            return
        self._span_clock += busy_s
        with self._bounded():
            if not self.production_schedule or self._span_clock * 1e3 >= self.settings.schedule_delay_ms:
                self.provider.force_flush()
                self._span_clock = 0.0
            else:
                # Waits for an export the worker has in flight, then sends the whole batches left.
                self.batch_core._export(_EXPORT_WHOLE_BATCHES)
        self._metric_clock += busy_s
        if self._metric_clock * 1e3 >= self.settings.metric_interval_ms:
            self._flush_metrics()
            self._metric_clock = 0.0

    def _bounded(self) -> contextlib.AbstractContextManager[None]:
        guard = self.flush_guard
        return guard.flushing(self.settings.export_timeout_ms / 1e3) if guard is not None else contextlib.nullcontext()

    def _flush_metrics(self) -> None:
        if self.meter_provider is not None:
            self.meter_provider.force_flush(timeout_millis=self.settings.export_timeout_ms)

    def after_block(self) -> None:
        """Release what the exporter kept, outside the timed block, so memory stays flat."""
        if isinstance(self.exporter, InMemorySpanExporter):
            self.exporter.clear()

    def receiver_stats(self, signal: str = "traces") -> ReceiverStats | None:
        """What the embedded receiver saw from this pipeline, or ``None`` when it exports elsewhere."""
        if self.receiver is None or self.tag is None:
            return None
        return self.receiver.stats(self.tag).get(signal, ReceiverStats())

    def health(self, calls: int, *, extra_threads: int | None = None) -> PipelineHealth:
        """The diagnostic round's figures (``observe=True`` pipelines, after a full flush)."""
        counts = self.counts
        assert counts is not None, "health needs a pipeline built with observe=True"
        traces = self.receiver_stats("traces")
        metric_points = self.receiver_stats("metrics")
        with counts.lock:
            latencies = sorted(counts.export_seconds)
            return PipelineHealth(
                calls=calls,
                started=counts.started,
                sampled=counts.sampled,
                exported=counts.exported,
                export_calls=counts.export_calls,
                by_name=tuple(counts.by_name.most_common()),
                ended=counts.ended,
                export_failures=counts.export_failures,
                spans_failed=counts.spans_failed,
                export_latency_p50=quantile(latencies, 0.5) if latencies else None,
                export_latency_p95=quantile(latencies, 0.95) if latencies else None,
                export_cpu_s=counts.export_cpu_seconds,
                queue_peak=counts.queue_peak,
                queue_capacity=self.settings.queue_size if self.settings.processor == "batch" else None,
                bytes_sent=None if traces is None else traces.bytes_wire,
                bytes_uncompressed=None if traces is None else traces.bytes_raw,
                backend_requests=None if traces is None else traces.requests,
                backend_rejected=None if traces is None else traces.rejected,
                metric_points=None if metric_points is None else metric_points.metric_points,
                extra_threads=extra_threads,
                max_dropped=self.settings.max_dropped,
            )

    def shutdown(self) -> None:
        try:
            self.provider.shutdown()
        finally:
            try:
                if self.meter_provider is not None:
                    self.meter_provider.shutdown(timeout_millis=self.settings.export_timeout_ms)
            finally:
                if self.receiver is not None and self.tag is not None and self.receiver.running:
                    # If the receiver is gone, nothing of this pipeline is left in it.
                    with contextlib.suppress(ReceiverError):
                        self.receiver.release(self.tag)


def _whole_batches_strategy() -> Any:
    """The SDK's strategy "export while a whole batch is queued" (private, SDK 1.34+), or ``None``."""
    try:
        from opentelemetry.sdk._shared_internal import BatchExportStrategy
    except ImportError:  # older or differently built SDKs: every block exports everything
        return None
    return getattr(BatchExportStrategy, "EXPORT_WHILE_BATCH_EXCEEDS_THRESHOLD", None)


_EXPORT_WHOLE_BATCHES: Any = _whole_batches_strategy()


def _embedded_receiver(settings: PipelineSettings) -> tuple[Receiver, str]:
    receiver = shared_receiver()
    tag = uuid.uuid4().hex
    receiver.configure(tag, latency_s=settings.backend_latency_ms / 1e3, error_rate=settings.backend_error_rate)
    return receiver, tag


def build_pipeline(settings: PipelineSettings, *, observe: bool = False) -> Pipeline:
    """Build the instrumented arm's providers; ``observe`` adds the diagnostic counters."""
    sampler = build_sampler(settings)
    instrumentors = _instrumentors(settings.instrument)
    receiver, tag, endpoint = None, None, settings.endpoint
    headers: dict[str, str] = {}
    if settings.exporter == "otlp" and endpoint is None:
        receiver, tag = _embedded_receiver(settings)
        endpoint, headers = receiver.endpoint, {PIPELINE_HEADER: tag}
    exporters = build_exporters(settings, endpoint, headers)
    exporter = exporters.spans
    guard = _FlushDeadline(exporter) if exporters.network else None
    chain_exporter: SpanExporter = guard or exporter
    counts = PipelineCounts() if observe else None
    if counts is not None:
        sampler = _CountingSampler(sampler, counts)
        chain_exporter = _CountingExporter(chain_exporter, counts)
    resource = Resource.create({"service.name": "pytest-otel-overhead"})
    # shutdown_on_exit=False: every provider is shut down explicitly, so none lingers in atexit.
    provider = TracerProvider(sampler=sampler, resource=resource, shutdown_on_exit=False)
    core, queue = None, None
    if settings.processor == "none":
        pass  # attribution layer (advice/explain.py): spans are recorded and ended, then go nowhere
    elif settings.processor == "simple":
        provider.add_span_processor(SimpleSpanProcessor(chain_exporter))
    else:
        batch = BatchSpanProcessor(
            chain_exporter,
            max_queue_size=settings.queue_size,
            schedule_delay_millis=settings.schedule_delay_ms,
            max_export_batch_size=settings.batch_size,
            export_timeout_millis=settings.export_timeout_ms,
        )
        provider.add_span_processor(batch)
        core = _batch_core(batch)
        if counts is not None:
            queue = _span_queue(batch, core)
    if counts is not None:
        provider.add_span_processor(_QueueProbe(counts, queue))
    # The reader's own timer is off (interval inf): flush() exports once per metric_interval of
    # instrumented time, so the export lands in the instrumented arm and never in the baseline.
    reader = PeriodicExportingMetricReader(exporters.metrics, export_interval_millis=math.inf)
    meter_provider = MeterProvider(metric_readers=[reader], resource=resource, shutdown_on_exit=False)
    attach_extras(provider, _ArmExtras(meter_provider, instrumentors))
    return Pipeline(
        provider=provider,
        exporter=exporter,
        counts=counts,
        meter_provider=meter_provider,
        settings=settings,
        receiver=receiver,
        tag=tag,
        batch_core=core,
        production_schedule=exporters.network and settings.processor == "batch" and _whole_batch_schedule(core),
        flush_guard=guard,
    )
