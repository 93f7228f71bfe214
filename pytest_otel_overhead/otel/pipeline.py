"""The instrumented arm's OpenTelemetry SDK pipeline, built from :class:`PipelineSettings`.

:func:`build_pipeline` gives the pipeline the timed rounds use: exactly the user's telemetry, a
TracerProvider and a MeterProvider (with a PeriodicExportingMetricReader), plus the instrumentors
to apply while the arm runs. :func:`build_pipeline` with ``observe=True`` gives the same pipeline
with counters around the sampler and the exporter and a probe on the batch queue (:mod:`.counters`),
for the diagnostic round that reports spans started, sampled, exported and dropped, export latency,
peak queue use and bytes sent; those counters never run inside a timed round.

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

No wait on a backend is unbounded: a flush ends within ``export_timeout``, and the engine caps
every export, flush and shutdown at the end of each phase's time (:meth:`Pipeline.cap`), so a
backend that is down, silent, refusing or slow cannot hold a measurement past ``max_time``; what
the cap cut short is counted (:mod:`.export_deadlines`).

What the schedule and the queue probe need from inside the SDK's batch processor is private to the
SDK; :mod:`.sdk_internals` reads it where it is found and says what is lost where it is not.

Samplers driven by a clock (rate limits, load-adaptive) run on the pipeline's :class:`ArmClock`,
which runs only while the router has this pipeline's arm in place: they pace themselves and read
the load over instrumented time, as in a process that is always instrumented.
"""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_OFF,
    DEFAULT_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from pytest_otel_overhead.compat import dependency_conflict
from pytest_otel_overhead.otel.counters import CountingExporter, CountingSampler, PipelineCounts, QueueProbe
from pytest_otel_overhead.otel.export_deadlines import CappedExports, ExportDeadlines
from pytest_otel_overhead.otel.exporters import build_exporters, set_export_timeout
from pytest_otel_overhead.otel.health import PipelineHealth
from pytest_otel_overhead.otel.receiver import PIPELINE_HEADER, Receiver, ReceiverError, ReceiverStats, shared_receiver
from pytest_otel_overhead.otel.routing import ArmRouter, attach_extras
from pytest_otel_overhead.otel.sdk_internals import batch_core, export_whole_batches, span_queue, whole_batch_schedule
from pytest_otel_overhead.samplers import STRATEGY_SAMPLERS, ArmClock, strategy_sampler
from pytest_otel_overhead.settings.pipeline import load_object
from pytest_otel_overhead.settings.records import PipelineSettings
from pytest_otel_overhead.stats.intervals import quantile

__all__ = ["Pipeline", "build_pipeline", "build_sampler"]

JOIN_SLACK_S = 0.05
"""How much longer than its exports' deadline a shutdown waits for the batch worker: an export that
the deadline ends returns a moment after it."""


def build_sampler(settings: PipelineSettings, *, arm: ArmClock | None = None) -> Sampler:
    """The sampler ``settings`` name; strategy samplers count time on ``arm`` when given (wall time if not)."""
    if settings.sampler in STRATEGY_SAMPLERS:
        return strategy_sampler(
            settings.sampler,
            strategies=settings.strategies,
            max_traces_per_second=settings.max_traces_per_second,
            load_thresholds=settings.load_thresholds,
            load_refresh_ms=settings.load_refresh_ms,
            arm=arm,
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


class _ArmExtras:
    """Meters, instrumentation and the samplers' clock, following the arm (see :func:`routing.attach_extras`)."""

    def __init__(self, meter_provider: MeterProvider, instrumentors: Sequence[Any], clock: ArmClock) -> None:
        self._meter_provider = meter_provider
        self._instrumentors = tuple(instrumentors)
        self._clock = clock

    @property
    def meter_provider(self) -> MeterProvider:
        return self._meter_provider

    def enter(self, router: ArmRouter) -> None:
        # The router's providers: spans and metrics of the instrumented library follow the arm too.
        for instrumentor in self._instrumentors:
            instrumentor.instrument(tracer_provider=router, meter_provider=router.meters, skip_dep_check=True)
        self._clock.arm_started()

    def leave(self, router: ArmRouter) -> None:
        self._clock.arm_stopped()
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
    deadlines: ExportDeadlines | None = None
    arm_clock: ArmClock = field(default_factory=ArmClock)
    metric_exporter: MetricExporter | None = None
    _span_clock: float = 0.0
    _metric_clock: float = 0.0

    def cap(self, seconds: float) -> None:
        """From now on, let no export, flush or shutdown of this pipeline wait past ``seconds`` from now.

        Exports started after this get at most what is left (an OTLP exporter's own deadline is
        shortened to it), and fail at once when nothing is left; :attr:`capped` counts them. A
        later call moves the cap. Local exporters never wait: for them this changes nothing.
        """
        if self.deadlines is not None:
            self.deadlines.cap_at = time.monotonic() + max(0.0, seconds)

    @property
    def capped(self) -> CappedExports:
        """Exports the cap ended early or refused (none for local exporters, which never wait)."""
        return self.deadlines.capped if self.deadlines is not None else CappedExports()

    def wait_limit(self) -> float:
        """Seconds a flush or shutdown may wait now: ``export_timeout``, or what is left of the cap if less."""
        timeout = self.settings.export_timeout_ms / 1e3
        cap = None if self.deadlines is None else self.deadlines.cap_at
        if cap is None:
            return timeout
        return max(0.0, min(timeout, cap - time.monotonic()))

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
                export_whole_batches(self.batch_core)
        self._metric_clock += busy_s
        if self._metric_clock * 1e3 >= self.settings.metric_interval_ms:
            self._flush_metrics()
            self._metric_clock = 0.0

    def _bounded(self) -> contextlib.AbstractContextManager[None]:
        # Not force_flush(timeout_millis=...): the SDK's batch processor ignores it, and the provider
        # skips a flush given no time at all, which would leave spans queued and uncounted. The
        # deadlines are kept per export instead.
        guard = self.deadlines
        timeout = self.settings.export_timeout_ms / 1e3
        return guard.flushing(timeout) if guard is not None else contextlib.nullcontext()

    def _flush_metrics(self) -> None:
        if self.meter_provider is None:
            return
        wait = self.wait_limit()
        if wait <= 0:
            return  # past the cap: no collection, no export
        if self.metric_exporter is not None:
            set_export_timeout(self.metric_exporter, wait)
        # The timeout bounds collection (callbacks) only; the export's deadline is set just above.
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
        capped = self.capped
        with capped.lock:
            capped_exports, capped_spans = capped.exports, capped.spans
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
                exports_timed_out=capped_exports,
                spans_timed_out=capped_spans,
            )

    def shutdown(self) -> None:
        """Shut the providers down, waiting for the batch worker no longer than :meth:`wait_limit`.

        The SDK's own shutdown would wait up to 30 s for an export in flight on the worker thread;
        past the limit the worker is left to end by itself (its export is bounded by the cap too),
        and :attr:`capped` ``.running`` says whether one was still running.
        """
        try:
            if self.batch_core is not None:
                self.batch_core.shutdown(timeout_millis=(self.wait_limit() + JOIN_SLACK_S) * 1e3)
            self.provider.shutdown()  # the batch processor is down already: this returns at once
        finally:
            try:
                if self.meter_provider is not None:
                    # Nothing to wait for (the reader's own timer is off): the timeout only has to be positive.
                    self.meter_provider.shutdown(timeout_millis=self.settings.export_timeout_ms)
            finally:
                if self.receiver is not None and self.tag is not None and self.receiver.running:
                    # If the receiver is gone, nothing of this pipeline is left in it.
                    with contextlib.suppress(ReceiverError):
                        self.receiver.release(self.tag)


def _embedded_receiver(settings: PipelineSettings) -> tuple[Receiver, str]:
    receiver = shared_receiver()
    tag = uuid.uuid4().hex
    receiver.configure(tag, latency_s=settings.backend_latency_ms / 1e3, error_rate=settings.backend_error_rate)
    return receiver, tag


def build_pipeline(settings: PipelineSettings, *, observe: bool = False) -> Pipeline:
    """Build the instrumented arm's providers; ``observe`` adds the diagnostic counters."""
    arm_clock = ArmClock()
    sampler = build_sampler(settings, arm=arm_clock)
    instrumentors = _instrumentors(settings.instrument)
    receiver, tag, endpoint = None, None, settings.endpoint
    headers: dict[str, str] = {}
    if settings.exporter == "otlp" and endpoint is None:
        receiver, tag = _embedded_receiver(settings)
        endpoint, headers = receiver.endpoint, {PIPELINE_HEADER: tag}
    exporters = build_exporters(settings, endpoint, headers)
    exporter = exporters.spans
    guard = ExportDeadlines(exporter, settings.export_timeout_ms / 1e3) if exporters.network else None
    chain_exporter: SpanExporter = guard or exporter
    counts = PipelineCounts() if observe else None
    if counts is not None:
        sampler = CountingSampler(sampler, counts)
        chain_exporter = CountingExporter(chain_exporter, counts)
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
        core = batch_core(batch)
        if counts is not None:
            queue = span_queue(batch, core)
    if counts is not None:
        provider.add_span_processor(QueueProbe(counts, queue))
    # The reader's own timer is off (interval inf): flush() exports once per metric_interval of
    # instrumented time, so the export lands in the instrumented arm and never in the baseline.
    reader = PeriodicExportingMetricReader(exporters.metrics, export_interval_millis=math.inf)
    meter_provider = MeterProvider(metric_readers=[reader], resource=resource, shutdown_on_exit=False)
    attach_extras(provider, _ArmExtras(meter_provider, instrumentors, arm_clock))
    return Pipeline(
        provider=provider,
        exporter=exporter,
        counts=counts,
        meter_provider=meter_provider,
        settings=settings,
        receiver=receiver,
        tag=tag,
        batch_core=core,
        production_schedule=exporters.network and settings.processor == "batch" and whole_batch_schedule(core),
        deadlines=guard,
        arm_clock=arm_clock,
        metric_exporter=exporters.metrics,
    )
