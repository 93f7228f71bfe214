"""The settings records: the pipeline of the instrumented arm and everything one measurement needs.

Their field defaults are the settings' defaults: the key registry's help text and the merge rules
read them from here, so a default is written once. They write and read their document form (a
test's ``settings`` in the JSON) through ``wire.document``, driven by their fields as the result
records are: a field's metadata (``form(...)``) says where that form differs, its docstring what it
means (docs/json-schema.md is written from both).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_otel_overhead.settings import defaults
from pytest_otel_overhead.settings.defaults import (
    Choice,
    FailedExportsPolicy,
    InconclusivePolicy,
    Mode,
    NoTelemetryPolicy,
)
from pytest_otel_overhead.settings.origin import DEFAULT_SOURCE, Source, as_source
from pytest_otel_overhead.settings.sampling import LoadThresholds, Strategies, parse_load_thresholds
from pytest_otel_overhead.stats.process_term import BUILT_IN_TERM, ProcessTerm
from pytest_otel_overhead.units import Budget
from pytest_otel_overhead.wire.form import form

__all__ = [
    "BUDGET_METRICS",
    "DEFAULT_BUDGET",
    "Choice",
    "FailedExportsPolicy",
    "InconclusivePolicy",
    "MeasureSettings",
    "Mode",
    "NoTelemetryPolicy",
    "PipelineSettings",
]

BUDGET_METRICS = ("cpu", "wall", "latency_p50", "latency_p95", "latency_p99", "heap")
DEFAULT_BUDGET = defaults.BUDGET
"""The gate metric's budget when none is given."""


def _load_thresholds_text(thresholds: LoadThresholds | None) -> str | None:
    return None if thresholds is None else thresholds.as_text()


def _read_load_thresholds(text: object) -> LoadThresholds | None:
    return None if text is None else parse_load_thresholds(text, "as written")


def _as_dict(record: object) -> dict[str, object]:
    # Writing is for measuring sessions; every pytest run loads the records, so not their writer.
    from pytest_otel_overhead.wire.document import to_document

    return to_document(record)


@dataclass(frozen=True)
class PipelineSettings:
    """The OpenTelemetry SDK pipeline of the instrumented arm."""

    sampler: str = defaults.SAMPLER
    """Sampler of the instrumented arm, e.g. ``"parentbased_always_on"``, ``"parentbased_traceidratio"``."""
    sample_rate: float | None = None
    """Sampling ratio of a ratio sampler."""
    processor: str = defaults.PROCESSOR
    """``"batch"``, ``"simple"`` (or ``"none"`` for an attribution layer)."""
    batch_size: int = defaults.BATCH_SIZE
    """Max export batch size of the BatchSpanProcessor."""
    schedule_delay_ms: float = defaults.SCHEDULE_DELAY_MS
    """Schedule delay of the BatchSpanProcessor."""
    queue_size: int = defaults.QUEUE_SIZE
    """Max queue size of the BatchSpanProcessor."""
    export_timeout_ms: float = defaults.EXPORT_TIMEOUT_MS
    """Export timeout."""
    exporter: str = defaults.EXPORTER
    """Span exporter, e.g. ``"none"``, ``"memory"``, ``"otlp"``."""
    strategies: Strategies | None = None
    """Per-operation sampling rules: ``default`` (probability), ``operations`` (probability per span name),
    ``max_traces_per_second``, ``source`` (where the rules came from)."""
    max_traces_per_second: float | None = None
    """Rate limit of the rate-limiting sampler."""
    load_thresholds: LoadThresholds | None = field(
        default=None, metadata=form(write=_load_thresholds_text, read=_read_load_thresholds, shape="string or null")
    )
    """Load-adaptive sampler steps as written, e.g. ``"80%:0.05,60%:0.1,0.2"``."""
    load_refresh_ms: float = defaults.LOAD_REFRESH_MS
    """How often the load-adaptive sampler reads the load."""
    endpoint: str | None = None
    """OTLP endpoint; ``None`` uses the embedded receiver."""
    compression: str = defaults.COMPRESSION
    """OTLP compression: ``"none"``, ``"gzip"``, ``"deflate"``."""
    backend_latency_ms: float = defaults.BACKEND_LATENCY_MS
    """Latency the embedded receiver adds to each export."""
    backend_error_rate: float = defaults.BACKEND_ERROR_RATE
    """Fraction of exports the embedded receiver rejects."""
    metric_interval_ms: float = defaults.METRIC_INTERVAL_MS
    """Metric export interval."""
    instrument: tuple[str, ...] = ()
    """Instrumentations enabled in the instrumented arm."""
    max_dropped: int | None = None
    """Allowed dropped spans."""

    def _describe_exporter(self) -> str:
        text = f"exporter {self.exporter}"
        if self.exporter == "otlp":
            text += "" if self.compression == "none" else f" {self.compression}"
            if self.endpoint is not None:
                text += f" to {self.endpoint}"
            else:
                backend = [f"{self.backend_latency_ms:g}ms"] if self.backend_latency_ms else []
                backend += [f"{self.backend_error_rate:.0%} 503"] if self.backend_error_rate else []
                text += " to the embedded receiver" + (f" ({', '.join(backend)})" if backend else "")
        if self.instrument:
            text += ", instrumenting " + ", ".join(item.rsplit(":", 1)[-1] for item in self.instrument)
        return text

    def _describe_sampler(self) -> str:
        if self.sampler == "per_operation" and self.strategies is not None:
            cap = self.max_traces_per_second or self.strategies.max_traces_per_second
            rules = Strategies(self.strategies.default, self.strategies.operations, cap)
            return f"per_operation ({rules.describe()})"
        if self.sampler == "rate_limiting":
            return f"rate_limiting {self.max_traces_per_second or 0:g}/s"
        if self.sampler == "load_adaptive":
            thresholds = self.load_thresholds or LoadThresholds()
            return f"load_adaptive ({thresholds.describe()}; every {self.load_refresh_ms:g}ms)"
        return self.sampler + (f" {self.sample_rate:g}" if self.sample_rate is not None else "")

    def describe(self) -> str:
        sampler = self._describe_sampler()
        if self.processor == "batch":
            processor = f"batch {self.batch_size}/{self.schedule_delay_ms:g}ms, queue {self.queue_size}"
        elif self.processor == "none":  # an attribution layer: spans recorded, never processed
            processor = "no processor"
        else:
            processor = "simple processor"
        return f"sampler {sampler}, {processor}, {self._describe_exporter()}"

    def as_dict(self) -> dict[str, object]:
        return _as_dict(self)


@dataclass(frozen=True)
class MeasureSettings:
    """Everything one measurement needs: the pipeline, the budgets and the limits."""

    pipeline: PipelineSettings = field(default_factory=PipelineSettings, metadata=form(inline=True))
    """The pipeline's fields, above, stand among these."""
    metric: str = defaults.METRIC
    """The gate metric that ``budget`` applies to: ``"cpu"`` or ``"wall"``."""
    max_time: float = field(default=defaults.MAX_TIME_S, metadata=form(key="max_time_s"))
    """Cap on measuring time for this test."""
    confidence: float = defaults.CONFIDENCE
    """How sure every interval and verdict of this test is, over all its looks (the ``confidence`` setting)."""
    inconclusive: InconclusivePolicy = defaults.INCONCLUSIVE
    """What an undecided budget does: ``"fail"``, ``"warn"``, ``"pass"``."""
    profile: str | None = None
    """Performance profile applied (``"high"``, ``"medium"``, ``"low"``)."""
    mode: Mode = defaults.MODE
    """As ``tests[].mode``."""
    processes: int | None = defaults.PROCESSES
    """Fresh processes a time-mode measurement is spread over (the ``processes`` setting): a number, exactly that
    many (1 measures in the test's process); null (``auto``), the test's process and fresh ones added where the
    between-process term keeps a budget undecided."""
    process_term: ProcessTerm = BUILT_IN_TERM
    """The prior for the between-process spread and the load shift that every interval counts, on the log-ratio
    scale: an object with ``tau`` and ``slope`` (the standard deviation between processes is ``tau`` plus ``slope``
    times the absolute log ratio), ``df`` (its degrees of freedom), ``load`` (added while the machine is busy, at
    least), ``load_share`` (the load term's share of the absolute log ratio, where that is larger) and ``source``
    (``"built-in"``, or ``"calibrated"`` from the ``calibration`` setting)."""
    no_telemetry: NoTelemetryPolicy = defaults.NO_TELEMETRY
    """What a measurement without telemetry does: ``"warn"``, ``"fail"``, ``"ignore"``."""
    failed_exports: FailedExportsPolicy = defaults.FAILED_EXPORTS
    """What a measurement in which every export failed (nothing reached the backend) does: ``"fail"``, ``"warn"``,
    ``"ignore"``."""
    budgets: tuple[tuple[str, Budget], ...] = field(default=(("cpu", DEFAULT_BUDGET),), metadata=form(entries=True))
    """Budget per metric name, an object with ``kind`` (``"relative"`` or ``"absolute"``) and ``value`` (a fraction,
    or seconds / bytes / instructions per call)."""
    sources: tuple[tuple[str, str], ...] = field(default=(), metadata=form(entries=True))
    """For each setting that did not come from its default, where it came from, e.g. ``"marker on
    tests/test_x.py::test_y"``, ``"--otel-overhead-budget"``, ``"$OTEL_BSP_MAX_QUEUE_SIZE"``."""

    def budget(self, metric: str) -> Budget | None:
        return dict(self.budgets).get(metric)

    def source(self, key: str) -> Source:
        given = dict(self.sources).get(key)
        return DEFAULT_SOURCE if given is None else as_source(given)

    def as_dict(self) -> dict[str, object]:
        return _as_dict(self)
