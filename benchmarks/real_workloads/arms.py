"""Both arms without the engine under test: the no-op API and an SDK pipeline, for the reference.

The reference script, the pyperf script and the pytest-benchmark tests need the two arms the plugin
compares, built independently of the plugin: the baseline is the OpenTelemetry API's no-op tracer
and meter, the instrumented arm an SDK pipeline configured as the plugin's default one
(``parentbased_always_on`` sampler, a BatchSpanProcessor with default sizes in front of an exporter
that discards, a MeterProvider whose reader collects only when asked).

The global providers can be set once per process, and application modules (and the Flask and
FastAPI instrumentations) take their tracers and meters at import, so switching arms inside one
process goes through providers whose tracers and instruments ask a :class:`Switch` on every call
which arm is running.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.metrics import CallbackT
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

__all__ = [
    "SdkPipeline",
    "Switch",
    "SwitchingMeterProvider",
    "SwitchingTracerProvider",
    "fixed_arm",
    "load_instrumentors",
]


class DiscardSpans(SpanExporter):
    """Exports by dropping: the pipeline's work up to the exporter, as the plugin's exporter ``none``."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class SdkPipeline:
    """The instrumented arm's SDK providers, built like the plugin's default pipeline."""

    def __init__(self) -> None:
        resource = Resource.create({"service.name": "real-workloads"})
        self.tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        self.tracer_provider.add_span_processor(BatchSpanProcessor(DiscardSpans()))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader], resource=resource, shutdown_on_exit=False)

    def flush(self) -> None:
        """Export what is queued now, so a timed block pays for its own spans."""
        self.tracer_provider.force_flush()

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


class Switch:
    """Which arm runs: read by every switching tracer and instrument on every call."""

    instrumented = False


class SwitchingTracer(trace.Tracer):
    def __init__(self, switch: Switch, sdk: trace.Tracer) -> None:
        self._switch = switch
        self._noop = trace.NoOpTracer()
        self._sdk = sdk

    def _current(self) -> trace.Tracer:
        return self._sdk if self._switch.instrumented else self._noop

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._current().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._current().start_as_current_span(*args, **kwargs)


class SwitchingTracerProvider(trace.TracerProvider):
    def __init__(self, switch: Switch, sdk: TracerProvider) -> None:
        self._switch = switch
        self._sdk = sdk

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return SwitchingTracer(self._switch, self._sdk.get_tracer(*args, **kwargs))


class SwitchingCounter(metrics.Counter):
    def __init__(self, switch: Switch, noop: metrics.Counter, sdk: metrics.Counter) -> None:
        self._switch, self._noop, self._sdk = switch, noop, sdk

    def add(self, *args: Any, **kwargs: Any) -> None:
        (self._sdk if self._switch.instrumented else self._noop).add(*args, **kwargs)


class SwitchingUpDownCounter(metrics.UpDownCounter):
    def __init__(self, switch: Switch, noop: metrics.UpDownCounter, sdk: metrics.UpDownCounter) -> None:
        self._switch, self._noop, self._sdk = switch, noop, sdk

    def add(self, *args: Any, **kwargs: Any) -> None:
        (self._sdk if self._switch.instrumented else self._noop).add(*args, **kwargs)


class SwitchingHistogram(metrics.Histogram):
    def __init__(self, switch: Switch, noop: metrics.Histogram, sdk: metrics.Histogram) -> None:
        self._switch, self._noop, self._sdk = switch, noop, sdk

    def record(self, *args: Any, **kwargs: Any) -> None:
        (self._sdk if self._switch.instrumented else self._noop).record(*args, **kwargs)


class SwitchingGauge:
    """A synchronous gauge (the API names its base class privately, so this one only quacks like it)."""

    def __init__(self, switch: Switch, noop: Any, sdk: Any) -> None:
        self._switch, self._noop, self._sdk = switch, noop, sdk

    def set(self, *args: Any, **kwargs: Any) -> None:
        (self._sdk if self._switch.instrumented else self._noop).set(*args, **kwargs)


class SwitchingMeter(metrics.Meter):
    """Synchronous instruments switch per call; observable ones exist in the SDK only, since their
    callbacks run when the SDK collects, which no timed block does."""

    def __init__(self, switch: Switch, name: str, sdk: metrics.Meter) -> None:
        super().__init__(name)
        self._switch = switch
        self._noop = metrics.NoOpMeter(name)
        self._sdk = sdk

    def create_counter(self, name: str, unit: str = "", description: str = "") -> metrics.Counter:
        noop, sdk = (m.create_counter(name, unit, description) for m in (self._noop, self._sdk))
        return SwitchingCounter(self._switch, noop, sdk)

    def create_up_down_counter(self, name: str, unit: str = "", description: str = "") -> metrics.UpDownCounter:
        noop, sdk = (m.create_up_down_counter(name, unit, description) for m in (self._noop, self._sdk))
        return SwitchingUpDownCounter(self._switch, noop, sdk)

    def create_histogram(self, name: str, unit: str = "", description: str = "", **advice: Any) -> metrics.Histogram:
        noop, sdk = (m.create_histogram(name, unit, description, **advice) for m in (self._noop, self._sdk))
        return SwitchingHistogram(self._switch, noop, sdk)

    def create_gauge(self, name: str, unit: str = "", description: str = "") -> Any:
        noop, sdk = (m.create_gauge(name, unit, description) for m in (self._noop, self._sdk))
        return SwitchingGauge(self._switch, noop, sdk)

    def create_observable_counter(
        self, name: str, callbacks: Sequence[CallbackT] | None = None, unit: str = "", description: str = ""
    ) -> metrics.ObservableCounter:
        return self._sdk.create_observable_counter(name, callbacks, unit, description)

    def create_observable_up_down_counter(
        self, name: str, callbacks: Sequence[CallbackT] | None = None, unit: str = "", description: str = ""
    ) -> metrics.ObservableUpDownCounter:
        return self._sdk.create_observable_up_down_counter(name, callbacks, unit, description)

    def create_observable_gauge(
        self, name: str, callbacks: Sequence[CallbackT] | None = None, unit: str = "", description: str = ""
    ) -> metrics.ObservableGauge:
        return self._sdk.create_observable_gauge(name, callbacks, unit, description)


class SwitchingMeterProvider(metrics.MeterProvider):
    def __init__(self, switch: Switch, sdk: MeterProvider) -> None:
        self._switch = switch
        self._sdk = sdk

    def get_meter(self, name: str, *args: Any, **kwargs: Any) -> metrics.Meter:
        return SwitchingMeter(self._switch, name, self._sdk.get_meter(name, *args, **kwargs))


def load_instrumentors(specs: Sequence[str]) -> list[BaseInstrumentor]:
    """Instances of ``module:Class`` instrumentors (the spelling of the plugin's ``instrument=``)."""
    instrumentors = []
    for spec in specs:
        module, _, name = spec.partition(":")
        instrumentors.append(getattr(importlib.import_module(module), name)())
    return instrumentors


@contextmanager
def fixed_arm(instrumented: bool, instrument: Sequence[str]) -> Iterator[SdkPipeline | None]:
    """One arm for a whole process, as a user measuring with pyperf or pytest-benchmark sets it up:
    the instrumented arm installs the SDK pipeline globally and applies the instrumentors; the
    baseline leaves the API's no-op providers and the libraries untouched."""
    if not instrumented:
        yield None
        return
    pipeline = SdkPipeline()
    trace.set_tracer_provider(pipeline.tracer_provider)
    metrics.set_meter_provider(pipeline.meter_provider)
    instrumentors = load_instrumentors(instrument)
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=pipeline.tracer_provider, meter_provider=pipeline.meter_provider)
    try:
        yield pipeline
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
        pipeline.shutdown()
